import Foundation
import NN
import Workbench
import XCTest

final class ExperimentConfigTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws { folder = try CommandLine.temporaryFolder() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    var experimentFiles: [URL] {
        let dir = CommandLine.packageRoot.appendingPathComponent("Experiments")
        let all = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil)!.compactMap { $0 as? URL }
        return all.filter { $0.pathExtension == "yaml" }.sorted { $0.path < $1.path }
    }

    func write(_ yaml: String, name: String = "experiment.yaml") throws -> URL {
        let url = folder.appendingPathComponent(name)
        try yaml.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// Asserts loading fails with a message naming the file, the key path and (when given) the line.
    func expectError(_ yaml: String, key: String, line: Int?, contains text: String, overrides: [String] = [],
                     file: StaticString = #filePath, sourceLine: UInt = #line) throws {
        let url = try write(yaml)
        XCTAssertThrowsError(try Experiment.load(url, overrides: overrides), file: file, line: sourceLine) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(url.path), "names the file: \(message)", file: file, line: sourceLine)
            XCTAssertTrue(message.contains(key), "names the key \(key): \(message)", file: file, line: sourceLine)
            if let line { XCTAssertTrue(message.contains("\(url.path):\(line):"), "names line \(line): \(message)", file: file, line: sourceLine) }
            XCTAssertTrue(message.contains(text), "says '\(text)': \(message)", file: file, line: sourceLine)
        }
    }

    var validYAML: String {
        "task: segmentation\ndata:\n  root: \(folder.path)\n  image_size: 64\ntrain:\n  batch_size: 2\n"
    }

    func testEveryExperimentFileIsValid() throws {
        XCTAssertGreaterThanOrEqual(experimentFiles.count, 7)
        for url in experimentFiles {
            XCTAssertNoThrow(try Experiment.load(url, checkData: false), url.lastPathComponent)
        }
    }

    func testEveryKeyIsDocumented() throws {
        let readme = try String(contentsOf: CommandLine.packageRoot.appendingPathComponent("Experiments/README.md"), encoding: .utf8)
        var keys = Set<String>()
        for url in experimentFiles {
            let reader = try ConfigReader(contentsOf: url)
            _ = try Experiment.decode(reader, source: url, checkData: false)
            keys.formUnion(reader.resolved.map(\.path))
        }
        XCTAssertGreaterThan(keys.count, 30)
        for key in keys.sorted() {
            XCTAssertTrue(readme.contains("| `\(key)` |"), "Experiments/README.md does not document \(key)")
        }
    }

    func testUnknownKeyNamesFileKeyAndLineWithSuggestion() throws {
        try expectError(validYAML + "  batchsize: 4\n", key: "train.batchsize", line: 7, contains: "Did you mean 'batch_size'?")
        try expectError(validYAML + "colour: red\n", key: "colour", line: 7, contains: "unknown key")
    }

    func testWrongTypes() throws {
        try expectError(validYAML.replacingOccurrences(of: "batch_size: 2", with: "batch_size: four"),
                        key: "train.batch_size", line: 6, contains: "expected an integer")
        try expectError(validYAML + "  lr: fast\n", key: "train.lr", line: 7, contains: "expected a number")
        try expectError(validYAML + "  optimizer: adagrad\n", key: "train.optimizer", line: 7, contains: "not one of adam, adamw, sgd")
        try expectError(validYAML + "model: 3\n", key: "model", line: 7, contains: "expected a mapping")
    }

    func testImpossibleValues() throws {
        try expectError(validYAML.replacingOccurrences(of: "batch_size: 2", with: "batch_size: 0"),
                        key: "train.batch_size", line: 6, contains: "must be at least 1")
        try expectError(validYAML.replacingOccurrences(of: "image_size: 64", with: "image_size: 72"),
                        key: "data.image_size", line: 4, contains: "multiple of 16")
        try expectError(validYAML.replacingOccurrences(of: folder.path, with: folder.appendingPathComponent("nowhere").path),
                        key: "data.root", line: 3, contains: "no data folder")
        try expectError("task: segmentation\ndata:\n  image_size: 64\n", key: "data.root", line: nil, contains: "is required")
        try expectError(validYAML + "  lr: 0.1\n  lr: 0.2\n", key: "'lr'", line: nil, contains: "duplicated")
    }

    func testOverrides() throws {
        let url = try write(validYAML)
        let experiment = try Experiment.load(url, overrides: ["train.max_steps=7", "model.base_channels=4"])
        XCTAssertEqual(experiment.training.maxSteps, 7)
        XCTAssertTrue(experiment.resolvedYAML.contains("base_channels: 4"))
        try expectError(validYAML, key: "train.lr", line: nil, contains: "(set with --set)", overrides: ["train.lr=abc"])
        try expectError(validYAML, key: "train.bogus", line: nil, contains: "unknown key (set with --set)", overrides: ["train.bogus=1"])
    }

    func testResolvedConfigRoundTrips() throws {
        let experiment = try Experiment.load(try write(validYAML))
        let again = try Experiment.load(try write(experiment.resolvedYAML, name: "resolved.yaml"))
        XCTAssertEqual(experiment.resolvedYAML, again.resolvedYAML)
        XCTAssertEqual(experiment.configHash, again.configHash)
    }

    func testConfigCheckCommand() throws {
        let result = try CommandLine.run(["config", "check"] + experimentFiles.map(\.path))
        XCTAssertEqual(result.status, 0, result.error)
        let bad = try write(validYAML + "  batchsize: 4\n", name: "bad.yaml")
        let failed = try CommandLine.run(["config", "check", bad.path])
        XCTAssertEqual(failed.status, 1)
        XCTAssertTrue(failed.error.contains("\(bad.path):7: train.batchsize: unknown key"), failed.error)
    }

    var onehotYAML: String { validYAML + "segmentation:\n  target: onehot\n  classes: 3\n" }

    func testLossListIsReadIntoTypedTerms() throws {
        let url = try write(onehotYAML + "  loss:\n    - {type: ce, weight: 1.0, class_weights: [0.5, 1, 2], label_smoothing: 0.1}\n"
            + "    - {type: dice, weight: 3.0}\n    - {type: focal, weight: 0.5, gamma: 1.5, alpha: 0.25}\n")
        let experiment = try Experiment.load(url)
        guard case .segmentation(let settings) = experiment.head else { return XCTFail("not segmentation") }
        XCTAssertEqual(settings.loss, CombinedPixelLoss([(.crossEntropy(classWeights: [0.5, 1, 2], labelSmoothing: 0.1), 1),
                                                         (.dice(smooth: 1, eps: 1e-7), 3), (.focal(gamma: 1.5, alpha: 0.25), 0.5)]))
        XCTAssertTrue(experiment.resolvedYAML.contains("loss: [{type: ce, weight: 1.0, class_weights: [0.5, 1.0, 2.0], label_smoothing: 0.1}, "
            + "{type: dice, weight: 3.0, smooth: 1.0}, {type: focal, weight: 0.5, gamma: 1.5, alpha: 0.25}]"), experiment.resolvedYAML)
        // The resolved config reads back to itself.
        let again = try write(experiment.resolvedYAML, name: "again.yaml")
        XCTAssertEqual(try Experiment.load(again).resolvedYAML, experiment.resolvedYAML)
    }

    func testLossErrorsNameFileKeyAndLine() throws {
        try expectError(onehotYAML + "  loss: [{type: lovasz}]\n", key: "segmentation.loss[0].type", line: 10, contains: "not one of ce, bce, dice, focal")
        try expectError(onehotYAML + "  loss: [{type: ce, weight: -1}]\n", key: "segmentation.loss[0].weight", line: 10, contains: "at least 0")
        try expectError(onehotYAML + "  loss: [{type: ce, class_weights: [1, 2]}]\n", key: "segmentation.loss[0].class_weights", line: 10,
                        contains: "has 2 entries but segmentation.classes is 3")
        try expectError(onehotYAML + "  loss: [{type: bce, pos_weight: [1, 2, 3, 4]}]\n", key: "segmentation.loss[0].pos_weight", line: 10,
                        contains: "one per class")
        try expectError(onehotYAML + "  loss: [{type: dice, smoth: 1}]\n", key: "segmentation.loss[0].smoth", line: 10, contains: "Did you mean 'smooth'?")
        try expectError(onehotYAML + "  loss: []\n", key: "segmentation.loss", line: 10, contains: "is empty")
        try expectError(onehotYAML + "  loss: [{type: ce, weight: 0}]\n", key: "segmentation.loss", line: 10, contains: "every weight is 0")
        try expectError(validYAML + "segmentation:\n  target: seed\n  loss: [{type: dice}]\n", key: "segmentation.loss[0].type", line: 9,
                        contains: "the seed's target (RGB colours) trains with its own BCE only")
        try expectError(onehotYAML + "  class_names: [a, b]\n", key: "segmentation.class_names", line: 10, contains: "has 2 names")
    }

    func testScheduleAccumulationAndTTAErrors() throws {
        try expectError(validYAML + "  lr_schedule: linear\n", key: "train.lr_schedule", line: 7, contains: "not one of constant, cosine, poly, step")
        try expectError(validYAML + "  lr_schedule: step\n", key: "train.lr_milestones", line: nil, contains: "needs the steps where the rate drops")
        try expectError(validYAML + "  lr_schedule: step\n  lr_milestones: [50, 10]\n", key: "train.lr_milestones", line: 8, contains: "increasing")
        try expectError(validYAML + "  lr_schedule: cosine\n  epochs: null\n  max_minutes: 5\n", key: "train.lr_schedule", line: 7,
                        contains: "needs train.max_steps or train.epochs")
        try expectError(validYAML + "  lr_schedule: cosine\n  min_lr: 1\n", key: "train.min_lr", line: 8, contains: "must not exceed train.lr")
        try expectError(validYAML + "  accumulate_steps: 0\n", key: "train.accumulate_steps", line: 7, contains: "at least 1")
        try expectError(onehotYAML + "eval:\n  tta:\n    scales: [1.0, -0.5]\n", key: "eval.tta.scales", line: 12, contains: "above 0")
        try expectError(onehotYAML + "eval:\n  tta:\n    scales: []\n", key: "eval.tta.scales", line: 12, contains: "is empty")
        try expectError(validYAML + "eval:\n  tta:\n    flip: true\n", key: "eval.tta.flip", line: 9, contains: "the seed's RGB target")
        let url = try write(validYAML + "  lr_schedule: poly\n  lr_power: 2\n  max_steps: 100\n  accumulate_steps: 4\n")
        let training = try Experiment.load(url).training
        XCTAssertEqual(training.schedule, .poly(power: 2, minimum: 0))
        XCTAssertEqual(training.accumulateSteps, 4)
    }

    func testInheritanceMergesUnderTheFilesOwnKeys() throws {
        _ = try write(validYAML + "  lr: 0.01\nmodel:\n  base_channels: 8\n  dropout: 0.2\n", name: "base.yaml")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("derived"), withIntermediateDirectories: true)
        let derived = try write("name: same\nbase: ../base.yaml\ntrain:\n  lr: 0.05\nmodel:\n  dropout: 0.4\n", name: "derived/child.yaml")
        let merged = try write("name: same\n" + validYAML + "  lr: 0.05\nmodel:\n  base_channels: 8\n  dropout: 0.4\n", name: "merged.yaml")
        XCTAssertEqual(try Experiment.load(derived).resolvedYAML, try Experiment.load(merged).resolvedYAML)
        // Two levels, and the shipped file as a base.
        let grandchild = try write("base: derived/child.yaml\ntrain:\n  batch_size: 3\n", name: "grandchild.yaml")
        XCTAssertTrue(try Experiment.load(grandchild).resolvedYAML.contains("batch_size: 3"))
        let shipped = try write("base: \(CommandLine.packageRoot.path)/Experiments/voc2007.yaml\ntrain:\n  lr: 0.001\n", name: "voc-lr.yaml")
        XCTAssertTrue(try Experiment.load(shipped, checkData: false).resolvedYAML.contains("lr: 0.001"))
    }

    func testInheritanceErrorsNameTheFileInTheChain() throws {
        let a = folder.appendingPathComponent("a.yaml"), b = folder.appendingPathComponent("b.yaml")
        try "base: b.yaml\n".write(to: a, atomically: true, encoding: .utf8)
        try "base: a.yaml\n".write(to: b, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Experiment.load(a)) { XCTAssertTrue("\($0)".contains("inheritance cycle"), "\($0)") }
        let orphan = try write("base: nowhere.yaml\n", name: "orphan.yaml")
        XCTAssertThrowsError(try Experiment.load(orphan)) { error in
            XCTAssertTrue("\(error)".contains("orphan.yaml:1: base: no base experiment at"), "\(error)")
        }
        let badBase = try write(validYAML + "  batchsize: 3\n", name: "bad-base.yaml")
        let child = try write("base: bad-base.yaml\ntrain:\n  lr: 0.5\n", name: "good-child.yaml")
        XCTAssertThrowsError(try Experiment.load(child)) { error in
            XCTAssertTrue("\(error)".contains("\(badBase.path):7: train.batchsize: unknown key"), "\(error)")
        }
    }

    func testDiffusionMeanTypeVAndMinSNR() throws {
        let diffusionYAML = "task: diffusion\ndata:\n  root: \(folder.path)\ndiffusion:\n"
        let url = try write(diffusionYAML + "  mean_type: v\n  loss_weighting: min_snr\n  min_snr_gamma: 3\n")
        guard case .diffusion(let settings) = try Experiment.load(url).head else { return XCTFail("not diffusion") }
        XCTAssertEqual(settings.meanType, .v)
        XCTAssertEqual(settings.minSNRGamma, 3)
        try expectError(diffusionYAML + "  mean_type: xprev\n  loss_weighting: min_snr\n", key: "diffusion.loss_weighting", line: 6,
                        contains: "mean_type xprev has no such weight")
        try expectError(diffusionYAML + "  loss: kl\n  variance_type: learned_range\n  loss_weighting: min_snr\n", key: "diffusion.loss_weighting",
                        line: 7, contains: "loss kl has none")
    }
}
