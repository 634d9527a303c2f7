import Foundation
import ImageIO
import XCTest

/// The classifier end to end: training, `eval`, and `eval-samples` on a sample folder with and
/// without the classes it was drawn for.
final class ClassificationCommandTests: XCTestCase {
    static let folder = try! CommandLine.temporaryFolder()
    override class func tearDown() { try? FileManager.default.removeItem(at: folder) }

    func testTrainEvaluateAndScoreSamples() throws {
        let run = Self.folder.appendingPathComponent("classifier")
        let train = try CommandLine.run(["train", "Experiments/mnist-classifier-quick.yaml", "--quiet", "--run-dir", run.path,
                                         "--set", "data.limit=200", "--set", "train.batch_size=50", "--set", "eval.images=200"])
        XCTAssertEqual(train.status, 0, train.error)
        XCTAssertTrue(train.output.contains("accuracy "), train.output)
        let eval = try CommandLine.run(["eval", "--run", run.path, "--json"])
        XCTAssertEqual(eval.status, 0, eval.error)
        let object = try JSONSerialization.jsonObject(with: Data(eval.output.utf8)) as? [String: Any]
        XCTAssertNotNil(object?["accuracy"] as? Double)

        // Eight "samples": test digits written as PNGs, with the classes they show.
        let samples = Self.folder.appendingPathComponent("samples")
        try FileManager.default.createDirectory(at: samples, withIntermediateDirectories: true)
        let source = try MNISTSource(folder: CommandLine.packageRoot.appendingPathComponent("Data/mnist-subset"), split: "test", imageSize: 32,
                                     limit: 8, labels: true)
        for index in 0..<8 {
            try PNG.write(try source.image(index), to: samples.appendingPathComponent(String(format: "sample_%04d.png", index)))
        }
        let unlabelled = try CommandLine.run(["eval-samples", "--classifier", run.path, samples.path, "--json", "--test-images", "100"])
        XCTAssertEqual(unlabelled.status, 0, unlabelled.error)
        let report = try JSONSerialization.jsonObject(with: Data(unlabelled.output.utf8)) as? [String: Any]
        XCTAssertEqual(report?["samples"] as? Int, 8)
        XCTAssertEqual((report?["class_histogram"] as? [Int])?.reduce(0, +), 8)
        XCTAssertNotNil(report?["classifier_fid"] as? Double)
        XCTAssertNil(report?["conditional_accuracy"])

        try (source.labels!.map(String.init).joined(separator: "\n") + "\n").write(to: samples.appendingPathComponent("classes.txt"), atomically: true, encoding: .utf8)
        let labelled = try CommandLine.run(["eval-samples", "--classifier", run.path, samples.path, "--json", "--test-images", "100"])
        XCTAssertEqual(labelled.status, 0, labelled.error)
        let accuracy = (try JSONSerialization.jsonObject(with: Data(labelled.output.utf8)) as? [String: Any])?["conditional_accuracy"] as? Double
        XCTAssertNotNil(accuracy)

        try "1\n2\n".write(to: samples.appendingPathComponent("classes.txt"), atomically: true, encoding: .utf8)
        let short = try CommandLine.run(["eval-samples", "--classifier", run.path, samples.path])
        XCTAssertNotEqual(short.status, 0)
        XCTAssertTrue(short.error.contains("classes.txt: expected one class (0…9) per line for each of the 8 samples"), short.error)
    }
}
