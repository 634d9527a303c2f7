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

    /// Per-channel mean and biased variance over the batch's images (Double accumulation, two
    /// passes; the sums of each image are added in image order, see `BatchReduction`).
    public static func statistics(_ x: Tensor) -> (mean: [Double], variance: [Double]) {
        let (n, c, h, w) = x.nchw
        let inner = h * w, total = Double(BatchReduction.globalBatch(local: n) * inner)
        let p = x.pointer
        var planes = [Double](repeating: 0, count: n * c)
        planes.withUnsafeMutableBufferPointer { planes in
            Parallel.forEach(n * c, grain: 2) { plane in planes[plane] = wb_sum(p + plane * inner, inner) }
        }
        let mean = BatchReduction.sumOverImages(planes, width: c).map { $0 / total }
        mean.withUnsafeBufferPointer { mean in
            planes.withUnsafeMutableBufferPointer { planes in
                Parallel.forEach(n * c, grain: 2) { plane in
                    planes[plane] = wb_sum_squared_deviations(p + plane * inner, inner, mean[plane % c])
                }
            }
        }
        let variance = BatchReduction.sumOverImages(planes, width: c).map { $0 / total }
        return (mean, variance)
    }

    public static func inferenceSaved(runningMean: Tensor, runningVar: Tensor, eps: Float) -> Saved {
        Saved(mean: runningMean.scalars,
              invStd: runningVar.scalars.map { Float(1.0 / (Double($0) + Double(eps)).squareRoot()) })
    }
}
