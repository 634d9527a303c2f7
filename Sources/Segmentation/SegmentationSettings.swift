import Foundation
import NN

/// How labels become training targets.
public enum TargetFormulation: String, CaseIterable, Sendable {
    /// The seed's: label PNG → RGB colours → 3 sigmoid channels → BCE against the colours.
    case seed
    /// One output channel per class against class-index labels, void excluded; trained with
    /// `SegmentationSettings.loss` (per-class sigmoid BCE by default, the first workbench's).
    case onehot
}

/// What the label map holds where `keep_same_size` (or scale augmentation) pads the image with black.
public enum LabelPadding: String, CaseIterable, Sendable {
    /// Class 0, as the seed's black square: the model learns that padding is background.
    case background
    /// Void (255): the padding is left out of the loss.
    case void

    public var value: UInt8 { self == .background ? 0 : VOCClasses.void }
}

/// Test-time augmentation for evaluation and prediction: class probabilities averaged over
/// horizontal flips and input scales (mmsegmentation's SegTTAModel).
public struct TestTimeAugmentation: Sendable, Equatable {
    public var flip = false
    /// Input scales relative to `data.image_size`; each is rounded to a multiple of 16.
    public var scales: [Double] = [1]
    public init() {}
    public var isIdentity: Bool { !flip && scales == [1] }
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
    /// What the label map holds where the image is padded.
    public var labelPadding = LabelPadding.background
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
    /// Display names of the classes, for tables and plots (VOC's by default).
    public var classNames = VOCClasses.names
    /// The loss of the onehot formulation (the seed formulation always uses its RGB BCE).
    public var loss = CombinedPixelLoss([(.binaryCrossEntropy(posWeight: nil), 1)])
    /// Test-time augmentation of evaluation and prediction.
    public var tta = TestTimeAugmentation()

    public init(data: SegmentationDataSettings) { self.data = data }

    /// Output channels: 3 colours for the seed formulation, one per class for onehot.
    public var outChannels: Int { target == .seed ? 3 : classCount }

    /// The model these settings describe.
    public func makeModel() -> UNet {
        UNet(base: model.baseChannels, inChannels: model.inChannels, outChannels: outChannels, dropout: Float(model.dropout))
    }
}
