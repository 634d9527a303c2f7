import Foundation
import ImageIO
import Workbench
import XCTest

/// `workbench eval` and `workbench predict` on a model trained for a few steps.
final class SegmentationCommandTests: XCTestCase {
    func testEvalAndPredict() throws {
        let folder = try CommandLine.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let data = folder.appendingPathComponent("voc")
        let synth = try CommandLine.run(["data", "synth-voc", "--out", data.path, "--count", "6", "--seed", "2"])
        XCTAssertEqual(synth.status, 0, synth.error)
        let overrides = ["--set", "data.root=\(data.path)", "--set", "data.image_size=32", "--set", "model.base_channels=2",
                         "--set", "train.max_steps=2", "--set", "train.batch_size=2", "--set", "data.val_split=val"]
        let run = folder.appendingPathComponent("run")
        let train = try CommandLine.run(["train", "Experiments/voc2007.yaml", "--run-dir", run.path, "--quiet"] + overrides)
        XCTAssertEqual(train.status, 0, train.error)
        let checkpoint = run.appendingPathComponent("checkpoints/model-final.safetensors").path

        let eval = try CommandLine.run(["eval", "Experiments/voc2007.yaml", "--checkpoint", checkpoint, "--json",
                                        "--output", folder.appendingPathComponent("eval.json").path] + overrides)
        XCTAssertEqual(eval.status, 0, eval.error)
        let report = try JSONSerialization.jsonObject(with: Data(eval.output.utf8)) as! [String: Any]
        let miou = report["mIoU"] as! Double
        XCTAssertTrue((0...1).contains(miou))
        XCTAssertEqual((report["per_class_iou"] as! [String: Any]).count, 21)
        XCTAssertEqual(report["split"] as? String, "val")
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent("eval.json").path))
        let table = try CommandLine.run(["eval", "Experiments/voc2007.yaml", "--checkpoint", checkpoint] + overrides)
        XCTAssertTrue(table.output.contains("mean") && table.output.contains("Dice"), table.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent("eval.confusion.png").path))
        XCTAssertEqual((report["per_class_dice"] as! [String: Any]).count, 21)
        XCTAssertNotNil(report["mAcc"] as? Double)
        XCTAssertTrue(table.output.contains("aeroplane"), table.output)
        // A run folder is enough: its config.yaml (with the training run's --set) and final model.
        let fromRun = try CommandLine.run(["eval", "--run", run.path, "--json"])
        XCTAssertEqual(fromRun.status, 0, fromRun.error)
        let runReport = try JSONSerialization.jsonObject(with: Data(fromRun.output.utf8)) as! [String: Any]
        XCTAssertEqual(runReport["mIoU"] as? Double, miou)
        // The experiment as --config works as well as positionally.
        let withConfig = try CommandLine.run(["eval", "--config", "Experiments/voc2007.yaml", "--checkpoint", checkpoint, "--json"] + overrides)
        XCTAssertEqual(withConfig.status, 0, withConfig.error)

        let image = data.appendingPathComponent("JPEGImages/2007_000001.jpg")
        let out = folder.appendingPathComponent("predictions")
        let predict = try CommandLine.run(["predict", "--run", run.path, "--out", out.path, image.path])
        XCTAssertEqual(predict.status, 0, predict.error)
        let maskData = try Data(contentsOf: out.appendingPathComponent("2007_000001_mask.png"))
        XCTAssertTrue(try PNG.isPalette(maskData), "masks are palette PNGs")
        let mask = try PNG.decodeIndices(maskData, path: "mask")
        let source = try ImageFile.read(image)
        XCTAssertEqual([mask.width, mask.height], [source.width, source.height], "masks have the input's size")
        let colours = try PNG.decode(maskData, path: "mask")
        for index in 0..<(mask.width * mask.height) {
            let k = Int(mask.pixels[index])
            XCTAssertEqual([colours.pixels[3 * index], colours.pixels[3 * index + 1], colours.pixels[3 * index + 2]],
                           [Palette.voc[3 * k], Palette.voc[3 * k + 1], Palette.voc[3 * k + 2]])
        }
        for name in ["2007_000001_overlay.png", "original_0.png", "label_0.png", "result_0.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(name).path), name)
        }
    }
}
