import CKernels
import Foundation

/// Batch normalisation over (N, H, W) per channel, with PyTorch's conventions: training
/// normalises with the biased batch variance; the running variance is updated with the unbiased
/// one; momentum weights the new statistic. The forward and backward passes are those of
/// `NormDropoutActivationKernel` with no dropout and an identity activation.
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
                    for image in 0..<n { sum += wb_sum(p + (image * c + channel) * inner, inner) }
                    let m = sum / total
                    var squares = 0.0
                    for image in 0..<n { squares += wb_sum_squared_deviations(p + (image * c + channel) * inner, inner, m) }
                    mean[channel] = m
                    variance[channel] = squares / total
                }
            }
        }
        return (mean, variance)
    }

    public static func inferenceSaved(runningMean: Tensor, runningVar: Tensor, eps: Float) -> Saved {
        Saved(mean: runningMean.scalars,
              invStd: runningVar.scalars.map { Float(1.0 / (Double($0) + Double(eps)).squareRoot()) })
    }
}
