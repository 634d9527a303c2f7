import Autograd
import Tensor
import TestSupport
import XCTest

/// Finite-difference checks of every op with a backward: L = Σ out·G for a random G; the tape's
/// gradient of every input is compared with central differences of L.
final class GradientCheckTests: XCTestCase {
    let random = RandomGenerator(seed: 7, purpose: "gradcheck")

    /// Uniform values in ±[low, high] (bounded away from 0 so kinks are not crossed).
    func values(_ shape: [Int], low: Float = 0.05, high: Float = 1) -> Tensor {
        let magnitude = random.uniform(shape, low: low, high: high)
        let sign = random.bernoulli(shape, p: 0.5)
        return Elementwise.zip(magnitude, sign) { $1 > 0 ? $0 : -$0 }
    }

    func gradcheck(_ name: String, _ inputs: [Tensor], step: Float = 1e-2, rtol: Double = 1e-2, atol: Double = 2e-3,
                   file: StaticString = #filePath, line: UInt = #line, _ op: ([Variable]) -> Variable) {
        for problem in gradientCheck(inputs, weights: random, step: step, rtol: rtol, atol: atol, op) {
            XCTFail("\(name) \(problem)", file: file, line: line)
        }
    }

    func testConvolution() {
        for (stride, padding, mode, bias) in [(1, 1, PaddingMode.reflect, false), (2, 1, .reflect, false),
                                              (1, 1, .zeros, true), (1, 0, .zeros, true), (2, 1, .zeros, true)] {
            let x = values([2, 3, 5, 4]), w = values([4, 3, padding == 0 ? 1 : 3, padding == 0 ? 1 : 3])
            let inputs = bias ? [x, w, values([4])] : [x, w]
            gradcheck("conv2d s\(stride) p\(padding) \(mode)", inputs) { v in
                Functional.conv2d(v[0], weight: v[1], bias: bias ? v[2] : nil, stride: stride, padding: padding, paddingMode: mode)
            }
        }
    }

    func testLinear() {
        gradcheck("linear", [values([3, 5]), values([4, 5]), values([4])]) { v in
            Functional.linear(v[0], weight: v[1], bias: v[2])
        }
    }

    func testBatchNorm() {
        for training in [true, false] {
            let x = values([3, 2, 3, 2]), gamma = values([2]), beta = values([2])
            gradcheck("batchnorm training=\(training)", [x, gamma, beta], step: 5e-3, atol: 5e-3) { v in
                var mean = Tensor(shape: [2], scalars: [0.1, -0.2]), variance = Tensor(shape: [2], scalars: [0.8, 1.3])
                return Functional.batchNorm2d(v[0], weight: v[1], bias: v[2], runningMean: &mean, runningVar: &variance,
                                              training: training)
            }
        }
    }

    func testActivations() {
        gradcheck("leakyReLU", [values([2, 3, 2, 2])]) { Functional.leakyReLU($0[0]) }
        gradcheck("relu", [values([2, 3, 2, 2])]) { Functional.relu($0[0]) }
        gradcheck("sigmoid", [values([2, 3, 2, 2], high: 4)]) { Functional.sigmoid($0[0]) }
        gradcheck("silu", [values([2, 3, 2, 2], high: 4)]) { Functional.silu($0[0]) }
    }

    func testDropout() {
        // The same seed gives the same mask in every evaluation of the objective.
        gradcheck("dropout", [values([2, 3, 4, 4])]) { v in
            Functional.dropout(v[0], p: 0.3, training: true, generator: RandomGenerator(seed: 3, purpose: "dropout"))
        }
    }

    func testLayoutOps() {
        gradcheck("upsample", [values([2, 2, 3, 2])]) { Functional.upsampleNearest2x($0[0]) }
        gradcheck("concat", [values([2, 2, 3, 2]), values([2, 1, 3, 2])]) { Functional.concatChannels($0) }
        gradcheck("reshape", [values([2, 3, 4])]) { Functional.reshape($0[0], [6, 4]) }
    }

    func testArithmetic() {
        gradcheck("add", [values([2, 3]), values([2, 3])]) { Functional.add($0[0], $0[1]) }
        gradcheck("subtract", [values([2, 3]), values([2, 3])]) { Functional.subtract($0[0], $0[1]) }
        gradcheck("multiply", [values([2, 3]), values([2, 3])]) { Functional.multiply($0[0], $0[1]) }
        gradcheck("scale", [values([2, 3])]) { Functional.scale($0[0], -1.5) }
        gradcheck("addPerChannel [C]", [values([2, 3, 2, 2]), values([3])]) { Functional.addPerChannel($0[0], $0[1]) }
        gradcheck("addPerChannel [N,C]", [values([2, 3, 2, 2]), values([2, 3])]) { Functional.addPerChannel($0[0], $0[1]) }
        gradcheck("sum", [values([2, 3, 2])]) { Functional.sum($0[0]) }
        gradcheck("mean", [values([2, 3, 2])]) { Functional.mean($0[0]) }
    }

    func testLosses() {
        let target = random.bernoulli([2, 3, 2, 2], p: 0.5)
        gradcheck("bce", [random.uniform([2, 3, 2, 2], low: 0.2, high: 0.8)], step: 1e-3) { v in
            Functional.binaryCrossEntropy(v[0], target: target)
        }
        let mask = random.bernoulli([2, 3, 2, 2], p: 0.7)
        gradcheck("bce with logits, masked", [values([2, 3, 2, 2], high: 3)], step: 1e-3) { v in
            Functional.binaryCrossEntropyWithLogits(v[0], target: target, weight: mask)
        }
        gradcheck("mse", [values([2, 3, 2, 2]), values([2, 3, 2, 2])]) { Functional.meanSquaredError($0[0], $0[1]) }
    }

    func testGradientsAccumulateUntilZeroed() {
        let x = Variable(Tensor(shape: [2], scalars: [1, 2]), requiresGrad: true)
        Functional.sum(Functional.scale(x, 3)).backward()
        Functional.sum(Functional.scale(x, 3)).backward()
        XCTAssertEqual(x.grad?.scalars, [6, 6])
        x.zeroGrad()
        XCTAssertNil(x.grad)
        XCTAssertEqual(Tape.current.count, 0, "backward clears the tape")
    }

    func testNoGradAndDetach() {
        let x = Variable(Tensor(shape: [2], scalars: [1, 2]), requiresGrad: true)
        let y = withNoGrad { Functional.scale(x, 2) }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertEqual(Tape.current.count, 0)
        let z = Functional.scale(x, 2).detached()
        XCTAssertFalse(z.requiresGrad)
        Tape.current.reset()
    }
}

final class LossAgreementTests: XCTestCase {
    /// BCE with logits equals BCE of the sigmoid where the sigmoid does not saturate, and a zero
    /// weight removes an element from both the sum and the count.
    func testBCEWithLogitsMatchesSigmoidThenBCE() {
        let g = RandomGenerator(seed: 11, purpose: "bce")
        let z = g.normal([4, 5], std: 3), y = g.bernoulli([4, 5], p: 0.5)
        let direct = LossKernel.binaryCrossEntropy(Activation.sigmoid(z), y)
        XCTAssertEqual(LossKernel.bceWithLogits(z, y, weight: nil).loss, direct, accuracy: 1e-5)
        var weight = Tensor(repeating: 1, shape: [4, 5])
        weight[flat: 0] = 0
        var z2 = z
        z2[flat: 0] = 1000 // would dominate the loss if it were counted
        let masked = LossKernel.bceWithLogits(z2, y, weight: weight)
        XCTAssertEqual(masked.count, 19)
        let expected = (0..<20).filter { $0 != 0 }.map { LossKernel.bceElement(Activation.sigmoid(z[flat: $0]), y[flat: $0]) }
        XCTAssertEqual(masked.loss, expected.reduce(0, +) / 19, accuracy: 1e-5)
    }
}

extension GradientCheckTests {
    func testGroupNormAttentionOps() {
        let checks = self
        checks.gradcheck("groupNorm", [checks.values([2, 4, 3, 2]), checks.values([4]), checks.values([4])], step: 5e-3, atol: 5e-3) { v in
            Functional.groupNorm(v[0], groups: 2, weight: v[1], bias: v[2])
        }
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = checks.values(ta ? [2, 4, 3] : [2, 3, 4]), b = checks.values(tb ? [2, 5, 4] : [2, 4, 5])
            checks.gradcheck("batchedMatmul \(ta) \(tb)", [a, b]) { v in
                Functional.batchedMatmul(v[0], v[1], transposeA: ta, transposeB: tb, alpha: 0.5)
            }
        }
        checks.gradcheck("softmax", [checks.values([2, 3, 5], high: 2)]) { Functional.softmax($0[0]) }
        checks.gradcheck("scaledDotProductAttention", [checks.values([2, 6, 3, 2], high: 2)]) {
            Functional.scaledDotProductAttention(qkv: $0[0])
        }
    }

    /// The fused attention reads q, k and v in place: the same bytes, forward and backward, as slicing
    /// them out and composing the batched products and the softmax, on one and two threads, for batches
    /// smaller and larger than the thread count.
    func testScaledDotProductAttentionEqualsTheComposition() {
        let random = RandomGenerator(seed: 31, purpose: "attention")
        for (n, c, h, w) in [(1, 4, 3, 5), (3, 8, 4, 4)] {
            let input = random.normal([n, 3 * c, h, w]), upstream = random.normal([n, c, h * w])
            func run(fused: Bool, threads: Int) -> (Tensor, Tensor) {
                let saved = Parallel.threadCount
                Parallel.threadCount = threads
                defer { Parallel.threadCount = saved }
                let qkv = Variable(input, requiresGrad: true)
                let out: Variable
                if fused {
                    out = Functional.scaledDotProductAttention(qkv: qkv)
                } else {
                    let part = { (r: Range<Int>) in Functional.reshape(Functional.sliceChannels(qkv, r), [n, c, h * w]) }
                    let (q, k, v) = (part(0..<c), part(c..<(2 * c)), part((2 * c)..<(3 * c)))
                    let weights = Functional.softmax(Functional.batchedMatmul(q, k, transposeA: true, alpha: 1 / Float(c).squareRoot()))
                    out = Functional.batchedMatmul(v, weights, transposeB: true)
                }
                out.backward(upstream)
                return (out.value, qkv.grad!)
            }
            let (composed, composedGrad) = run(fused: false, threads: 2)
            for threads in [1, 2] {
                let (fused, fusedGrad) = run(fused: true, threads: threads)
                XCTAssertEqual(fused.shape, [n, c, h * w])
                XCTAssertEqual(fused.scalars, composed.scalars, "forward, \(n) images, \(threads) threads")
                XCTAssertEqual(fusedGrad.scalars, composedGrad.scalars, "gradient, \(n) images, \(threads) threads")
            }
        }
    }

    /// GroupNorm with one group per channel equals per-example instance normalisation; with
    /// one group, layer normalisation over C, H, W.
    func testGroupNormValues() {
        let x = RandomGenerator(seed: 2, purpose: "gn").normal([2, 4, 3, 3], mean: 1, std: 2)
        let (y, _) = GroupNormKernel.forward(x, groups: 1, gamma: Tensor(repeating: 1, shape: [4]), beta: Tensor(zeros: [4]), eps: 0)
        for image in 0..<2 {
            let values = (0..<36).map { Double(y[flat: image * 36 + $0]) }
            let mean = values.reduce(0, +) / 36
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 36
            XCTAssertEqual(mean, 0, accuracy: 1e-5)
            XCTAssertEqual(variance, 1, accuracy: 1e-4)
        }
    }
}
