import Foundation
import ImageIO
import Tensor

/// One batch: images [B, 3, S, S] in [0, 1] and the targets of the formulation: RGB colours
/// [B, 3, S, S] in [0, 1] for the seed's, class indices [B, S, S] (255 void) otherwise.
public struct SegmentationBatch {
    public var images: Tensor
    public var colours: Tensor?
    public var labels: ClassLabels?
    /// Data set indices of the images.
    public var indices: [Int]

    public init(images: Tensor, colours: Tensor? = nil, labels: ClassLabels? = nil, indices: [Int]) {
        self.images = images
        self.colours = colours
        self.labels = labels
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
            let indices = try dataset.labelIndices(index, expectedWidth: original.width, expectedHeight: original.height)
            if let bad = indices.pixels.first(where: { Int($0) >= settings.classCount && $0 != VOCClasses.void }) {
                throw DatasetError("\(dataset.labelURL(index).path): pixel value \(bad) is not a class index (segmentation.classes is \(settings.classCount): 0…\(settings.classCount - 1), and 255 marks void); set segmentation.classes to the number of classes of your labels")
            }
            label = indices.keepSameSize(size, filter: .nearest, fill: settings.data.labelPadding.value)
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
                                  fill: settings.target == .seed ? 0 : settings.data.labelPadding.value)
                    label.paste(bigLabel, x: ox, y: oy)
                }
            }
        }
        return (image, label)
    }

    /// A batch of the given samples; `epoch` keys the augmentation (nil: none, for evaluation).
    public func batch(_ indices: [Int], epoch: Int?) throws -> SegmentationBatch {
        let plane = size * size
        var images = Tensor(uninitializedShape: [indices.count, 3, size, size])
        var colours = settings.target == .seed ? Tensor(uninitializedShape: [indices.count, 3, size, size]) : nil
        var labels = [UInt8]()
        labels.reserveCapacity(settings.target == .seed ? 0 : indices.count * plane)
        let ip = images.mutablePointer(), cp = colours?.mutablePointer()
        for (slot, index) in indices.enumerated() {
            let augmentation = epoch.map { RandomGenerator(seed: seed, purpose: "augment/epoch\($0)/sample\(index)") }
            let (image, label) = try prepared(index, augmentation: augmentation)
            image.writeFloats(into: ip + slot * 3 * plane)
            switch settings.target {
            case .seed: label.writeFloats(into: cp! + slot * 3 * plane)
            case .onehot: labels += label.pixels
            }
        }
        return SegmentationBatch(images: images, colours: colours,
                                 labels: settings.target == .seed ? nil : ClassLabels(shape: [indices.count, size, size], values: labels),
                                 indices: indices)
    }
}
