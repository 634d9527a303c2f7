import Foundation
import ImageIO
import Tensor

/// One batch: images [B, 3, S, S] in [0, 1], targets [B, C, S, S] and, for the one-hot
/// formulation, 0/1 loss weights of the same shape (0 on void pixels).
public struct SegmentationBatch {
    public var images: Tensor
    public var targets: Tensor
    public var weights: Tensor?
    public var indices: [Int]

    public init(images: Tensor, targets: Tensor, weights: Tensor?, indices: [Int]) {
        self.images = images
        self.targets = targets
        self.weights = weights
        self.indices = indices
    }
}

/// Turns data set entries into network inputs and targets, with the seed's `keep_same_size`
/// and optional augmentation keyed by (seed, epoch, sample), so every run sees the same data.
public struct SegmentationSampler: Sendable {
    public let dataset: VOCDataset
    public let settings: SegmentationSettings
    public let seed: UInt64

    public init(dataset: VOCDataset, settings: SegmentationSettings, seed: UInt64) {
        self.dataset = dataset
        self.settings = settings
        self.seed = seed
    }

    var size: Int { settings.data.imageSize }

    /// The network input and the label (RGB colours for `seed`, indices for `onehot`) at S×S.
    public func prepared(_ index: Int, augmentation: RandomGenerator?) throws -> (image: Image, label: Image) {
        let original = try dataset.image(index)
        var image = original.keepSameSize(size, filter: .bicubic)
        var label: Image
        switch settings.target {
        case .seed:
            label = try dataset.labelColours(index)
            guard label.width == original.width && label.height == original.height else {
                throw DatasetError("\(dataset.labelURL(index).path): label is \(label.width)×\(label.height) but its image is \(original.width)×\(original.height)")
            }
            label = label.keepSameSize(size, filter: .bicubic)
        case .onehot:
            label = try dataset.labelIndices(index, expectedWidth: original.width, expectedHeight: original.height)
                .keepSameSize(size, filter: .nearest, fill: VOCClasses.void)
        }
        if let random = augmentation {
            if settings.data.flip && random.nextDouble() < 0.5 {
                image = image.flippedHorizontally()
                label = label.flippedHorizontally()
            }
            let (low, high) = (settings.data.minScale, settings.data.maxScale)
            if high > low || low != 1 {
                let scale = low + (high - low) * random.nextDouble()
                let scaled = max(8, Int((Double(size) * scale).rounded()))
                let labelFilter: ResampleFilter = settings.target == .seed ? .bicubic : .nearest
                let bigImage = image.resized(width: scaled, height: scaled, filter: .bicubic)
                let bigLabel = label.resized(width: scaled, height: scaled, filter: labelFilter)
                // Crop (or pad) back to S×S at a random offset.
                let span = abs(scaled - size)
                let ox = random.nextInt(below: span + 1), oy = random.nextInt(below: span + 1)
                if scaled >= size {
                    image = bigImage.cropped(x: ox, y: oy, width: size, height: size)
                    label = bigLabel.cropped(x: ox, y: oy, width: size, height: size)
                } else {
                    image = Image(width: size, height: size, channels: 3)
                    image.paste(bigImage, x: ox, y: oy)
                    label = Image(width: size, height: size, channels: label.channels,
                                  fill: settings.target == .seed ? 0 : VOCClasses.void)
                    label.paste(bigLabel, x: ox, y: oy)
                }
            }
        }
        return (image, label)
    }

    /// A batch of the given samples; `epoch` keys the augmentation (nil: none, for evaluation).
    public func batch(_ indices: [Int], epoch: Int?) throws -> SegmentationBatch {
        let channels = settings.outChannels, plane = size * size
        var images = Tensor(uninitializedShape: [indices.count, 3, size, size])
        var targets = Tensor(zeros: [indices.count, channels, size, size])
        var weights = settings.target == .onehot ? Tensor(uninitializedShape: [indices.count, channels, size, size]) : nil
        let ip = images.mutablePointer(), tp = targets.mutablePointer(), wp = weights?.mutablePointer()
        for (slot, index) in indices.enumerated() {
            let augmentation = epoch.map { RandomGenerator(seed: seed, purpose: "augment/epoch\($0)/sample\(index)") }
            let (image, label) = try prepared(index, augmentation: augmentation)
            image.writeFloats(into: ip + slot * 3 * plane)
            switch settings.target {
            case .seed:
                label.writeFloats(into: tp + slot * 3 * plane)
            case .onehot:
                let target = tp + slot * channels * plane, weight = wp! + slot * channels * plane
                for pixel in 0..<plane {
                    let value = Int(label.pixels[pixel])
                    let valid: Float = value < channels ? 1 : 0
                    if value < channels { target[value * plane + pixel] = 1 }
                    for c in 0..<channels { weight[c * plane + pixel] = valid }
                }
            }
        }
        return SegmentationBatch(images: images, targets: targets, weights: weights, indices: indices)
    }
}
