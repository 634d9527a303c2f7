import CKernels
import Foundation

/// The seed's BatchNorm → Dropout → LeakyReLU run as one kernel (forward and backward), which
/// reads and writes each activation once and keeps only the output and a byte mask for the
/// backward pass instead of three intermediate tensors.
public enum NormDropoutActivationKernel {
    public struct Saved {
        public var norm: BatchNormKernel.Saved
        /// 1 = kept; nil when dropout is off.
        public var mask: KeepMask?
        public var dropoutScale: Float
        /// The block's output, whose sign is the LeakyReLU's input sign.
        public var output: Tensor
    }

    /// y = leaky(mask·scale·BN(x)). In training BN uses batch statistics and updates the running ones.
    public static func forward(_ x: Tensor, gamma: Tensor, beta: Tensor, runningMean: inout Tensor, runningVar: inout Tensor,
                               training: Bool, momentum: Float, eps: Float, mask: KeepMask?, dropout p: Float, slope: Float) -> (Tensor, Saved) {
        let (n, c, h, w) = x.nchw
        let inner = h * w
        let norm: BatchNormKernel.Saved
        if training {
            let count = BatchReduction.globalBatch(local: n) * inner
            precondition(count > 1, "BatchNorm2d in training needs more than one value per channel, got input \(x.shape)")
            let (mean, variance) = BatchNormKernel.statistics(x)
            norm = BatchNormKernel.Saved(mean: mean.map { Float($0) }, invStd: variance.map { Float(1.0 / ($0 + Double(eps)).squareRoot()) })
            let rm = runningMean.mutablePointer(), rv = runningVar.mutablePointer()
            let unbias = Double(count) / Double(count - 1)
            for channel in 0..<c {
                rm[channel] = (1 - momentum) * rm[channel] + momentum * norm.mean[channel]
                rv[channel] = (1 - momentum) * rv[channel] + momentum * Float(variance[channel] * unbias)
            }
        } else {
            norm = BatchNormKernel.inferenceSaved(runningMean: runningMean, runningVar: runningVar, eps: eps)
        }
        let scale: Float = p > 0 ? 1 / (1 - p) : 1
        var y = Tensor(uninitializedShape: x.shape)
        let yp = y.mutablePointer(), xp = x.pointer, gp = gamma.pointer, bp = beta.pointer
        norm.mean.withUnsafeBufferPointer { mean in
            norm.invStd.withUnsafeBufferPointer { invStd in
                mask.withOptionalBuffer { maskPointer in
                    Parallel.forEach(n * c, grain: 2) { plane in
                        let channel = plane % c
                        let a = invStd[channel] * gp[channel]
                        let b = bp[channel] - mean[channel] * a
                        wb_affine_dropout_leaky(xp + plane * inner, yp + plane * inner, inner, a, b,
                                                maskPointer.map { $0 + plane * inner }, scale, slope)
                    }
                }
            }
        }
        return (y, Saved(norm: norm, mask: mask, dropoutScale: scale, output: y))
    }

    /// Gradients for x (when asked), gamma and beta.
    public static func backward(_ x: Tensor, gradOutput g: Tensor, gamma: Tensor, saved: Saved, training: Bool, slope: Float,
                                needsInputGradient: Bool) -> (input: Tensor?, gamma: Tensor, beta: Tensor) {
        let (n, c, h, w) = x.nchw
        let inner = h * w, total = Double(BatchReduction.globalBatch(local: n) * inner)
        var gradGamma = Tensor(uninitializedShape: [c]), gradBeta = Tensor(uninitializedShape: [c])
        let gg = gradGamma.mutablePointer(), gb = gradBeta.mutablePointer()
        var gradInput = needsInputGradient ? Tensor(uninitializedShape: x.shape) : nil
        let gx = gradInput?.mutablePointer()
        let xp = x.pointer, gp = g.pointer, yp = saved.output.pointer, gammaP = gamma.pointer
        let scale = saved.dropoutScale
        let mask = saved.mask
        mask.withOptionalBuffer { maskPointer in
            saved.norm.mean.withUnsafeBufferPointer { mean in
                saved.norm.invStd.withUnsafeBufferPointer { invStd in
                    // dL/d(BN output) = g · leaky'(y) · mask · scale, formed inside the kernels; Σd and
                    // Σd·x̂ per (image, channel) plane, added over the batch's images in order.
                    var planes = [Double](repeating: 0, count: 2 * n * c)
                    planes.withUnsafeMutableBufferPointer { planes in
                        Parallel.forEach(n * c, grain: 2) { plane in
                            let channel = plane % c, offset = plane * inner
                            wb_normalization_gradient_sums(gp + offset, xp + offset, inner, mean[channel], invStd[channel], 1,
                                                           yp + offset, slope, maskPointer.map { $0 + offset }, scale,
                                                           planes.baseAddress! + 2 * plane)
                        }
                    }
                    let sums = BatchReduction.sumOverImages(planes, width: 2 * c)
                    for channel in 0..<c {
                        gb[channel] = Float(sums[2 * channel])
                        gg[channel] = Float(sums[2 * channel + 1])
                    }
                    guard let gx else { return }
                    Parallel.forEach(n * c, grain: 2) { plane in
                        let channel = plane % c, offset = plane * inner
                        let m = mean[channel], s = invStd[channel]
                        let a = gammaP[channel] * s
                        let meanG = Float(sums[2 * channel] / total), meanGX = Float(sums[2 * channel + 1] / total)
                        wb_normalization_input_gradient(gp + offset, xp + offset, inner, m, s, 1, yp + offset, slope,
                                                        maskPointer.map { $0 + offset }, scale, a, meanG, meanGX,
                                                        training ? 1 : 0, gx + offset)
                    }
                }
            }
        }
        return (gradInput, gradGamma, gradBeta)
    }
}
