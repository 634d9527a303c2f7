import CKernels
import Foundation

/// Group normalisation (Wu & He 2018; PyTorch's nn.GroupNorm): statistics per example over
/// each group of C/G channels and all pixels, biased variance, per-channel affine.
public enum GroupNormKernel {
    public struct Saved {
        public var mean: [Float]    // [N·G]
        public var invStd: [Float]  // [N·G]
    }

    /// Statistics per (image, group), then `apply(plane, a, b)` for each plane of the group, where the
    /// plane's normalised values are x·a + b: one pass per group while its data is in cache.
    static func normalize(_ x: Tensor, groups: Int, gamma: Tensor, beta: Tensor, eps: Float,
                          apply: (_ plane: Int, _ a: Float, _ b: Float) -> Void) -> Saved {
        let n = x.shape[0], c = x.shape[1]
        precondition(c % groups == 0, "GroupNorm: \(c) channels do not split into \(groups) groups")
        let inner = x.count / max(n * c, 1), perGroup = c / groups, count = perGroup * inner
        var mean = [Float](repeating: 0, count: n * groups), invStd = [Float](repeating: 0, count: n * groups)
        let xp = x.pointer, gp = gamma.pointer, bp = beta.pointer
        mean.withUnsafeMutableBufferPointer { mean in
            invStd.withUnsafeMutableBufferPointer { invStd in
                Parallel.forEach(n * groups) { group in
                    let base = xp + group * count
                    let m = wb_sum(base, count) / Double(count)
                    let squares = wb_sum_squared_deviations(base, count, m)
                    let s = Float(1 / (squares / Double(count) + Double(eps)).squareRoot())
                    mean[group] = Float(m)
                    invStd[group] = s
                    let firstChannel = (group % groups) * perGroup
                    for k in 0..<perGroup {
                        let channel = firstChannel + k
                        let scale = s * gp[channel], shift = bp[channel] - Float(m) * scale
                        apply(group * perGroup + k, scale, shift)
                    }
                }
            }
        }
        return Saved(mean: mean, invStd: invStd)
    }

    public static func forward(_ x: Tensor, groups: Int, gamma: Tensor, beta: Tensor, eps: Float) -> (Tensor, Saved) {
        var y = Tensor(uninitializedShape: x.shape)
        let inner = x.count / max(x.shape[0] * x.shape[1], 1)
        let xp = x.pointer, yp = y.mutablePointer()
        let saved = normalize(x, groups: groups, gamma: gamma, beta: beta, eps: eps) { plane, a, b in
            wb_affine_dropout_leaky(xp + plane * inner, yp + plane * inner, inner, a, b, nil, 1, 1)
        }
        return (y, saved)
    }

    /// What the fused block's backward pass needs: the statistics, each plane's affine map x·a + b and
    /// shift, and the dropout mask; SiLU's input is recomputed from them (the same bits) rather than kept.
    public struct ActivatedSaved {
        public var norm: Saved
        /// a and b of each (image, channel) plane, [N·C] each.
        public var scales: [Float], offsets: [Float]
        public var shift: Tensor?
        public var mask: KeepMask?
        public var dropoutScale: Float
    }

    /// SiLU(dropout(GroupNorm(x) + shift)) in one pass per group, the noise predictor's block; `shift`
    /// is [N, C] (the projected time embedding) or nil, `mask` the dropout keep mask or nil. The
    /// values equal those of the four ops in sequence, bit for bit.
    public static func forwardShiftDropoutSiLU(_ x: Tensor, groups: Int, gamma: Tensor, beta: Tensor, shift: Tensor?,
                                               mask: KeepMask?, dropoutScale: Float, eps: Float) -> (Tensor, ActivatedSaved) {
        let n = x.shape[0], c = x.shape[1]
        precondition(shift == nil || shift!.count == n * c, "GroupNorm shift must be [N, C] = [\(n), \(c)], got \(shift!.shape)")
        var y = Tensor(uninitializedShape: x.shape)
        var scales = [Float](repeating: 0, count: n * c), offsets = [Float](repeating: 0, count: n * c)
        let inner = x.count / max(n * c, 1)
        let xp = x.pointer, yp = y.mutablePointer(), sp = shift?.pointer
        let saved = mask.withOptionalBuffer { maskPointer in
            scales.withUnsafeMutableBufferPointer { scales in
                offsets.withUnsafeMutableBufferPointer { offsets in
                    normalize(x, groups: groups, gamma: gamma, beta: beta, eps: eps) { plane, a, b in
                        let offset = plane * inner
                        scales[plane] = a
                        offsets[plane] = b
                        wb_affine_dropout_silu(xp + offset, yp + offset, inner, a, b, sp?[plane] ?? 0,
                                               maskPointer.map { $0 + offset }, dropoutScale)
                    }
                }
            }
        }
        return (y, ActivatedSaved(norm: saved, scales: scales, offsets: offsets, shift: shift, mask: mask,
                                  dropoutScale: dropoutScale))
    }

    public static func backward(_ x: Tensor, gradOutput g: Tensor, groups: Int, gamma: Tensor, saved: Saved,
                                needsInputGradient: Bool) -> (input: Tensor?, gamma: Tensor, beta: Tensor) {
        let grads = normalizationBackward(x, gradOutput: g, activation: nil, groups: groups, gamma: gamma, saved: saved,
                                          needsInputGradient: needsInputGradient, needsShiftGradient: false)
        return (grads.input, grads.gamma, grads.beta)
    }

    /// Gradients of `forwardShiftDropoutSiLU`: input (when asked), gamma, beta, and the shift [N, C] (when asked).
    public static func backwardShiftDropoutSiLU(_ x: Tensor, gradOutput g: Tensor, groups: Int, gamma: Tensor,
                                                saved: ActivatedSaved, needsInputGradient: Bool, needsShiftGradient: Bool)
        -> (input: Tensor?, gamma: Tensor, beta: Tensor, shift: Tensor?) {
        normalizationBackward(x, gradOutput: g, activation: saved, groups: groups, gamma: gamma, saved: saved.norm,
                              needsInputGradient: needsInputGradient, needsShiftGradient: needsShiftGradient)
    }

    /// The normalisation's backward pass for the output gradient `g`, through the shift, dropout and SiLU
    /// of `activation` when given: d = SiLU′(z)·g·(mask·scale). The shift gradient of a plane is its Σ d,
    /// which the beta gradient sums over images anyway. Everything a group needs happens in one task
    /// while its planes are in cache (the upstream d in a buffer of the group's size).
    static func normalizationBackward(_ x: Tensor, gradOutput g: Tensor, activation: ActivatedSaved?, groups: Int,
                                      gamma: Tensor, saved: Saved, needsInputGradient: Bool, needsShiftGradient: Bool)
        -> (input: Tensor?, gamma: Tensor, beta: Tensor, shift: Tensor?) {
        let n = x.shape[0], c = x.shape[1]
        let inner = x.count / max(n * c, 1), perGroup = c / groups, count = perGroup * inner
        let xp = x.pointer, gp = g.pointer, gammaP = gamma.pointer
        var gradGamma = Tensor(uninitializedShape: [c]), gradBeta = Tensor(uninitializedShape: [c])
        var gradShift = needsShiftGradient ? Tensor(uninitializedShape: [n, c]) : nil
        let gg = gradGamma.mutablePointer(), gb = gradBeta.mutablePointer(), gs = gradShift?.mutablePointer()
        var gradInput = needsInputGradient ? Tensor(uninitializedShape: x.shape) : nil
        let gx = gradInput?.mutablePointer()
        let maskScale = activation?.dropoutScale ?? 1
        // Σd and Σd·x̂ per (image, channel) plane; the beta and gamma gradients add them over the
        // batch's images in order.
        var planes = [Double](repeating: 0, count: 2 * n * c)
        let mask: KeepMask? = activation?.mask
        mask.withOptionalBuffer { maskPointer in
            saved.mean.withUnsafeBufferPointer { mean in
                saved.invStd.withUnsafeBufferPointer { invStd in
                    planes.withUnsafeMutableBufferPointer { planes in
                        // One buffer of the group's size per range of groups (a thread's share).
                        Parallel.forRanges(n * groups) { range in
                            let buffer = activation == nil ? nil : UnsafeMutablePointer<Float>.allocate(capacity: count)
                            defer { buffer?.deallocate() }
                            for group in range {
                                let m = mean[group], s = invStd[group]
                                let firstChannel = (group % groups) * perGroup, start = group * count
                                let mask = maskPointer.map { $0 + start }
                                if let activation, let buffer {
                                    let shift = activation.shift?.pointer
                                    for k in 0..<perGroup {
                                        let plane = group * perGroup + k, offset = k * inner
                                        wb_affine_dropout_silu_backward(xp + start + offset, gp + start + offset, buffer + offset, inner,
                                                                        activation.scales[plane], activation.offsets[plane],
                                                                        shift?[plane] ?? 0, mask.map { $0 + offset }, maskScale)
                                    }
                                }
                                let d = buffer.map { UnsafePointer($0) } ?? gp + start, xg = xp + start
                                for k in 0..<perGroup {
                                    let plane = group * perGroup + k, offset = k * inner
                                    wb_normalization_gradient_sums(d + offset, xg + offset, inner, m, s, 1, nil, 1,
                                                                   mask.map { $0 + offset }, maskScale, planes.baseAddress! + 2 * plane)
                                    gs?[plane] = Float(planes[2 * plane])
                                }
                                guard let gx else { continue }
                                // d·γ (·mask·scale): sums over the group, then the input gradient channel by channel.
                                var sums = [0.0, 0.0]
                                for k in 0..<perGroup {
                                    let offset = k * inner
                                    wb_normalization_gradient_sums(d + offset, xg + offset, inner, m, s, gammaP[firstChannel + k],
                                                                   nil, 1, mask.map { $0 + offset }, maskScale, &sums)
                                }
                                let meanD = Float(sums[0] / Double(count)), meanDX = Float(sums[1] / Double(count))
                                for k in 0..<perGroup {
                                    let offset = k * inner
                                    wb_normalization_input_gradient(d + offset, xg + offset, inner, m, s, gammaP[firstChannel + k],
                                                                    nil, 1, mask.map { $0 + offset }, maskScale, s, meanD, meanDX,
                                                                    1, gx + start + offset)
                                }
                            }
                        }
                    }
                }
            }
        }
        let sums = BatchReduction.sumOverImages(planes, width: 2 * c)
        for channel in 0..<c {
            gb[channel] = Float(sums[2 * channel])
            gg[channel] = Float(sums[2 * channel + 1])
        }
        return (gradInput, gradGamma, gradBeta, gradShift)
    }
}
