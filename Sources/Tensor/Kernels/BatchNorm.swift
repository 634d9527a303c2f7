import Foundation

/// Batch normalisation over (N, H, W) per channel, with PyTorch's conventions: training
/// normalises with the biased batch variance; the running variance is updated with the unbiased
/// one; momentum weights the new statistic.
public enum BatchNormKernel {
    /// What the training backward pass needs from its forward pass.
    public struct Saved {
        public var mean: [Float]
        public var invStd: [Float]
    }

    /// Per-channel mean and biased variance (Double accumulation, two passes).
    public static func statistics(_ x: Tensor) -> (mean: [Double], variance: [Double]) {
        let (n, c, h, w) = x.nchw
        let inner = h * w, total = Double(n * inner)
        var mean = [Double](repeating: 0, count: c), variance = [Double](repeating: 0, count: c)
        let p = x.pointer
        mean.withUnsafeMutableBufferPointer { mean in
            variance.withUnsafeMutableBufferPointer { variance in
                Parallel.forEach(c) { channel in
                    var sum = 0.0
                    for image in 0..<n {
                        let plane = p + (image * c + channel) * inner
                        for i in 0..<inner { sum += Double(plane[i]) }
                    }
                    let m = sum / total
                    var squares = 0.0
                    for image in 0..<n {
                        let plane = p + (image * c + channel) * inner
                        for i in 0..<inner { let d = Double(plane[i]) - m; squares += d * d }
                    }
                    mean[channel] = m
                    variance[channel] = squares / total
                }
            }
        }
        return (mean, variance)
    }

    /// y = (x - mean)·invStd·gamma + beta, per channel.
    static func normalize(_ x: Tensor, mean: [Float], invStd: [Float], gamma: Tensor, beta: Tensor) -> Tensor {
        let (n, c, h, w) = x.nchw
        let inner = h * w
        var y = Tensor(uninitializedShape: x.shape)
        let yp = y.mutablePointer(), xp = x.pointer, gp = gamma.pointer, bp = beta.pointer
        mean.withUnsafeBufferPointer { mean in
            invStd.withUnsafeBufferPointer { invStd in
                Parallel.forEach(n * c, grain: 2) { plane in
                    let channel = plane % c
                    let scale = invStd[channel] * gp[channel]
                    let shift = bp[channel] - mean[channel] * scale
                    let src = xp + plane * inner, dst = yp + plane * inner
                    for i in 0..<inner { dst[i] = src[i] * scale + shift }
                }
            }
        }
        return y
    }

    /// Training-mode forward. Updates `runningMean`/`runningVar` in place and returns what the
    /// backward pass needs.
    public static func forwardTraining(_ x: Tensor, gamma: Tensor, beta: Tensor, runningMean: inout Tensor,
                                       runningVar: inout Tensor, momentum: Float, eps: Float) -> (Tensor, Saved) {
        let (n, _, h, w) = x.nchw
        let count = n * h * w
        precondition(count > 1, "BatchNorm2d in training needs more than one value per channel, got input \(x.shape)")
        let (mean, variance) = statistics(x)
        let meanF = mean.map { Float($0) }
        let invStd = variance.map { Float(1.0 / ($0 + Double(eps)).squareRoot()) }
        let rm = runningMean.mutablePointer(), rv = runningVar.mutablePointer()
        let unbias = Double(count) / Double(count - 1)
        for channel in 0..<mean.count {
            rm[channel] = (1 - momentum) * rm[channel] + momentum * meanF[channel]
            rv[channel] = (1 - momentum) * rv[channel] + momentum * Float(variance[channel] * unbias)
        }
        return (normalize(x, mean: meanF, invStd: invStd, gamma: gamma, beta: beta), Saved(mean: meanF, invStd: invStd))
    }

    /// Evaluation-mode forward with the running statistics.
    public static func forwardInference(_ x: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                        runningVar: Tensor, eps: Float) -> (Tensor, Saved) {
        let saved = inferenceSaved(runningMean: runningMean, runningVar: runningVar, eps: eps)
        return (normalize(x, mean: saved.mean, invStd: saved.invStd, gamma: gamma, beta: beta), saved)
    }

    public static func inferenceSaved(runningMean: Tensor, runningVar: Tensor, eps: Float) -> Saved {
        Saved(mean: runningMean.scalars,
              invStd: runningVar.scalars.map { Float(1.0 / (Double($0) + Double(eps)).squareRoot()) })
    }

    /// Gradients given dL/dy. With `training`, dx flows through the batch statistics:
    /// dx = gamma·invStd·(g - mean(g) - x̂·mean(g·x̂)); otherwise dx = g·gamma·invStd.
    public static func backward(_ x: Tensor, gradOutput g: Tensor, gamma: Tensor, saved: Saved, training: Bool,
                                needsInputGradient: Bool) -> (input: Tensor?, gamma: Tensor, beta: Tensor) {
        let (n, c, h, w) = x.nchw
        let inner = h * w, total = Double(n * inner)
        var gradGamma = Tensor(uninitializedShape: [c]), gradBeta = Tensor(uninitializedShape: [c])
        let gg = gradGamma.mutablePointer(), gb = gradBeta.mutablePointer()
        var gradInput = needsInputGradient ? Tensor(uninitializedShape: x.shape) : nil
        let gx = gradInput?.mutablePointer()
        let xp = x.pointer, gp = g.pointer, gammaP = gamma.pointer
        saved.mean.withUnsafeBufferPointer { mean in
            saved.invStd.withUnsafeBufferPointer { invStd in
                Parallel.forEach(c) { channel in
                    let m = mean[channel], s = invStd[channel]
                    var sumG = 0.0, sumGX = 0.0
                    for image in 0..<n {
                        let offset = (image * c + channel) * inner
                        for i in 0..<inner {
                            let gv = Double(gp[offset + i])
                            sumG += gv
                            sumGX += gv * Double((xp[offset + i] - m) * s)
                        }
                    }
                    gg[channel] = Float(sumGX)
                    gb[channel] = Float(sumG)
                    guard let gx else { return }
                    let scale = gammaP[channel] * s
                    if training {
                        let meanG = Float(sumG / total), meanGX = Float(sumGX / total)
                        for image in 0..<n {
                            let offset = (image * c + channel) * inner
                            for i in 0..<inner {
                                let xhat = (xp[offset + i] - m) * s
                                gx[offset + i] = scale * (gp[offset + i] - meanG - xhat * meanGX)
                            }
                        }
                    } else {
                        for image in 0..<n {
                            let offset = (image * c + channel) * inner
                            for i in 0..<inner { gx[offset + i] = scale * gp[offset + i] }
                        }
                    }
                }
            }
        }
        return (gradInput, gradGamma, gradBeta)
    }
}
