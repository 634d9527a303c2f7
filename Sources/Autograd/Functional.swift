import Tensor

/// Differentiable ops on variables (the counterpart of `torch.nn.functional`). Each records its
/// backward on the tape; the kernels themselves live in the Tensor module.
public enum Functional {
    // MARK: Convolution and linear

    public static func conv2d(_ x: Variable, weight: Variable, bias: Variable?, stride: Int = 1, padding: Int = 0,
                              paddingMode: PaddingMode = .zeros) -> Variable {
        let name = Profiler.isEnabled
            ? "conv2d \(weight.shape[2])x\(weight.shape[3]) s\(stride) \(weight.shape[1])→\(weight.shape[0]) @\(x.shape[2])x\(x.shape[3])" : ""
        // The forward row names its algorithm; the backward row ("◂ backward") keeps the plain name.
        let forwardName = Profiler.isEnabled
            ? name + " " + Conv2dKernel.forwardAlgorithm(input: x.shape, weight: weight.shape, stride: stride, padding: padding,
                                                         paddingMode: paddingMode)
            : ""
        let y = Profiler.measure(forwardName) {
            Conv2dKernel.forward(input: x.value, weight: weight.value, bias: bias?.value, stride: stride, padding: padding, paddingMode: paddingMode)
        }
        let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        return Tape.record(y, inputs: inputs, name: name) { g in
            let grads = Conv2dKernel.backward(input: x.value, weight: weight.value, gradOutput: g, stride: stride,
                                              padding: padding, paddingMode: paddingMode,
                                              needsInputGradient: x.requiresGrad, hasBias: bias != nil)
            return bias == nil ? [grads.input, grads.weight] : [grads.input, grads.weight, grads.bias]
        }
    }

    public static func linear(_ x: Variable, weight: Variable, bias: Variable?) -> Variable {
        let y = Profiler.measure("linear") { LinearKernel.forward(x.value, weight: weight.value, bias: bias?.value) }
        let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        return Tape.record(y, inputs: inputs, name: "linear") { g in
            let grads = LinearKernel.backward(x.value, weight: weight.value, gradOutput: g,
                                              needsInputGradient: x.requiresGrad, hasBias: bias != nil)
            return bias == nil ? [grads.input, grads.weight] : [grads.input, grads.weight, grads.bias]
        }
    }

    /// Rows `indices` of `table` [K, D] → [B, D] (nn.Embedding / F.embedding).
    public static func embedding(_ table: Variable, indices: [Int]) -> Variable {
        let rows = table.shape[0]
        return Tape.record(EmbeddingKernel.forward(table: table.value, indices: indices), inputs: [table], name: "embedding") { g in
            [EmbeddingKernel.backward(gradOutput: g, indices: indices, rows: rows)]
        }
    }

    // MARK: Normalisation

    /// Batch normalisation; in training it normalises with batch statistics and updates the
    /// running statistics in place. (The fused kernel with no dropout and slope 1, i.e. no activation.)
    public static func batchNorm2d(_ x: Variable, weight: Variable, bias: Variable, runningMean: inout Tensor,
                                   runningVar: inout Tensor, training: Bool, momentum: Float = 0.1, eps: Float = 1e-5) -> Variable {
        batchNormDropoutLeakyReLU(x, weight: weight, bias: bias, runningMean: &runningMean, runningVar: &runningVar, training: training,
                                  momentum: momentum, eps: eps, dropout: 0, generator: nil, slope: 1)
    }

    // MARK: Activations and dropout

    public static func leakyReLU(_ x: Variable, slope: Float = 0.01) -> Variable {
        Tape.record(Profiler.measure("leaky_relu") { Activation.leakyReLU(x.value, slope: slope) }, inputs: [x], name: "leaky_relu") { g in
            [Activation.leakyReLUBackward(x.value, g, slope: slope)]
        }
    }

    public static func relu(_ x: Variable) -> Variable {
        Tape.record(Activation.relu(x.value), inputs: [x], name: "relu") { g in [Activation.reluBackward(x.value, g)] }
    }

    public static func sigmoid(_ x: Variable) -> Variable {
        let y = Profiler.measure("sigmoid") { Activation.sigmoid(x.value) }
        return Tape.record(y, inputs: [x], name: "sigmoid") { g in [Activation.sigmoidBackward(output: y, g)] }
    }

    public static func silu(_ x: Variable) -> Variable {
        Tape.record(Profiler.measure("silu") { Activation.silu(x.value) }, inputs: [x], name: "silu") { g in [Activation.siluBackward(x.value, g)] }
    }

    /// Zeroes each element with probability p and scales the kept ones by 1/(1-p); the mask comes
    /// from `generator` (16 random bits per element), so a seeded run drops the same units every time.
    public static func dropout(_ x: Variable, p: Float, training: Bool, generator: RandomGenerator) -> Variable {
        guard training && p > 0 else { return x }
        if p >= 1 { return Tape.record(Tensor(zeros: x.shape), inputs: [x], name: "dropout") { g in [Tensor(zeros: g.shape)] } }
        let scale = 1 / (1 - p)
        let keep = Profiler.measure("dropout mask") { generator.batchKeepMask(shape: x.shape, keep: 1 - p) }
        func apply(_ t: Tensor) -> Tensor {
            var y = Tensor(uninitializedShape: t.shape)
            let yp = y.mutablePointer(), tp = t.pointer
            withExtendedLifetime(keep) {
                let m = keep.pointer
                Parallel.forRanges(t.count, grain: 16_384) { range in
                    for i in range { yp[i] = m[i] != 0 ? tp[i] * scale : 0 }
                }
            }
            return y
        }
        let y = Profiler.measure("dropout") { apply(x.value) }
        return Tape.record(y, inputs: [x], name: "dropout") { g in [apply(g)] }
    }

    /// BatchNorm → Dropout → LeakyReLU in one kernel (the seed's block); the same result as the
    /// three ops in sequence with the same dropout generator. `training` is BatchNorm's mode;
    /// pass p = 0 when dropout is off.
    public static func batchNormDropoutLeakyReLU(_ x: Variable, weight: Variable, bias: Variable, runningMean: inout Tensor,
                                                 runningVar: inout Tensor, training: Bool, momentum: Float = 0.1, eps: Float = 1e-5,
                                                 dropout p: Float, generator: RandomGenerator?, slope: Float = 0.01) -> Variable {
        let useDropout = p > 0
        precondition(!useDropout || generator != nil, "dropout needs a generator")
        precondition(p < 1, "the fused block needs dropout p < 1")
        let name = Profiler.isEnabled ? "bn+dropout+leaky \(x.shape[1]) @\(x.shape[2])x\(x.shape[3])" : ""
        let mask = useDropout ? Profiler.measure("dropout mask") { generator!.batchKeepMask(shape: x.shape, keep: 1 - p) } : nil
        let (y, saved) = Profiler.measure(name) {
            NormDropoutActivationKernel.forward(x.value, gamma: weight.value, beta: bias.value, runningMean: &runningMean,
                                                runningVar: &runningVar, training: training, momentum: momentum, eps: eps,
                                                mask: mask, dropout: useDropout ? p : 0, slope: slope)
        }
        return Tape.record(y, inputs: [x, weight, bias], name: name) { g in
            let grads = NormDropoutActivationKernel.backward(x.value, gradOutput: g, gamma: weight.value, saved: saved, training: training,
                                                            slope: slope, needsInputGradient: x.requiresGrad)
            return [grads.input, grads.gamma, grads.beta]
        }
    }

    // MARK: Layout

    public static func upsampleNearest2x(_ x: Variable) -> Variable {
        Tape.record(Profiler.measure("upsample") { Resampling.upsampleNearest2x(x.value) }, inputs: [x], name: "upsample") { g in [Resampling.upsampleNearest2xBackward(g)] }
    }

    public static func concatChannels(_ parts: [Variable]) -> Variable {
        let channels = parts.map { $0.shape[1] }
        return Tape.record(Profiler.measure("concat") { Resampling.concatChannels(parts.map(\.value)) }, inputs: parts, name: "concat") { g in
            Resampling.splitChannels(g, channels)
        }
    }

    public static func reshape(_ x: Variable, _ shape: [Int]) -> Variable {
        let original = x.shape
        return Tape.record(x.value.reshaped(shape), inputs: [x], name: "reshape") { g in [g.reshaped(original)] }
    }

    // MARK: Arithmetic

    public static func scale(_ a: Variable, _ s: Float) -> Variable {
        Tape.record(Profiler.measure("scale") { Elementwise.scale(a.value, s) }, inputs: [a], name: "scale") { g in [Elementwise.scale(g, s)] }
    }

    /// x [N, C, …] + v, with v [C] or [N, C] broadcast over the remaining axes.
    public static func addPerChannel(_ x: Variable, _ v: Variable) -> Variable {
        let perImage = v.value.count == x.shape[0] * x.shape[1]
        return Tape.record(Profiler.measure("add per channel") { Elementwise.addPerChannel(x.value, v.value) }, inputs: [x, v],
                           name: "add per channel") { g in
            [g, v.requiresGrad ? Elementwise.sumForPerChannel(g, perImage: perImage).reshaped(v.shape) : nil]
        }
    }

    /// Sum of all elements, as a 0-dim tensor.
    public static func sum(_ x: Variable) -> Variable {
        let shape = x.shape
        return Tape.record(Tensor(scalar: Float(Reduction.sum(x.value))), inputs: [x], name: "sum") { g in
            [Tensor(repeating: g.scalarValue, shape: shape)]
        }
    }

    /// Mean of all elements, as a 0-dim tensor.
    public static func mean(_ x: Variable) -> Variable {
        let shape = x.shape, n = Float(x.value.count)
        return Tape.record(Tensor(scalar: Float(Reduction.sum(x.value) / Double(x.value.count))), inputs: [x], name: "mean") { g in
            [Tensor(repeating: g.scalarValue / n, shape: shape)]
        }
    }

    // MARK: Losses

    /// nn.BCELoss() (mean) of probabilities `p` against `target`.
    public static func binaryCrossEntropy(_ p: Variable, target: Tensor) -> Variable {
        Tape.record(Tensor(scalar: LossKernel.binaryCrossEntropy(p.value, target)), inputs: [p], name: "bce") { g in
            [LossKernel.binaryCrossEntropyBackward(p.value, target, gradOutput: g.scalarValue)]
        }
    }

    /// nn.MSELoss() (mean); gradients flow to both arguments when they require them.
    public static func meanSquaredError(_ p: Variable, _ target: Variable) -> Variable {
        Tape.record(Tensor(scalar: LossKernel.meanSquaredError(p.value, target.value)), inputs: [p, target], name: "mse") { g in
            let gp = LossKernel.meanSquaredErrorBackward(p.value, target.value, gradOutput: g.scalarValue)
            return [gp, target.requiresGrad ? Elementwise.scale(gp, -1) : nil]
        }
    }

    /// Sigmoid + BCE on logits, averaged over elements with non-zero `weight` (nil: all elements);
    /// the stable form of BCE(sigmoid(z), y), as nn.BCEWithLogitsLoss with a 0/1 mask.
    public static func binaryCrossEntropyWithLogits(_ z: Variable, target: Tensor, weight: Tensor? = nil) -> Variable {
        let (loss, count) = LossKernel.bceWithLogits(z.value, target, weight: weight)
        return Tape.record(Tensor(scalar: loss), inputs: [z], name: "bce with logits") { g in
            [LossKernel.bceWithLogitsBackward(z.value, target, weight: weight, count: count, gradOutput: g.scalarValue)]
        }
    }
}

extension Functional {
    /// Group normalisation with per-channel affine parameters.
    public static func groupNorm(_ x: Variable, groups: Int, weight: Variable, bias: Variable, eps: Float = 1e-5) -> Variable {
        let (y, saved) = Profiler.measure("groupnorm") { GroupNormKernel.forward(x.value, groups: groups, gamma: weight.value, beta: bias.value, eps: eps) }
        return Tape.record(y, inputs: [x, weight, bias], name: "groupnorm") { g in
            let grads = GroupNormKernel.backward(x.value, gradOutput: g, groups: groups, gamma: weight.value, saved: saved,
                                                 needsInputGradient: x.requiresGrad)
            return [grads.input, grads.gamma, grads.beta]
        }
    }

    /// SiLU(dropout(GroupNorm(x) + shift)) as one op (the noise predictor's block), equal to the four
    /// ops in sequence with the same dropout generator; `shift` is [N, C] or nil.
    public static func groupNormShiftDropoutSiLU(_ x: Variable, groups: Int, weight: Variable, bias: Variable, shift: Variable?,
                                                 dropout p: Float, training: Bool, generator: RandomGenerator,
                                                 eps: Float = 1e-5) -> Variable {
        precondition(p < 1, "the fused block needs dropout p < 1")
        let useDropout = training && p > 0
        let mask = useDropout ? Profiler.measure("dropout mask") { generator.batchKeepMask(shape: x.shape, keep: 1 - p) } : nil
        let (y, saved) = Profiler.measure("groupnorm+shift+dropout+silu") {
            GroupNormKernel.forwardShiftDropoutSiLU(x.value, groups: groups, gamma: weight.value, beta: bias.value, shift: shift?.value,
                                                    mask: mask, dropoutScale: useDropout ? 1 / (1 - p) : 1, eps: eps)
        }
        let inputs = [x, weight, bias] + (shift.map { [$0] } ?? [])
        return Tape.record(y, inputs: inputs, name: "groupnorm+shift+dropout+silu") { g in
            let grads = GroupNormKernel.backwardShiftDropoutSiLU(x.value, gradOutput: g, groups: groups, gamma: weight.value, saved: saved,
                                                                 needsInputGradient: x.requiresGrad,
                                                                 needsShiftGradient: shift?.requiresGrad ?? false)
            return [grads.input, grads.gamma, grads.beta] + (shift == nil ? [] : [grads.shift])
        }
    }

    /// alpha·op(A[b])·op(B[b]) for [B, r, c] operands.
    public static func batchedMatmul(_ a: Variable, _ b: Variable, transposeA: Bool = false, transposeB: Bool = false,
                                     alpha: Float = 1) -> Variable {
        let c = Profiler.measure("batched matmul") {
            AttentionKernel.batchedMatmul(a.value, b.value, transposeA: transposeA, transposeB: transposeB, alpha: alpha)
        }
        return Tape.record(c, inputs: [a, b], name: "batched matmul") { g in
            // C = αAB: dA = αG·Bᵀ, dB = αAᵀ·G (with the transposes folded in).
            var gradA: Tensor?, gradB: Tensor?
            if a.requiresGrad {
                gradA = transposeA
                    ? AttentionKernel.batchedMatmul(b.value, g, transposeA: transposeB, transposeB: true, alpha: alpha)
                    : AttentionKernel.batchedMatmul(g, b.value, transposeA: false, transposeB: !transposeB, alpha: alpha)
            }
            if b.requiresGrad {
                gradB = transposeB
                    ? AttentionKernel.batchedMatmul(g, a.value, transposeA: true, transposeB: transposeA, alpha: alpha)
                    : AttentionKernel.batchedMatmul(a.value, g, transposeA: !transposeA, transposeB: false, alpha: alpha)
            }
            return [gradA, gradB]
        }
    }

    /// Single-head attention over the pixels of q, k and v held in one [N, 3C, H, W] tensor (an
    /// attention block's qkv projection, channels q, then k, then v): out[n] = v·softmax(qᵀk/√C)ᵀ,
    /// [N, C, H·W], as PyTorch's `scaled_dot_product_attention` on the pixels as tokens. q, k and v
    /// are read where they are (no slices copied out and no zero-padded gradients added back): the
    /// same products, so the same bits, as slicing them out and composing `batchedMatmul` and `softmax`.
    public static func scaledDotProductAttention(qkv: Variable) -> Variable {
        let (n, channels, h, w) = qkv.value.nchw
        precondition(channels % 3 == 0, "attention needs q, k and v in one tensor: \(channels) channels")
        let c = channels / 3, p = h * w, image = channels * p, alpha = 1 / Float(c).squareRoot()
        let source = qkv.value.pointer
        func q(_ x: UnsafePointer<Float>, transposed: Bool = false) -> AttentionKernel.Operand {
            .init(x, stride: image, ld: p, transposed: transposed)
        }
        func square(_ t: Tensor, transposed: Bool = false) -> AttentionKernel.Operand {
            .init(t.pointer, stride: p * p, ld: p, transposed: transposed)
        }
        // S = qᵀk/√C [p × p], P = softmax(S), out = v·Pᵀ [C × p].
        let (weights, out): (Tensor, Tensor) = Profiler.measure("attention") {
            var scores = Tensor(uninitializedShape: [n, p, p])
            AttentionKernel.batchedProducts(batch: n, m: p, n: p, k: c, alpha: alpha, a: q(source, transposed: true),
                                            b: q(source + c * p), c: scores.mutablePointer(), cStride: p * p, ldc: p)
            let weights = AttentionKernel.softmax(scores)
            var out = Tensor(uninitializedShape: [n, c, p])
            AttentionKernel.batchedProducts(batch: n, m: c, n: p, k: p, a: q(source + 2 * c * p), b: square(weights, transposed: true),
                                            c: out.mutablePointer(), cStride: c * p, ldc: p)
            return (weights, out)
        }
        return Tape.record(out, inputs: [qkv], name: "attention") { g in
            var grad = Tensor(uninitializedShape: qkv.shape)
            let dx = grad.mutablePointer(), x = qkv.value.pointer
            let gradient = AttentionKernel.Operand(g.pointer, stride: c * p, ld: p)
            // dv = g·P; dP = gᵀ·v; dS = softmax′; dq = k·dSᵀ/√C; dk = q·dS/√C.
            AttentionKernel.batchedProducts(batch: n, m: c, n: p, k: p, a: gradient, b: square(weights),
                                            c: dx + 2 * c * p, cStride: image, ldc: p)
            var dWeights = Tensor(uninitializedShape: [n, p, p])
            AttentionKernel.batchedProducts(batch: n, m: p, n: p, k: c, a: .init(g.pointer, stride: c * p, ld: p, transposed: true),
                                            b: q(x + 2 * c * p), c: dWeights.mutablePointer(), cStride: p * p, ldc: p)
            let dScores = AttentionKernel.softmaxBackward(output: weights, dWeights)
            AttentionKernel.batchedProducts(batch: n, m: c, n: p, k: p, alpha: alpha, a: q(x + c * p), b: square(dScores, transposed: true),
                                            c: dx, cStride: image, ldc: p)
            AttentionKernel.batchedProducts(batch: n, m: c, n: p, k: p, alpha: alpha, a: q(x), b: square(dScores),
                                            c: dx + c * p, cStride: image, ldc: p)
            return [grad]
        }
    }

    /// Softmax over the last axis.
    public static func softmax(_ x: Variable) -> Variable {
        let y = Profiler.measure("softmax") { AttentionKernel.softmax(x.value) }
        return Tape.record(y, inputs: [x], name: "softmax") { g in [AttentionKernel.softmaxBackward(output: y, g)] }
    }
}

extension Functional {
    /// Channels [range) of an [N, C, …] tensor.
    public static func sliceChannels(_ x: Variable, _ range: Range<Int>) -> Variable {
        let (n, c) = (x.shape[0], x.shape[1])
        let inner = x.value.count / max(n * c, 1)
        var shape = x.shape
        shape[1] = range.count
        var y = Tensor(uninitializedShape: shape)
        let yp = y.mutablePointer(), xp = x.value.pointer
        for image in 0..<n {
            (yp + image * range.count * inner).update(from: xp + (image * c + range.lowerBound) * inner, count: range.count * inner)
        }
        let fullShape = x.shape
        return Tape.record(y, inputs: [x], name: "slice channels") { g in
            var full = Tensor(zeros: fullShape)
            let fp = full.mutablePointer()
            for image in 0..<n {
                (fp + (image * c + range.lowerBound) * inner).update(from: g.pointer + image * range.count * inner, count: range.count * inner)
            }
            return [full]
        }
    }
}
