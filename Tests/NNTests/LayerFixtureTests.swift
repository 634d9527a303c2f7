import Autograd
import NN
import Tensor
import TestSupport
import XCTest

/// Every case of Fixtures/ (layers part): outputs and every gradient against PyTorch,
/// at 1e-5 relative / 1e-6 absolute.
final class LayerFixtureTests: XCTestCase {
    let rtol: Float = 1e-5, atol: Float = 1e-6

    func check(_ actual: Tensor?, _ fixture: Fixture, _ key: String, rtol: Float? = nil, atol: Float? = nil,
               file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try fixture.tensor(key)
        guard let actual else { return XCTFail("\(key): no value computed", file: file, line: line) }
        XCTAssertEqual(actual.shape, expected.shape, "\(key) shape", file: file, line: line)
        if let problem = mismatch(actual, expected, rtol: rtol ?? self.rtol, atol: atol ?? self.atol) {
            XCTFail("\(fixture.path) \(key): \(problem)", file: file, line: line)
        }
    }

    /// Backward of L = sum(out · grad_out), the vector-Jacobian product the fixtures store.
    func backward(_ output: Variable, _ gradOut: Tensor) { output.backward(gradOut) }

    /// Convolutions are float32 reductions whose order depends on the BLAS kernel (OpenBLAS picks
    /// one per CPU type; the workbench's own GEMM another), so each value is compared within the
    /// float32 error bound of its own reduction: its length and the magnitudes it sums, obtained by
    /// running the same convolution on absolute values.
    func testConvolutions() throws {
        let cases = ["conv1x1_bias", "conv3x3_reflect_s1_nobias_even", "conv3x3_reflect_s1_nobias_odd",
                     "conv3x3_reflect_s1_nobias_tiny", "conv3x3_reflect_s2_nobias_even", "conv3x3_reflect_s2_nobias_odd",
                     "conv3x3_zeros_bias"]
        func absolute(_ t: Tensor) -> Tensor { Elementwise.map(t) { Swift.abs($0) } }
        for name in cases {
            let f = try Fixture(name + ".safetensors")
            let stride = Int(f.metadata("stride")!)!, padding = Int(f.metadata("padding")!)!
            let mode = PaddingMode(rawValue: f.metadata("padding_mode")!)!
            let hasBias = f.metadata("bias") == "True"
            func convolve(_ transform: (Tensor) -> Tensor) throws -> (y: Variable, x: Variable, weight: Variable, bias: Variable?) {
                let x = Variable(transform(try f.tensor("x")), requiresGrad: true)
                let weight = Variable(transform(try f.tensor("weight")), requiresGrad: true)
                let bias = hasBias ? Variable(transform(try f.tensor("bias")), requiresGrad: true) : nil
                let y = Functional.conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, paddingMode: mode)
                backward(y, transform(try f.tensor("grad_out")))
                return (y, x, weight, bias)
            }
            let run = try convolve { $0 }, magnitude = try convolve(absolute)
            let w = run.weight.value.shape, out = run.y.value.shape
            let (outputs, inputs, kernel) = (w[0], w[1], w[2] * w[3])
            let positions = out[0] * out[2] * out[3]
            // Reflect padding folds up to four taps onto one border pixel of the input gradient.
            let checks: [(String, Tensor?, Tensor?, Int)] = [
                ("out", run.y.value, magnitude.y.value, inputs * kernel + 1),
                ("grad.x", run.x.grad, magnitude.x.grad, outputs * kernel * 4),
                ("grad.weight", run.weight.grad, magnitude.weight.grad, positions),
            ] + (hasBias ? [("grad.bias", run.bias!.grad, magnitude.bias!.grad, positions)] : [])
            for (key, actual, magnitudes, terms) in checks {
                let expected = try f.tensor(key)
                guard let actual, let magnitudes else { XCTFail("\(name) \(key): no value computed"); continue }
                XCTAssertEqual(actual.shape, expected.shape, "\(name) \(key) shape")
                if let problem = reductionMismatch(actual, expected, magnitudes: magnitudes, terms: terms) {
                    XCTFail("\(f.path) \(key): \(problem)")
                }
            }
        }
    }

    /// The bound is tight enough to catch a wrong kernel: a convolution that drops one tap of the
    /// 3×3 kernel (an off-by-one in im2col, say) fails it on every case.
    func testConvolutionToleranceCatchesAWrongKernel() throws {
        let f = try Fixture("conv3x3_reflect_s1_nobias_even.safetensors")
        var weight = try f.tensor("weight")
        let taps = weight.shape[2] * weight.shape[3]
        let pointer = weight.mutablePointer()
        for i in stride(from: 0, to: weight.count, by: taps) { pointer[i] = 0 }
        let x = try f.tensor("x")
        let y = Functional.conv2d(Variable(x), weight: Variable(weight), bias: nil, stride: 1, padding: 1, paddingMode: .reflect)
        let magnitudes = Functional.conv2d(Variable(Elementwise.map(x) { Swift.abs($0) }),
                                           weight: Variable(Elementwise.map(try f.tensor("weight")) { Swift.abs($0) }),
                                           bias: nil, stride: 1, padding: 1, paddingMode: .reflect)
        XCTAssertNotNil(reductionMismatch(y.value, try f.tensor("out"), magnitudes: magnitudes.value, terms: weight.shape[1] * taps))
    }

    func testConv2dLayerMatchesFunctional() throws {
        let f = try Fixture("conv3x3_zeros_bias.safetensors")
        let layer = Conv2d(4, 3, kernelSize: 3, padding: 1)
        try layer.loadStateDict(f.file, path: f.path, strict: false)
        try check(layer(Variable(try f.tensor("x"))).value, f, "out")
    }

    func testBatchNormTrain() throws {
        let f = try Fixture("batchnorm2d_train.safetensors")
        let bn = BatchNorm2d(5)
        bn.weight.value = try f.tensor("weight")
        bn.bias.value = try f.tensor("bias")
        bn.runningMean.value = try f.tensor("running_mean_init")
        bn.runningVar.value = try f.tensor("running_var_init")
        let x = Variable(try f.tensor("x"), requiresGrad: true)
        let y = bn(x)
        try check(y.value, f, "out")
        try check(bn.runningMean.value, f, "running_mean_after1")
        try check(bn.runningVar.value, f, "running_var_after1")
        XCTAssertEqual(bn.numBatchesTracked.value, f.file["num_batches_tracked_after1"]!.int64s()[0])
        let stats = BatchNormKernel.statistics(x.value)
        try check(Tensor(shape: [5], scalars: stats.mean.map(Float.init)), f, "batch_mean")
        try check(Tensor(shape: [5], scalars: stats.variance.map(Float.init)), f, "batch_var_biased")
        backward(y, try f.tensor("grad_out"))
        try check(x.grad, f, "grad.x")
        try check(bn.weight.grad, f, "grad.weight")
        try check(bn.bias.grad, f, "grad.bias")
        try check(bn(Variable(try f.tensor("x_call2"))).value, f, "out_call2")
        try check(bn(Variable(try f.tensor("x_call3"))).value, f, "out_call3")
        try check(bn.runningMean.value, f, "running_mean_after3")
        try check(bn.runningVar.value, f, "running_var_after3")
        XCTAssertEqual(bn.numBatchesTracked.value, f.file["num_batches_tracked_after3"]!.int64s()[0])
    }

    func testBatchNormEval() throws {
        let f = try Fixture("batchnorm2d_eval.safetensors")
        let bn = BatchNorm2d(5)
        bn.weight.value = try f.tensor("weight")
        bn.bias.value = try f.tensor("bias")
        bn.runningMean.value = try f.tensor("running_mean")
        bn.runningVar.value = try f.tensor("running_var")
        bn.eval()
        let x = Variable(try f.tensor("x"), requiresGrad: true)
        let y = bn(x)
        try check(y.value, f, "out")
        XCTAssertEqual(bn.numBatchesTracked.value, 0, "eval mode must not count batches")
        try check(bn.runningMean.value, f, "running_mean")
        backward(y, try f.tensor("grad_out"))
        try check(x.grad, f, "grad.x")
        try check(bn.weight.grad, f, "grad.weight")
        try check(bn.bias.grad, f, "grad.bias")
    }

    func testActivations() throws {
        let leaky = try Fixture("leaky_relu.safetensors")
        let x = Variable(try leaky.tensor("x"), requiresGrad: true)
        let y = LeakyReLU()(x)
        XCTAssertEqual(y.value.scalars, try leaky.tensor("out").scalars, "LeakyReLU is bit-exact")
        backward(y, try leaky.tensor("grad_out"))
        XCTAssertEqual(x.grad!.scalars, try leaky.tensor("grad.x").scalars, "LeakyReLU gradient is bit-exact (0.01 at ±0)")

        let sig = try Fixture("sigmoid.safetensors")
        let s = Variable(try sig.tensor("x"), requiresGrad: true)
        let t = Sigmoid()(s)
        try check(t.value, sig, "out")
        backward(t, try sig.tensor("grad_out"))
        try check(s.grad, sig, "grad.x")
    }

    func testUpsampleAndConcat() throws {
        let up = try Fixture("upsample_nearest2x.safetensors")
        let x = Variable(try up.tensor("x"), requiresGrad: true)
        let y = UpsampleNearest2x()(x)
        XCTAssertEqual(y.value.scalars, try up.tensor("out").scalars)
        backward(y, try up.tensor("grad_out"))
        try check(x.grad, up, "grad.x")

        let cat = try Fixture("concat.safetensors")
        let a = Variable(try cat.tensor("a"), requiresGrad: true), b = Variable(try cat.tensor("b"), requiresGrad: true)
        let c = Functional.concatChannels([a, b])
        XCTAssertEqual(c.value.scalars, try cat.tensor("out").scalars)
        backward(c, try cat.tensor("grad_out"))
        XCTAssertEqual(a.grad!.scalars, try cat.tensor("grad.a").scalars)
        XCTAssertEqual(b.grad!.scalars, try cat.tensor("grad.b").scalars)
    }

    func testUpSampleBlock() throws {
        let f = try Fixture("upsample_block.safetensors")
        let block = UpSample(8)
        block.layer.weight.value = try f.tensor("weight")
        block.layer.bias!.value = try f.tensor("bias")
        let x = Variable(try f.tensor("x"), requiresGrad: true), fm = Variable(try f.tensor("fm"), requiresGrad: true)
        let y = block(x, skip: fm)
        try check(y.value, f, "out")
        backward(y, try f.tensor("grad_out"))
        try check(x.grad, f, "grad.x")
        try check(fm.grad, f, "grad.fm")
        try check(block.layer.weight.grad, f, "grad.weight")
        try check(block.layer.bias!.grad, f, "grad.bias")
    }

    func testLosses() throws {
        for name in ["bce", "bce_saturated"] {
            let f = try Fixture(name + ".safetensors")
            let p = Variable(try f.tensor("pred"), requiresGrad: true)
            let target = try f.tensor("target")
            let elements = Elementwise.zip(p.value, target) { LossKernel.bceElement($0, $1) }
            try check(elements, f, "loss_elem")
            let loss = BCELoss()(p, target)
            try check(loss.value, f, "loss")
            backward(loss, try f.tensor("grad_out"))
            try check(p.grad, f, "grad.pred")
        }
        let f = try Fixture("mse.safetensors")
        let p = Variable(try f.tensor("pred"), requiresGrad: true), t = Variable(try f.tensor("target"), requiresGrad: true)
        let loss = MSELoss()(p, t)
        try check(loss.value, f, "loss")
        backward(loss, try f.tensor("grad_out"))
        try check(p.grad, f, "grad.pred")
        try check(t.grad, f, "grad.target")
    }

    func testBCESaturatedSigns() throws {
        // p = 1, y = 1 gives -0.0 in PyTorch; p = 1, y = 0 gives exactly 100 (the clamp).
        let f = try Fixture("bce_saturated.safetensors")
        let expected = try f.tensor("loss_elem").scalars
        let actual = Elementwise.zip(try f.tensor("pred"), try f.tensor("target")) { LossKernel.bceElement($0, $1) }.scalars
        for (a, e) in zip(actual, expected) where e == 0 || e == 100 {
            XCTAssertEqual(a, e)
            XCTAssertEqual(a.sign, e.sign)
        }
    }

    func testAdamAndAdamW() throws {
        let f = try Fixture("adam.safetensors")
        let configurations: [(String, Double, Double, Bool)] = [
            ("adam", 1e-4, 0, false), ("adamw", 1e-4, 0.01, true), ("adam_lr0.1", 0.1, 0, false),
            ("adamw_lr0.1", 0.1, 0.01, true), ("adam_l2_lr0.1", 0.1, 0.01, false),
        ]
        let param0 = try f.tensor("param0")
        for (prefix, lr, wd, decoupled) in configurations {
            let parameter = Variable(param0, requiresGrad: true)
            let adam = Adam(parameters: [("p", parameter)], learningRate: lr, weightDecay: wd, decoupledWeightDecay: decoupled)
            for step in 1...3 {
                parameter.grad = try f.tensor("grad_step\(step)")
                adam.step()
                try check(parameter.value, f, "\(prefix).param_step\(step)")
                try check(adam.stateEntries().tensor("exp_avg.p"), f, "\(prefix).exp_avg_step\(step)")
                try check(adam.stateEntries().tensor("exp_avg_sq.p"), f, "\(prefix).exp_avg_sq_step\(step)")
                // The update itself, which a parameter comparison at lr 1e-4 barely sees (README pitfall 7).
                let update = Elementwise.subtract(parameter.value, param0)
                let expectedUpdate = Elementwise.subtract(try f.tensor("\(prefix).param_step\(step)"), param0)
                if let problem = normalizedMismatch(update, expectedUpdate, tolerance: lr < 1e-3 ? 1e-3 : 1e-5) {
                    XCTFail("\(prefix) step \(step) update: \(problem)")
                }
            }
        }
    }
}

/// The fused BatchNorm → Dropout → LeakyReLU path equals the same layers run one by one.
final class FusedBlockTests: XCTestCase {
    func testFusedConvBlockMatchesSequential() throws {
        for training in [true, false] {
            let block = ConvBlock(3, 4, dropout: 0.3)
            block.initialize(generator: RandomGenerator(seed: 1, purpose: "init"))
            block.setTraining(training)
            let x = RandomGenerator(seed: 2, purpose: "x").normal([2, 3, 6, 5])
            let g = RandomGenerator(seed: 3, purpose: "g").normal([2, 4, 6, 5])
            func run(fused: Bool) -> (Tensor, [Tensor], [Tensor]) {
                block.zeroGrad()
                block.setDropoutGenerator(RandomGenerator(seed: 9, purpose: "dropout"))
                let input = Variable(x, requiresGrad: true)
                let y = fused ? block(input) : block.layer(input)
                y.backward(g)
                let stats = [block.norm1.runningMean.value, block.norm2.runningVar.value]
                return (y.value, [input.grad!] + block.parameters.map { $0.grad! }, stats)
            }
            let state = block.stateDict()
            let (y1, grads1, stats1) = run(fused: true)
            try block.loadStateDict(state, path: "memory")
            let (y2, grads2, stats2) = run(fused: false)
            XCTAssertNil(mismatch(y1, y2, rtol: 1e-5, atol: 1e-6), "output, training=\(training)")
            for (a, b) in zip(grads1, grads2) { XCTAssertNil(mismatch(a, b, rtol: 1e-4, atol: 1e-5), "gradient, training=\(training)") }
            for (a, b) in zip(stats1, stats2) { XCTAssertNil(mismatch(a, b), "running statistics") }
            if training { XCTAssertGreaterThan(y1.scalars.filter { $0 == 0 }.count, 10, "dropout is active") }
        }
    }
}

/// The noise predictor's fused GroupNorm → + shift → dropout → SiLU against the ops in sequence.
final class FusedGroupNormTests: XCTestCase {
    func testFusedGroupNormShiftDropoutSiLUMatchesSequential() throws {
        let x = RandomGenerator(seed: 2, purpose: "x").normal([3, 8, 5, 7], std: 2)
        let shiftValues = RandomGenerator(seed: 4, purpose: "shift").normal([3, 8])
        let g = RandomGenerator(seed: 3, purpose: "g").normal([3, 8, 5, 7])
        for (training, withShift) in [(true, true), (true, false), (false, true)] {
            let norm = GroupNorm(groups: 4, channels: 8)
            norm.weight.value = RandomGenerator(seed: 5, purpose: "w").normal([8])
            norm.bias.value = RandomGenerator(seed: 6, purpose: "b").normal([8])
            let dropout = Dropout(p: 0.3)
            dropout.setTraining(training)
            func run(fused: Bool) -> (Tensor, [Tensor]) {
                norm.weight.grad = nil
                norm.bias.grad = nil
                dropout.generator = RandomGenerator(seed: 9, purpose: "dropout")
                let input = Variable(x, requiresGrad: true)
                let shift = withShift ? Variable(shiftValues, requiresGrad: true) : nil
                let y: Variable
                if fused {
                    y = norm.shiftDropoutSiLU(input, shift: shift, dropout: dropout)
                } else {
                    let normalised = norm(input)
                    y = Functional.silu(dropout(shift.map { Functional.addPerChannel(normalised, $0) } ?? normalised))
                }
                y.backward(g)
                return (y.value, [input.grad!, norm.weight.grad!, norm.bias.grad!] + (shift.map { [$0.grad!] } ?? []))
            }
            let (y1, grads1) = run(fused: true)
            let (y2, grads2) = run(fused: false)
            XCTAssertEqual(y1.scalars, y2.scalars, "the forward pass rounds like the ops in sequence (training=\(training))")
            XCTAssertEqual(grads1.count, withShift ? 4 : 3)
            for (index, (a, b)) in zip(grads1, grads2).enumerated() {
                XCTAssertNil(mismatch(a, b, rtol: 1e-5, atol: 1e-6), "gradient \(index), training=\(training), shift=\(withShift)")
            }
            if training { XCTAssertGreaterThan(y1.scalars.filter { $0 == 0 }.count, 20, "dropout is active") }
        }
    }
}

/// torch.optim.SGD's update rule (no golden file exists for it): with weight decay wd, momentum μ,
/// dampening τ: d = g + wd·p; b = d at the first step, then b = μ·b + (1-τ)·d;
/// p -= lr·(nesterov ? d + μ·b : b).
final class SGDTests: XCTestCase {
    func testMomentumNesterovAndWeightDecay() {
        for nesterov in [false, true] {
            let parameter = Variable(Tensor(shape: [2], scalars: [1.0, -2.0]), requiresGrad: true)
            let sgd = SGD(parameters: [("p", parameter)], learningRate: 0.1, momentum: 0.9, dampening: 0.1, weightDecay: 0.01, nesterov: nesterov)
            var p: [Double] = [1.0, -2.0]
            var buffer: [Double]? = nil
            for gradient in [[0.5, -1.0], [0.25, 0.75], [-1.0, 0.5]] {
                parameter.grad = Tensor(shape: [2], scalars: gradient.map(Float.init))
                sgd.step()
                let d = zip(gradient, p).map { $0 + 0.01 * $1 }
                buffer = buffer.map { b in zip(b, d).map { 0.9 * $0 + 0.9 * $1 } } ?? d
                let direction = nesterov ? zip(d, buffer!).map { $0 + 0.9 * $1 } : buffer!
                p = zip(p, direction).map { $0 - 0.1 * $1 }
                for i in 0..<2 { XCTAssertEqual(Double(parameter.value[flat: i]), p[i], accuracy: 1e-6, "nesterov=\(nesterov)") }
            }
        }
    }
}
