import Autograd
import Foundation
import ImageIO
import NN
import Tensor

/// The segmentation head's training task: VOC data, the U-Net, BCE (seed or one-hot), and mIoU.
public final class SegmentationTask: TrainingTask {
    public let settings: SegmentationSettings
    public let seed: UInt64
    public let unet: UNet
    public let optimizer: Optimizer
    public let trainSampler: SegmentationSampler
    public let evalSampler: SegmentationSampler?
    public let evalBatchSize: Int
    private var loader: PrefetchingLoader<SegmentationBatch>!

    public var model: Module { unet }

    /// Opens the data (train split, and `evalSplit` when given) and builds an initialised model.
    public init(settings: SegmentationSettings, seed: UInt64, evalSplit: String?, evalBatchSize: Int = 1) throws {
        self.settings = settings
        self.seed = seed
        self.evalBatchSize = evalBatchSize
        unet = settings.makeModel()
        unet.initialize(generator: RandomGenerator(seed: seed, purpose: "init"))
        optimizer = settings.training.optimizer.makeOptimizer(for: unet.namedParameters())
        let train = try VOCDataset(root: settings.data.root, split: settings.data.trainSplit)
        trainSampler = SegmentationSampler(dataset: train, settings: settings, seed: seed)
        evalSampler = try evalSplit.map {
            SegmentationSampler(dataset: $0 == train.split ? train : try VOCDataset(root: settings.data.root, split: $0),
                                settings: settings, seed: seed)
        }
        let sampler = trainSampler, batchSize = settings.training.batchSize, stepsPerEpoch = self.stepsPerEpoch
        loader = PrefetchingLoader(depth: settings.data.prefetchBatches) { step in
            let epoch = step / stepsPerEpoch, batch = step % stepsPerEpoch
            let order = SegmentationTask.order(seed: seed, epoch: epoch, count: sampler.dataset.count)
            let indices = Array(order[(batch * batchSize)..<min((batch + 1) * batchSize, order.count)])
            return try sampler.batch(indices, epoch: epoch)
        }
    }

    /// The shuffled sample order of an epoch (a pure function of seed and epoch).
    static func order(seed: UInt64, epoch: Int, count: Int) -> [Int] {
        RandomGenerator(seed: seed, purpose: "shuffle/epoch\(epoch)").permutation(count)
    }

    /// Batches per epoch; the last one may be smaller (PyTorch's DataLoader with drop_last=False).
    public var stepsPerEpoch: Int {
        (trainSampler.dataset.count + settings.training.batchSize - 1) / settings.training.batchSize
    }

    public func trainStep(step: Int, epoch: Int, batch: Int) throws -> StepOutcome {
        let data = try loader.batch(step, limit: Int.max)
        unet.train()
        unet.setDropoutGenerator(RandomGenerator(seed: seed, purpose: "dropout/step\(step)"))
        optimizer.zeroGrad()
        Tape.current.reset()
        let logits = unet.logits(Variable(data.images))
        let loss: Variable
        switch settings.target {
        case .seed:
            loss = Functional.binaryCrossEntropy(Functional.sigmoid(logits), target: data.targets)
        case .onehot:
            loss = Functional.binaryCrossEntropyWithLogits(logits, target: data.targets, weight: data.weights)
        }
        let value = Double(loss.value.scalarValue)
        guard value.isFinite else { Tape.current.reset(); return StepOutcome(loss: value, images: data.indices.count) }
        loss.backward()
        if let maxNorm = settings.training.gradClipNorm { clipGradientNorm(unet.parameters, maxNorm: maxNorm) }
        optimizer.step()
        return StepOutcome(loss: value, images: data.indices.count)
    }

    public func evaluate(progress: ((Int, Int) -> Void)?) throws -> [(name: String, value: Double)] {
        guard let evalSampler else { return [] }
        let predictor = SegmentationPredictor(model: unet, settings: settings)
        return try SegmentationReport.evaluate(predictor, sampler: evalSampler, batchSize: evalBatchSize, progress: progress).metrics
    }

    /// A few validation predictions side by side (image | label | prediction), as one PNG.
    public func writeOutputs(step: Int, folder: URL) throws {
        let sampler = evalSampler ?? trainSampler
        let predictor = SegmentationPredictor(model: unet, settings: settings)
        var tiles: [Image] = []
        for index in 0..<min(4, sampler.dataset.count) {
            let image = try sampler.dataset.image(index)
            let truth = try sampler.dataset.labelIndices(index)
            let predicted = predictor.predict(image).classes
            let size = 128
            tiles += [image.keepSameSize(size, filter: .bilinear),
                      Palette.colourize(truth).keepSameSize(size, filter: .nearest),
                      Palette.colourize(predicted).keepSameSize(size, filter: .nearest)]
        }
        try PNG.write(Image.grid(tiles, columns: 3), to: folder.appendingPathComponent(String(format: "predictions-step%07d.png", step)))
    }

    public func close() { loader.close() }
}
