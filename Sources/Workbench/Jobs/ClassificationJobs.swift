import Classification
import Foundation
import ImageIO
import NN
import Tensor

/// `workbench eval` of a classifier, and `workbench eval-samples`: a sample folder scored with a
/// trained classifier.
public enum ClassificationJobs {
    static func settings(_ experiment: Experiment) throws -> ClassifierSettings {
        guard case .classification(let settings) = experiment.head else {
            throw TrainingError("\(experiment.source.path) is not a classifier experiment (task: classification); give the classifier's run with --classifier")
        }
        return settings
    }

    public static func loadClassifier(_ settings: ClassifierSettings, checkpoint: URL) throws -> Classifier {
        let classifier = Classifier(settings: settings)
        try Checkpoints.loadModelWeights(into: classifier, from: checkpoint)
        return classifier
    }

    /// Accuracy and cross-entropy on the test split.
    public static func evaluate(_ experiment: Experiment, checkpoint: URL) throws -> [(name: String, value: Double)] {
        Runtime.configureThreads(experiment.threads)
        let settings = try settings(experiment)
        let classifier = try loadClassifier(settings, checkpoint: checkpoint)
        return try ClassificationTask.evaluate(classifier, source: settings.data.source(split: "test"), settings: settings, progress: nil)
    }

    /// What `eval-samples` reports.
    public struct SampleReport {
        public var samples: Int
        public var testImages: Int
        /// Fréchet distance of the classifier's pooled features, samples against test images.
        public var classifierFID: Double
        /// Samples per predicted class.
        public var histogram: [Int]
        /// Entropy (nats) of the predicted-class distribution; log K when every class is equally common.
        public var classEntropy: Double
        /// Mean confidence (top probability) of the predictions.
        public var meanConfidence: Double
        /// For conditional samples (a classes.txt beside them): the fraction classified as the class asked for, overall and per class.
        public var conditionalAccuracy: Double?
        public var perClassAccuracy: [Double?]
        public var classNames: [String]

        public var json: [String: Any] {
            var object: [String: Any] = ["samples": samples, "test_images": testImages, "classifier_fid": classifierFID,
                                         "class_histogram": histogram, "class_entropy_nats": classEntropy, "mean_confidence": meanConfidence,
                                         "note": "classifier-FID uses this project's classifier's pooled features, not Inception's: compare it only between sample sets scored by the same classifier"]
            if let conditionalAccuracy {
                object["conditional_accuracy"] = conditionalAccuracy
                object["per_class_accuracy"] = perClassAccuracy.map { $0 ?? -1 }
            }
            return object
        }

        public var table: String {
            var lines = [String(format: "classifier-FID    %.3f  (%d samples against %d test images; this classifier's features, not Inception's)",
                                classifierFID, samples, testImages),
                         String(format: "class entropy     %.3f nats (uniform: %.3f)", classEntropy, log(Double(histogram.count))),
                         String(format: "mean confidence   %.3f", meanConfidence),
                         "histogram         " + zip(classNames, histogram).map { "\($0) \($1)" }.joined(separator: "  ")]
            if let conditionalAccuracy {
                lines.append(String(format: "as asked          %.4f of samples classified as the class they were sampled for", conditionalAccuracy))
                lines.append("per class         " + zip(classNames, perClassAccuracy).compactMap { name, value in
                    value.map { String(format: "%@ %.3f", name, $0) } }.joined(separator: "  "))
            }
            return lines.joined(separator: "\n")
        }
    }

    /// Scores the PNG samples in `folder` (grid.png and panels left out) with the classifier of
    /// `experiment`/`checkpoint`: classifier-FID against the first `testImages` test images, the
    /// class histogram and its entropy, and with `classes.txt` (written by `sample --class/--classes`)
    /// the fraction classified as the class each sample was drawn for.
    public static func evalSamples(_ experiment: Experiment, checkpoint: URL, folder: URL, testImages: Int = 2000) throws -> SampleReport {
        Runtime.configureThreads(experiment.threads)
        let settings = try settings(experiment)
        let classifier = try loadClassifier(settings, checkpoint: checkpoint)
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
            .filter { $0.lowercased().hasSuffix(".png") && $0 != "grid.png" && !$0.contains("_panel") }.sorted()
        guard names.count >= 2 else {
            throw TrainingError("\(folder.path): \(names.count) sample PNGs; eval-samples needs at least 2 (write them with workbench sample --out \(folder.path))")
        }
        let size = settings.data.imageSize, channels = settings.data.channels
        var asked: [Int]?
        let classesURL = folder.appendingPathComponent("classes.txt")
        if let text = try? String(contentsOf: classesURL, encoding: .utf8) {
            let values = text.split(whereSeparator: \.isNewline).map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard values.count == names.count, values.allSatisfy({ $0 != nil && $0! >= 0 && $0! < settings.classCount }) else {
                throw TrainingError("\(classesURL.path): expected one class (0…\(settings.classCount - 1)) per line for each of the \(names.count) samples")
            }
            asked = values.map { $0! }
        }
        // Samples as the classifier sees images: its size and channels, values in [-1, 1].
        var sampleFeatures: [[Double]] = [], predictions: [Int] = [], confidence = 0.0
        for start in stride(from: 0, to: names.count, by: 256) {
            let chunk = Array(names[start..<min(start + 256, names.count)])
            var batch = Tensor(uninitializedShape: [chunk.count, channels, size, size])
            for (slot, name) in chunk.enumerated() {
                var image = try ImageFile.read(folder.appendingPathComponent(name))
                image = channels == 1 ? image.gray() : image.rgb()
                if image.width != size || image.height != size { image = image.resized(width: size, height: size, filter: .bicubic) }
                let plane = size * size
                let p = batch.mutablePointer() + slot * channels * plane
                for i in 0..<plane { for c in 0..<channels { p[c * plane + i] = Float(image.pixels[i * channels + c]) / 127.5 - 1 } }
            }
            sampleFeatures += ClassificationTask.features(classifier, images: batch)
            for row in ClassificationTask.probabilities(classifier, images: batch) {
                let top = row.indices.max { row[$0] < row[$1] }!
                predictions.append(top)
                confidence += row[top]
            }
        }
        let test = try settings.data.source(split: "test")
        let count = min(testImages, test.count)
        var testFeatures: [[Double]] = []
        for start in stride(from: 0, to: count, by: 256) {
            testFeatures += ClassificationTask.features(classifier, images: try test.batch(Array(start..<min(start + 256, count))))
        }
        var histogram = [Int](repeating: 0, count: settings.classCount)
        for p in predictions { histogram[p] += 1 }
        let entropy = histogram.reduce(0.0) { total, n in
            guard n > 0 else { return total }
            let q = Double(n) / Double(predictions.count)
            return total - q * log(q)
        }
        var conditional: Double?, perClass = [Double?](repeating: nil, count: settings.classCount)
        if let asked {
            conditional = Double(zip(asked, predictions).filter { $0 == $1 }.count) / Double(asked.count)
            for c in 0..<settings.classCount {
                let mine = zip(asked, predictions).filter { $0.0 == c }
                if !mine.isEmpty { perClass[c] = Double(mine.filter { $0.0 == $0.1 }.count) / Double(mine.count) }
            }
        }
        return SampleReport(samples: names.count, testImages: count, classifierFID: FrechetDistance.distance(sampleFeatures, testFeatures),
                            histogram: histogram, classEntropy: entropy, meanConfidence: confidence / Double(predictions.count),
                            conditionalAccuracy: conditional, perClassAccuracy: perClass,
                            classNames: test.classNames ?? (0..<settings.classCount).map(String.init))
    }
}
