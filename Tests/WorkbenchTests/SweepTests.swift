import Foundation
import Workbench
import XCTest

/// `workbench sweep`: a 2 × 2 grid over 2 seeds completes and tabulates; a sweep stopped in the
/// middle (its runs killed) continues with --resume to the same bytes; bad grids fail before any run.
final class SweepTests: XCTestCase {
    static let folder = try! CommandLine.temporaryFolder()
    override class func tearDown() { try? FileManager.default.removeItem(at: folder) }

    var arguments: [String] {
        let voc = Self.folder.appendingPathComponent("voc")
        if !FileManager.default.fileExists(atPath: voc.path) {
            _ = try? CommandLine.run(["data", "synth-voc", "--out", voc.path, "--count", "6", "--seed", "8"])
        }
        return ["sweep", "Experiments/voc2007-quick.yaml", "--grid", "train.lr=0.001,0.002", "--grid", "model.base_channels=2,3",
                "--seeds", "0,1", "--set", "data.root=\(voc.path)", "--set", "data.image_size=32", "--set", "train.batch_size=2",
                "--set", "train.max_steps=2", "--set", "data.val_split=val"]
    }

    func testSweepCompletesTabulatesAndResumesToTheSameResults() throws {
        let whole = Self.folder.appendingPathComponent("whole")
        let result = try CommandLine.run(arguments + ["--dir", whole.path])
        XCTAssertEqual(result.status, 0, result.error)
        let csv = try String(contentsOf: whole.appendingPathComponent("sweep.csv"), encoding: .utf8)
        XCTAssertEqual(csv.split(separator: "\n").count, 5, csv)
        XCTAssertTrue(csv.hasPrefix("train.lr,model.base_channels,runs,mIoU_mean,mIoU_std"), csv)
        XCTAssertTrue(FileManager.default.fileExists(atPath: whole.appendingPathComponent("validation.png").path))
        XCTAssertTrue(try String(contentsOf: whole.appendingPathComponent("sweep.md"), encoding: .utf8).contains(" ± "))

        // Stopped in the middle: every run dies at its first checkpoint, so the sweep stops after one.
        let cut = Self.folder.appendingPathComponent("cut")
        let stopped = try CommandLine.run(arguments + ["--dir", cut.path], environment: ["WORKBENCH_KILL_AT": "trainer.state-saved#1"])
        XCTAssertEqual(stopped.status, 1, stopped.error)
        XCTAssertTrue(stopped.error.contains("--resume"), stopped.error)
        let again = try CommandLine.run(arguments + ["--dir", cut.path])
        XCTAssertEqual(again.status, 1, "a sweep folder is not reused without --resume")
        let resumed = try CommandLine.run(arguments + ["--dir", cut.path, "--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.error)
        XCTAssertEqual(try Data(contentsOf: cut.appendingPathComponent("sweep.csv")), try Data(contentsOf: whole.appendingPathComponent("sweep.csv")))
        for run in try FileManager.default.contentsOfDirectory(atPath: whole.path) where !run.contains(".") {
            for file in ["metrics.jsonl", "checkpoints/model-final.safetensors"] {
                XCTAssertEqual(try Data(contentsOf: whole.appendingPathComponent("\(run)/\(file)")),
                               try Data(contentsOf: cut.appendingPathComponent("\(run)/\(file)")), "\(run)/\(file)")
            }
        }
    }

    func testBadGridsFailBeforeAnyRun() throws {
        let dir = Self.folder.appendingPathComponent("bad")
        for (grid, fragments) in [("train.lrr=0.1,0.2", ["--grid train.lrr", "unknown key", "Did you mean 'lr'?"]),
                                  ("train.lr=", ["--grid train.lr", "empty"]),
                                  ("train.lr=0.1,fast", ["--grid train.lr=fast", "expected a number"])] {
            let result = try CommandLine.run(["sweep", "Experiments/voc2007-quick.yaml", "--grid", grid, "--dir", dir.path])
            XCTAssertEqual(result.status, 1, result.error)
            for fragment in fragments { XCTAssertTrue(result.error.contains(fragment), "\(grid): \(result.error)") }
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path), "no run started for \(grid)")
        }
    }
}
