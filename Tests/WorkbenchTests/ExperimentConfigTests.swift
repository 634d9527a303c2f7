import Foundation
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
}
