import Autograd
import Foundation
import ImageIO
import NN
import Tensor

/// The classifier's shape and data, from the experiment file (`task: classification`).
public struct ClassifierSettings: Sendable, Equatable {
    public var data: ImageDataSettings
    public var classCount = 10
    public var baseChannels = 16
    /// One seed ConvBlock per level, with a DownSample between levels.
    public var channelMultipliers = [1, 2, 4]
    public var dropout = 0.1
    public var training = TrainingSettings()
    /// Test images that evaluation classifies (nil: all).
    public var evalImages: Int?
    public var evalBatchSize = 256

    public init(data: ImageDataSettings) { self.data = data }

    public var levelChannels: [Int] { channelMultipliers.map { $0 * baseChannels } }
    /// Width of the penultimate features (what classifier-FID compares).
    public var featureChannels: Int { levelChannels.last ?? baseChannels }
}

/// A small image classifier from the shared layers: the seed's ConvBlocks and DownSamples, global
/// average pooling, and a linear head. Its pooled features are the embedding of a domain-specific
/// FID ("classifier-FID"), as Inception's are for Inception-FID.
public final class Classifier: Module {
    public let settings: ClassifierSettings
    public let blocks: [ConvBlock]
    public let downsample: [DownSample]
    public let head: Linear

    public init(settings: ClassifierSettings) {
        self.settings = settings
        var blocks: [ConvBlock] = [], downsample: [DownSample] = []
        var previous = settings.data.channels
        for (level, width) in settings.levelChannels.enumerated() {
            if level > 0 { downsample.append(DownSample(previous)) }
            blocks.append(ConvBlock(previous, width, dropout: Float(settings.dropout)))
            previous = width
        }
        self.blocks = blocks
        self.downsample = downsample
        head = Linear(previous, settings.classCount)
    }

    public var children: [(name: String, module: Module)] {
        blocks.enumerated().map { ("blocks.\($0.offset)", $0.element as Module) }
            + downsample.enumerated().map { ("downsample.\($0.offset)", $0.element as Module) } + [("head", head)]
    }

    /// Pooled features [N, C] of images [N, channels, S, S] in [-1, 1].
    public func features(_ x: Variable) -> Variable {
        var h = x
        for (level, block) in blocks.enumerated() {
            if level > 0 { h = downsample[level - 1](h) }
            h = block(h)
        }
        return Functional.mean(h, axes: [2, 3])
    }

    /// Class logits [N, K].
    public func callAsFunction(_ x: Variable) -> Variable { head(features(x)) }
}

/// A batch of images and their classes.
public struct ClassificationBatch {
    public var images: Tensor
    public var labels: [Int]
    public init(images: Tensor, labels: [Int]) {
        self.images = images
        self.labels = labels
    }
}

/// The classifier's step objective: cross-entropy of its logits against the classes.
public final class ClassificationObjective: StepObjective {
    public let settings: ClassifierSettings
    public let seed: UInt64
    public let classifier: Classifier

    public init(settings: ClassifierSettings, seed: UInt64) {
        self.settings = settings
        self.seed = seed
        classifier = Classifier(settings: settings)
        classifier.initialize(generator: RandomGenerator(seed: seed, purpose: "init"))
    }

    public var model: Module { classifier }

    public func imageCount(of batch: ClassificationBatch) -> Int { batch.labels.count }

    public func loss(on batch: ClassificationBatch, key: Int) -> BatchLoss {
        classifier.train()
        classifier.setDropoutGenerator(RandomGenerator(seed: seed, purpose: "dropout/step\(key)"))
        let n = batch.labels.count
        let logits = Functional.reshape(classifier(Variable(batch.images)), [n, settings.classCount, 1, 1])
        let labels = ClassLabels(shape: [n, 1, 1], values: batch.labels.map { UInt8($0) })
        return BatchLoss(loss: PixelLoss.crossEntropy(logits, labels), images: n)
    }
}
