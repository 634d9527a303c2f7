import Autograd
import Foundation
import ImageIO
import NN
import Tensor

/// The segmentation head's training task: VOC data, the U-Net and its loss, and mIoU.
public final class SegmentationTask: TrainingTask {
    public let settings: SegmentationSettings
    public let seed: UInt64
    public let objective: SegmentationObjective
    public let trainSampler: SegmentationSampler
    public let evalSampler: SegmentationSampler?
    public let evalBatchSize: Int
    private var loader: PrefetchingLoader<SegmentationBatch>!
    private let order: BatchOrder

    public var unet: UNet { objective.unet }

    /// Opens the data (train split, and `evalSplit` when given) and builds an initialised model.
    /// With a data-parallel `split`, `batch(_:)` loads only this process's images of each batch.
    public init(settings: SegmentationSettings, seed: UInt64, evalSplit: String?, evalBatchSize: Int = 1,
                split: BatchReduction.Split = .whole) throws {
        self.settings = settings
        self.seed = seed
        self.evalBatchSize = evalBatchSize
        objective = SegmentationObjective(settings: settings, seed: seed)
        let train = try VOCDataset(root: settings.data.root, split: settings.data.trainSplit)
        trainSampler = SegmentationSampler(dataset: train, settings: settings, seed: seed)
        evalSampler = try evalSplit.map {
            SegmentationSampler(dataset: $0 == train.split ? train : try VOCDataset(root: settings.data.root, split: $0),
                                settings: settings, seed: seed)
        }
        let sampler = trainSampler
        // Flips and scales are drawn by the sampler per (epoch, image), so the order draws none.
        order = BatchOrder(seed: seed, count: train.count, batchSize: settings.training.batchSize, split: split)
        loader = PrefetchingLoader(depth: settings.data.prefetchBatches) { [order] index in
            let (epoch, indices, _) = order.batch(index)
            return try sampler.batch(indices, epoch: epoch)
        }
    }

    /// Batches per epoch; the last one may be smaller (PyTorch's DataLoader with drop_last=False).
    public var batchesPerEpoch: Int { order.batchesPerEpoch }

    public func batch(_ index: Int) throws -> SegmentationBatch { try loader.batch(index, limit: Int.max) }

    public func imagesInBatch(_ index: Int) -> Int { order.imagesInBatch(index) }

    public var workSplit: WorkSplit?

    /// The report of the last evaluation, for its confusion-matrix plot.
    public private(set) var lastReport: SegmentationReport?

    public func evaluate(progress: ((Int, Int) -> Void)?) throws -> [(name: String, value: Double)] {
        guard let evalSampler else { return [] }
        let predictor = SegmentationPredictor(model: unet, settings: settings)
        let report = try SegmentationReport.evaluate(predictor, sampler: evalSampler, batchSize: evalBatchSize, split: workSplit,
                                                        progress: progress)
        lastReport = report
        return report.metrics
    }

    /// `confusion-stepNNNNNNN.png`: the last evaluation's row-normalised confusion matrix.
    public func writeEvaluationPlots(step: Int, folder: URL) throws -> [URL] {
        guard let lastReport else { return [] }
        let url = folder.appendingPathComponent(String(format: "confusion-step%07d.png", step))
        try PNG.write(lastReport.confusionPlot(classNames: settings.classNames, title: "confusion matrix, step \(step)"), to: url)
        return [url]
    }

    /// A few validation predictions side by side (image | label | prediction), as one PNG.
    public func writeOutputs(step: Int, folder: URL) throws {
        // In a data-parallel run the panels are rank 0's (a few validation images).
        guard workSplit?.writesFiles ?? true else { return }
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
        try PNG.write(Image.grid(tiles, columns: 3), to: folder.appendingPathComponent(outputNames(step: step)[0]))
    }

    public func outputNames(step: Int) -> [String] { [String(format: "predictions-step%07d.png", step)] }

    public func close() { loader.close() }
}
