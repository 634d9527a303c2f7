import Autograd
import NN
import Tensor

/// The segmentation head's step objective: the U-Net in training mode and its loss on a batch.
public final class SegmentationObjective: StepObjective {
    public let settings: SegmentationSettings
    public let seed: UInt64
    public let unet: UNet

    /// An initialised model (weights drawn from the seed's "init" stream).
    public init(settings: SegmentationSettings, seed: UInt64) {
        self.settings = settings
        self.seed = seed
        unet = settings.makeModel()
        unet.initialize(generator: RandomGenerator(seed: seed, purpose: "init"))
    }

    public var model: Module { unet }

    public func imageCount(of batch: SegmentationBatch) -> Int { batch.indices.count }

    public func loss(on batch: SegmentationBatch, key: Int) -> BatchLoss {
        unet.train()
        unet.setDropoutGenerator(RandomGenerator(seed: seed, purpose: "dropout/step\(key)"))
        let logits = unet.logits(Variable(batch.images))
        let loss: Variable
        switch settings.target {
        case .seed:
            loss = Functional.binaryCrossEntropy(Functional.sigmoid(logits), target: batch.colours!)
        case .onehot:
            loss = settings.loss(logits, batch.labels!)
        }
        return BatchLoss(loss: loss, images: batch.indices.count)
    }
}
