import Autograd
import Foundation
import ImageIO
import NN
import Tensor

/// The classifier's training task: shuffled labelled images (flips when the data asks), accuracy
/// and cross-entropy on the test split.
public final class ClassificationTask: TrainingTask {
    public let settings: ClassifierSettings
    public let seed: UInt64
    public let objective: ClassificationObjective
    public let trainSource: ImageSource
    public let testSource: ImageSource?
    public var workSplit: WorkSplit?
    private var loader: PrefetchingLoader<ClassificationBatch>!
    private let order: BatchOrder

    public var classifier: Classifier { objective.classifier }

    public init(settings: ClassifierSettings, seed: UInt64, withTestData: Bool = true, split: BatchReduction.Split = .whole) throws {
        self.settings = settings
        self.seed = seed
        objective = ClassificationObjective(settings: settings, seed: seed)
        trainSource = try settings.data.source(split: "train")
        testSource = withTestData ? try settings.data.source(split: "test") : nil
        for source in [trainSource] + (testSource.map { [$0] } ?? []) {
            try source.checkLabels(classCount: settings.classCount, root: settings.data.root, model: "a classifier")
        }
        let source = trainSource
        order = BatchOrder(seed: seed, count: source.count, batchSize: settings.training.batchSize, split: split, flip: settings.data.flip)
        loader = PrefetchingLoader(depth: settings.data.prefetchBatches) { [order] index in
            let (_, indices, flips) = order.batch(index)
            return ClassificationBatch(images: try source.batch(indices, flip: flips), labels: indices.map { source.labels![$0] })
        }
    }

    public var batchesPerEpoch: Int { order.batchesPerEpoch }

    public func batch(_ index: Int) throws -> ClassificationBatch { try loader.batch(index, limit: Int.max) }

    public func imagesInBatch(_ index: Int) -> Int { order.imagesInBatch(index) }

    public func evaluate(progress: ((Int, Int) -> Void)?) throws -> [(name: String, value: Double)] {
        guard let testSource else { return [] }
        return try ClassificationTask.evaluate(classifier, source: testSource, settings: settings, split: workSplit, progress: progress)
    }

    /// Accuracy and mean cross-entropy over the test images (split over processes when asked).
    public static func evaluate(_ classifier: Classifier, source: ImageSource, settings: ClassifierSettings, split: WorkSplit? = nil,
                                progress: ((Int, Int) -> Void)?) throws -> [(name: String, value: Double)] {
        let images = min(settings.evalImages ?? source.count, source.count)
        let starts = Array(stride(from: 0, to: images, by: settings.evalBatchSize))
        var partials: [Double] = []
        // Progress counts this process's images (all of them without a split).
        let mine = starts[split?.mine(starts.count) ?? starts.indices]
        let myImages = mine.reduce(0) { $0 + min(settings.evalBatchSize, images - $1) }
        var done = 0
        for start in mine {
            let indices = Array(start..<min(start + settings.evalBatchSize, images))
            let probabilities = try ClassificationTask.probabilities(classifier, images: source.batch(indices))
            var correct = 0.0, loss = 0.0
            for (slot, index) in indices.enumerated() {
                let row = probabilities[slot], label = source.labels![index]
                if row.indices.max(by: { row[$0] < row[$1] }) == label { correct += 1 }
                loss -= log(max(row[label], 1e-30))
            }
            partials += [correct, loss]
            done += indices.count
            progress?(done, myImages)
        }
        let all = split?.gather(partials) ?? partials
        var correct = 0.0, loss = 0.0
        for batch in starts.indices {
            correct += all[2 * batch]
            loss += all[2 * batch + 1]
        }
        return [("accuracy", correct / Double(images)), ("cross_entropy", loss / Double(images))]
    }

    /// Class probabilities (softmax, in Double) of images [N, C, S, S] in [-1, 1], in eval mode.
    public static func probabilities(_ classifier: Classifier, images: Tensor) -> [[Double]] {
        classifier.eval()
        let logits = withNoGrad { classifier(Variable(images)).value }
        let k = logits.shape[1]
        return (0..<logits.shape[0]).map { row in
            let values = (0..<k).map { Double(logits.scalars[row * k + $0]) }
            let top = values.max() ?? 0
            let exps = values.map { exp($0 - top) }
            let total = exps.reduce(0, +)
            return exps.map { $0 / total }
        }
    }

    /// Pooled features [N, C] in Double, in eval mode.
    public static func features(_ classifier: Classifier, images: Tensor) -> [[Double]] {
        classifier.eval()
        let features = withNoGrad { classifier.features(Variable(images)).value }
        let c = features.shape[1]
        return (0..<features.shape[0]).map { row in (0..<c).map { Double(features.scalars[row * c + $0]) } }
    }

    public func close() { loader.close() }
}
