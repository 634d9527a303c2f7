import Autograd
import Foundation
import ImageIO
import NN
import Tensor

/// Runs a trained U-Net on images and turns its output into class maps at the input's size.
public final class SegmentationPredictor {
    public let model: UNet
    public let settings: SegmentationSettings

    public init(model: UNet, settings: SegmentationSettings) {
        self.model = model
        self.settings = settings
    }

    /// Network outputs in [0, 1] (eval mode, no gradients) for a batch [B, 3, S, S]: the seed's RGB
    /// colours, or class probabilities as the loss defines them (softmax for cross-entropy and Dice,
    /// per-class sigmoids otherwise), averaged over the test-time augmentation's variants.
    public func outputs(_ images: Tensor) -> Tensor {
        model.eval()
        guard settings.target == .onehot else { return withNoGrad { model(Variable(images)).value } }
        let softmax = settings.loss.usesSoftmax
        func probabilities(_ x: Tensor) -> Tensor {
            let logits = withNoGrad { model.logits(Variable(x)).value }
            return softmax ? ChannelSoftmax.softmax(logits) : Activation.sigmoid(logits)
        }
        let tta = settings.tta
        guard !tta.isIdentity else { return probabilities(images) }
        let (height, width) = (images.shape[2], images.shape[3])
        var total = Tensor(zeros: [images.shape[0], settings.outChannels, height, width])
        var variants = 0
        for scale in tta.scales {
            let side = SegmentationPredictor.scaledSide(height, scale)
            let scaled = Resampling.resizeBilinear(images, height: side, width: side)
            for flipped in tta.flip ? [false, true] : [false] {
                var p = probabilities(flipped ? Resampling.flipWidth(scaled) : scaled)
                if flipped { p = Resampling.flipWidth(p) }
                Elementwise.accumulate(&total, Resampling.resizeBilinear(p, height: height, width: width))
                variants += 1
            }
        }
        return Elementwise.scale(total, 1 / Float(variants))
    }

    /// The input side for a test-time scale: side·scale rounded to a multiple of 16 (the U-Net's
    /// four halvings), at least 32.
    public static func scaledSide(_ side: Int, _ scale: Double) -> Int {
        max(32, Int((Double(side) * scale / 16).rounded()) * 16)
    }

    /// The S×S class map of output `slot` of a batch: the arg-max channel for one-hot targets; for
    /// the seed's RGB targets, the VOC class whose palette colour is nearest to the predicted colour.
    public func classMap(_ outputs: Tensor, slot: Int) -> Image {
        let (_, channels, height, width) = outputs.nchw
        let plane = width * height
        let base = outputs.pointer + slot * channels * plane
        var map = Image(width: width, height: height, channels: 1)
        for pixel in 0..<plane {
            var best = 0
            if settings.target == .onehot {
                var bestValue = -Float.infinity
                for c in 0..<channels where base[c * plane + pixel] > bestValue {
                    bestValue = base[c * plane + pixel]
                    best = c
                }
            } else {
                var bestDistance = Float.infinity
                let r = base[pixel] * 255, g = base[plane + pixel] * 255, b = base[2 * plane + pixel] * 255
                for k in 0..<settings.classCount {
                    let (pr, pg, pb) = Palette.vocColour(k)
                    let distance = (r - Float(pr)) * (r - Float(pr)) + (g - Float(pg)) * (g - Float(pg)) + (b - Float(pb)) * (b - Float(pb))
                    if distance < bestDistance { bestDistance = distance; best = k }
                }
            }
            map.pixels[pixel] = UInt8(best)
        }
        return map
    }

    /// Undoes `keep_same_size` for a class map: back to the max(w, h) square (nearest), then the
    /// top-left w×h, which is where the image was pasted.
    public static func undoKeepSameSize(_ map: Image, width: Int, height: Int) -> Image {
        let side = max(width, height)
        return map.resized(width: side, height: side, filter: .nearest).cropped(x: 0, y: 0, width: width, height: height)
    }

    /// The class map of an RGB image at its own size, and the raw output [C, S, S].
    public func predict(_ image: Image) -> (classes: Image, output: Tensor) {
        let size = settings.data.imageSize
        let input = image.rgb().keepSameSize(size, filter: .bicubic).tensor().reshaped([1, 3, size, size])
        let output = outputs(input)
        let classes = SegmentationPredictor.undoKeepSameSize(classMap(output, slot: 0), width: image.width, height: image.height)
        return (classes, output.reshaped(Array(output.shape.dropFirst())))
    }
}

/// Pixel accuracy, per-class IoU and mean IoU of a model on a data set, computed at each label's
/// original resolution with void ignored.
public struct SegmentationReport: Sendable {
    public var confusion: ConfusionMatrix
    public var images: Int

    public var metrics: [(name: String, value: Double)] {
        [("mIoU", confusion.meanIoU), ("pixel_accuracy", confusion.pixelAccuracy), ("mAcc", confusion.meanAccuracy),
         ("mDice", confusion.meanDice)]
    }

    /// The row-normalised confusion matrix as a labelled heat map.
    public func confusionPlot(classNames: [String], title: String) -> Image {
        MatrixPlot(title: title, labels: classNames, values: confusion.rowNormalized).render()
    }

    /// Evaluates `predictor` on every image of `sampler`'s data set, `batchSize` at a time.
    /// With `split`, each process evaluates its part of the batches and the confusion counts
    /// (exact integers) are added.
    public static func evaluate(_ predictor: SegmentationPredictor, sampler: SegmentationSampler, batchSize: Int,
                                split: WorkSplit? = nil, progress: ((Int, Int) -> Void)? = nil) throws -> SegmentationReport {
        var confusion = ConfusionMatrix(classCount: predictor.settings.classCount)
        let dataset = sampler.dataset
        let starts = Array(stride(from: 0, to: dataset.count, by: batchSize))
        let mine = split?.mine(starts.count) ?? starts.indices
        // Progress counts this process's images (all of them without a split).
        let myImages = starts[mine].reduce(0) { $0 + min(batchSize, dataset.count - $1) }
        var done = 0
        for start in starts[mine] {
            let indices = Array(start..<min(start + batchSize, dataset.count))
            let batch = try sampler.batch(indices, epoch: nil)
            let outputs = predictor.outputs(batch.images)
            for (slot, index) in indices.enumerated() {
                let truth = try dataset.labelIndices(index)
                let predicted = SegmentationPredictor.undoKeepSameSize(predictor.classMap(outputs, slot: slot),
                                                                       width: truth.width, height: truth.height)
                confusion.add(predicted: predicted.pixels, truth: truth.pixels)
            }
            done += indices.count
            progress?(done, myImages)
        }
        if let split {
            // Counts stay below 2^53, so Double carries them exactly.
            let all = split.gather(confusion.counts.map(Double.init))
            confusion = ConfusionMatrix(classCount: confusion.classCount,
                                        counts: (0..<confusion.counts.count).map { i in
                                            stride(from: i, to: all.count, by: confusion.counts.count).reduce(Int64(0)) { $0 + Int64(all[$1]) }
                                        })
        }
        return SegmentationReport(confusion: confusion, images: dataset.count)
    }
}
