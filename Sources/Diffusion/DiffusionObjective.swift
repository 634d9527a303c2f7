import Autograd
import NN
import Tensor

/// The diffusion head's step objective (Algorithm 1): noise a batch at random timesteps and score
/// the network's prediction with the experiment's loss; after each update, the EMA of the weights.
public final class DiffusionObjective: StepObjective {
    public let settings: DiffusionSettings
    public let seed: UInt64
    public let diffusion: GaussianDiffusion
    public let network: NoisePredictor
    public let ema: ExponentialMovingAverage

    /// An initialised network (the seed's "init" stream) and its EMA, starting as a copy.
    public init(settings: DiffusionSettings, seed: UInt64) {
        self.settings = settings
        self.seed = seed
        diffusion = settings.makeDiffusion()
        network = settings.makeModel()
        network.initialize(generator: RandomGenerator(seed: seed, purpose: "init"))
        ema = ExponentialMovingAverage(model: network, shadow: settings.makeModel(), maxDecay: settings.emaDecay, warmup: settings.emaWarmup)
    }

    public var model: Module { network }
    public var emaNetwork: NoisePredictor { ema.shadow as! NoisePredictor }

    public func imageCount(of batch: DiffusionBatch) -> Int { batch.images.shape[0] }

    /// Images in [-1, 1], [B, C, S, S] (with their classes for a class-conditional model); timesteps,
    /// noise and the classes dropped to ∅ are drawn from streams keyed by `key`.
    public func loss(on batch: DiffusionBatch, key: Int) -> BatchLoss {
        let images = batch.images
        let count = images.shape[0]
        // Draws for the whole batch, of which a data-parallel process keeps its own images'.
        let timeDraws = RandomGenerator(seed: seed, purpose: "diffusion/t/step\(key)")
        let allTimesteps = (0..<BatchReduction.globalBatch(local: count)).map { _ in timeDraws.nextInt(below: diffusion.timesteps) }
        let first = BatchReduction.shard?.images.lowerBound ?? 0
        let t = Array(allTimesteps[first..<(first + count)])
        var classes: [Int]?
        if let nullClass = network.nullClass {
            precondition(batch.labels?.count == count, "a class-conditional model needs one class per image")
            let dropDraws = RandomGenerator(seed: seed, purpose: "diffusion/cond-drop/step\(key)")
            let dropped = (0..<BatchReduction.globalBatch(local: count)).map { _ in dropDraws.nextDouble() < settings.condDropProb }
            classes = zip(batch.labels!, dropped[first..<(first + count)]).map { $1 ? nullClass : $0 }
        }
        let noise = DoubleBatch(RandomGenerator(seed: seed, purpose: "diffusion/noise/step\(key)").batchNormal(images.shape))
        let x0 = DoubleBatch(images)
        let xt = diffusion.qSample(x0, t: t, noise: noise)
        network.train()
        network.setDropoutGenerator(RandomGenerator(seed: seed, purpose: "dropout/step\(key)"))
        let output = network(Variable(xt.tensor), timesteps: t, classes: classes, condition: batch.condition)
        let (loss, value) = diffusion.trainingLoss(output, x0: x0, t: t, noise: noise, hybridWeight: settings.hybridWeight)
        return BatchLoss(loss: loss, value: value, images: count)
    }

    public func afterUpdate() { ema.update() }
}

/// A training batch of the diffusion head: images in [-1, 1] and, for class-conditional models,
/// the class of each.
public struct DiffusionBatch {
    public var images: Tensor
    public var labels: [Int]?
    /// Restoration: the degraded images y the network is conditioned on.
    public var condition: Tensor?

    public init(images: Tensor, labels: [Int]? = nil, condition: Tensor? = nil) {
        self.images = images
        self.labels = labels
        self.condition = condition
    }
}
