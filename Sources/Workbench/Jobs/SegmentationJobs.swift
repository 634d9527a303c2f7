import Foundation
import ImageIO
import NN
import Segmentation
import Tensor

/// `workbench eval` and `workbench predict` for the segmentation head.
public enum SegmentationJobs {
    static func settings(_ experiment: Experiment) throws -> SegmentationSettings {
        guard case .segmentation(let settings) = experiment.head else {
            throw TrainingError("\(experiment.source.path) is not a segmentation experiment")
        }
        return settings
    }

    static func loadModel(_ experiment: Experiment, checkpoint: URL) throws -> (UNet, SegmentationSettings) {
        let settings = try settings(experiment)
        let model = settings.makeModel()
        try Checkpoints.loadModelWeights(into: model, from: checkpoint)
        return (model, settings)
    }

    /// Pixel accuracy, per-class IoU and mIoU on the experiment's eval split, at original label resolution.
    public static func evaluate(_ experiment: Experiment, checkpoint: URL, split: String?, verbose: Bool) throws -> SegmentationReport {
        Runtime.configureThreads(experiment.threads)
        try Trainer.prepareData(experiment, verbose: verbose)
        let (model, settings) = try loadModel(experiment, checkpoint: checkpoint)
        let dataset = try VOCDataset(root: settings.data.root, split: split ?? experiment.evalSplit)
        let sampler = SegmentationSampler(dataset: dataset, settings: settings, seed: experiment.seed)
        var bar: ProgressBar?
        let began = Date()
        return try SegmentationReport.evaluate(SegmentationPredictor(model: model, settings: settings), sampler: sampler,
                                               batchSize: experiment.evalBatchSize) { done, total in
            guard verbose else { return }
            if bar == nil { bar = ProgressBar(label: "eval \(dataset.split)", total: total, unit: "img", started: began) }
            bar?.update(done)
        }
    }

    /// The report as JSON and as a table; with `output`, the JSON is written there and the
    /// confusion matrix as a PNG beside it (`<output without extension>.confusion.png`).
    public static func write(_ report: SegmentationReport, experiment: Experiment, checkpoint: URL, split: String,
                             output: URL?) throws -> (json: Data, table: String) {
        let classNames = try settings(experiment).classNames
        let data = try JSONSerialization.data(withJSONObject: json(report, classNames: classNames, checkpoint: checkpoint, split: split),
                                              options: [.prettyPrinted, .sortedKeys])
        if let output {
            try AtomicFile.write(data, to: output)
            try PNG.write(report.confusionPlot(classNames: classNames, title: "confusion matrix, \(split)"),
                          to: output.deletingPathExtension().appendingPathExtension("confusion.png"))
        }
        return (data, table(report, classNames: classNames))
    }

    /// The report as a table for people: IoU, accuracy and Dice per class, then the means.
    public static func table(_ report: SegmentationReport, classNames: [String]) -> String {
        let confusion = report.confusion
        let width = max(16, (classNames.map(\.count).max() ?? 0) + 2)
        func cell(_ value: Double?) -> String { value.map { String(format: "%9.4f", $0) } ?? "        -" }
        var lines = ["class".padding(toLength: width, withPad: " ", startingAt: 0) + "      IoU      Acc     Dice"]
        let (iou, accuracy, dice) = (confusion.intersectionOverUnion, confusion.classAccuracy, confusion.dice)
        for index in 0..<confusion.classCount {
            let name = index < classNames.count ? classNames[index] : "class \(index)"
            lines.append(name.padding(toLength: width, withPad: " ", startingAt: 0) + cell(iou[index]) + cell(accuracy[index]) + cell(dice[index]))
        }
        lines.append(String(repeating: "-", count: width + 27))
        lines.append("mean".padding(toLength: width, withPad: " ", startingAt: 0)
            + cell(confusion.meanIoU) + cell(confusion.meanAccuracy) + cell(confusion.meanDice))
        lines.append("pixel accuracy".padding(toLength: width, withPad: " ", startingAt: 0) + cell(confusion.pixelAccuracy))
        lines.append("foreground IoU".padding(toLength: width, withPad: " ", startingAt: 0) + cell(confusion.foregroundIoU))
        lines.append("images".padding(toLength: width, withPad: " ", startingAt: 0) + String(format: "%9d", report.images))
        lines.append("(mIoU, mAcc and mDice average the classes that occur; - marks a class neither present nor predicted)")
        return lines.joined(separator: "\n")
    }

    /// The report as JSON (per-class values null where a class does not count).
    public static func json(_ report: SegmentationReport, classNames: [String], checkpoint: URL, split: String) -> [String: Any] {
        let confusion = report.confusion
        func perClass(_ values: [Double?]) -> [String: Any] {
            var object: [String: Any] = [:]
            for (index, value) in values.enumerated() {
                object[index < classNames.count ? classNames[index] : "class_\(index)"] = value.map { $0 as Any } ?? NSNull()
            }
            return object
        }
        return ["mIoU": confusion.meanIoU, "pixel_accuracy": confusion.pixelAccuracy, "mAcc": confusion.meanAccuracy,
                "mDice": confusion.meanDice, "foreground_iou": confusion.foregroundIoU, "per_class_iou": perClass(confusion.intersectionOverUnion),
                "per_class_accuracy": perClass(confusion.classAccuracy), "per_class_dice": perClass(confusion.dice),
                "class_names": classNames, "images": report.images, "checkpoint": checkpoint.path, "split": split,
                "confusion_matrix": (0..<confusion.classCount).map { row in (0..<confusion.classCount).map { confusion[row, $0] } }]
    }

    /// Writes `<name>_mask.png` (VOC palette, input size) and `<name>_overlay.png` per image; when
    /// the image sits in a VOC folder with a label, also the seed's original_i/label_i/result_i.
    public static func predict(_ experiment: Experiment, checkpoint: URL, images: [URL], output: URL, verbose: Bool) throws -> [URL] {
        Runtime.configureThreads(experiment.threads)
        let (model, settings) = try loadModel(experiment, checkpoint: checkpoint)
        let predictor = SegmentationPredictor(model: model, settings: settings)
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        var written: [URL] = []
        let bar = verbose ? ProgressBar(label: "predict", total: images.count, unit: "img") : nil
        for (index, url) in images.enumerated() {
            let image = try ImageFile.read(url).rgb()
            let (classes, raw) = predictor.predict(image)
            let stem = url.deletingPathExtension().lastPathComponent
            let mask = output.appendingPathComponent("\(stem)_mask.png"), overlay = output.appendingPathComponent("\(stem)_overlay.png")
            try PNG.write(classes, to: mask, palette: Palette.voc)
            try PNG.write(Palette.overlay(image, indices: classes), to: overlay)
            written += [mask, overlay]
            // The seed's test() outputs, at the network's resolution.
            let label = url.deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("SegmentationClass/\(stem).png")
            if FileManager.default.fileExists(atPath: label.path) {
                let size = settings.data.imageSize
                let files = [("original_\(index).png", image.keepSameSize(size, filter: .bicubic)),
                             ("label_\(index).png", try PNG.read(label).rgb().keepSameSize(size, filter: .bicubic)),
                             ("result_\(index).png", settings.target == .seed ? Image(chw: raw) : Palette.colourize(predictor.classMap(raw.reshaped([1] + raw.shape), slot: 0)))]
                for (name, picture) in files {
                    try PNG.write(picture, to: output.appendingPathComponent(name))
                    written.append(output.appendingPathComponent(name))
                }
            }
            bar?.update(index + 1)
        }
        return written
    }
}
