import Foundation
import Tensor
import TestSupport
import XCTest

/// `workbench forward` on the fixture weights reproduces PyTorch's outputs (to 1e-4 of their max).
final class ForwardCommandTests: XCTestCase {
    func testForwardReproducesPyTorch() throws {
        let folder = try CommandLine.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let case_ = try SafeTensorsFile.read(CommandLine.nnFixture("case.safetensors"))
        var input = SafeTensorsFile()
        input.set("x", try case_.tensor("x"))
        let inputURL = folder.appendingPathComponent("x.safetensors")
        try input.write(to: inputURL)
        for (trainMode, key) in [(false, "output_eval"), (true, "output")] {
            let outputURL = folder.appendingPathComponent("y-\(key).safetensors")
            var arguments = ["forward", "--config", "Experiments/voc2007-seed.yaml", "--set", "model.base_channels=4",
                             "--checkpoint", CommandLine.nnFixture("weights.safetensors").path,
                             "--input", inputURL.path, "--output", outputURL.path]
            if trainMode { arguments.append("--train-mode") }
            let result = try CommandLine.run(arguments)
            XCTAssertEqual(result.status, 0, result.error)
            let y = try SafeTensorsFile.read(outputURL).tensor("y")
            XCTAssertNil(normalizedMismatch(y, try case_.tensor(key), tolerance: 1e-4), key)
        }
    }

    func testForwardRejectsWrongShapesAndCheckpoints() throws {
        let folder = try CommandLine.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var input = SafeTensorsFile()
        input.set("x", Tensor(zeros: [1, 3, 40, 40]))
        let inputURL = folder.appendingPathComponent("x.safetensors")
        try input.write(to: inputURL)
        let weights = CommandLine.nnFixture("weights.safetensors").path
        let badSize = try CommandLine.run(["forward", "--config", "Experiments/voc2007-seed.yaml", "--set", "model.base_channels=4",
                                           "--checkpoint", weights, "--input", inputURL.path, "--output", folder.appendingPathComponent("y").path])
        XCTAssertNotEqual(badSize.status, 0)
        XCTAssertTrue(badSize.error.contains("multiple of 16"), badSize.error)

        // Weights of a base-4 model into a base-8 model: every mismatch is listed by name.
        let wrongModel = try CommandLine.run(["forward", "--config", "Experiments/voc2007-seed.yaml", "--set", "model.base_channels=8",
                                              "--checkpoint", weights, "--input", inputURL.path, "--output", folder.appendingPathComponent("y").path])
        XCTAssertNotEqual(wrongModel.status, 0)
        XCTAssertTrue(wrongModel.error.contains(weights), wrongModel.error)
        XCTAssertTrue(wrongModel.error.contains("c1.layer.0.weight is [4, 3, 3, 3], the model has [8, 3, 3, 3]"), wrongModel.error)
        XCTAssertTrue(wrongModel.error.contains("out.weight"), wrongModel.error)
    }
}
