import Foundation
import NN

/// How labels become training targets.
public enum TargetFormulation: String, CaseIterable, Sendable {
    /// The seed's: label PNG → RGB colours → 3 sigmoid channels → BCE against the colours.
    case seed
    /// 21 one-hot channels, per-class sigmoid + BCE, void pixels excluded from the loss.
    case onehot
}

/// Where the VOC-layout data is and how it is prepared.
public struct SegmentationDataSettings: Sendable, Equatable {
    /// The folder holding JPEGImages/, SegmentationClass/ and ImageSets/Segmentation/.
    public var root: URL
    /// Images are `keep_same_size`-d to imageSize × imageSize.
    public var imageSize = 256
    /// An ImageSets/Segmentation list name, or "all" for every PNG in SegmentationClass (the seed).
    public var trainSplit = "all"
    /// The validation list name, or "all"; nil for no validation.
    public var valSplit: String? = nil
    /// Random horizontal flip.
    public var flip = false
    /// Random scale in [minScale, maxScale] then a crop back to imageSize (1...1 disables it).
    public var minScale = 1.0
    public var maxScale = 1.0
    /// Batches decoded ahead on a background thread.
    public var prefetchBatches = 2

    public init(root: URL) { self.root = root }
}

/// The U-Net of the segmentation head.
public struct UNetSettings: Sendable, Equatable {
    public var baseChannels = 64
    public var inChannels = 3
    public var dropout = 0.3
    public init() {}
}

/// Everything the segmentation head needs (no YAML, no paths beyond the data root).
public struct SegmentationSettings: Sendable, Equatable {
    public var data: SegmentationDataSettings
    public var model = UNetSettings()
    public var target = TargetFormulation.seed
    public var training = TrainingSettings()
    /// Number of classes of the onehot formulation (VOC: 21).
    public var classCount = 21

    public init(data: SegmentationDataSettings) { self.data = data }

    /// Output channels: 3 colours for the seed formulation, one per class for onehot.
    public var outChannels: Int { target == .seed ? 3 : classCount }

    /// The model these settings describe.
    public func makeModel() -> UNet {
        UNet(base: model.baseChannels, inChannels: model.inChannels, outChannels: outChannels, dropout: Float(model.dropout))
    }
}
