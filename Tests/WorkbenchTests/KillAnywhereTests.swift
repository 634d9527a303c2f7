import Foundation
import Workbench
import XCTest

/// A small training killed with SIGKILL at aimed points (in the middle of a checkpoint write, just
/// before its rename, after a metrics line, after a state, after an output) and resumed ends
/// byte-identical to the run that was never killed: metrics, checkpoints, outputs and plots, with
/// no temporary file left over. The kill points are deterministic (`WORKBENCH_KILL_AT`), not timed.
final class KillAnywhereTests: XCTestCase {
    static let folder = try! CommandLine.temporaryFolder()
    override class func tearDown() { try? FileManager.default.removeItem(at: folder) }

    static let voc: URL = {
        let url = folder.appendingPathComponent("voc")
        _ = try? CommandLine.run(["data", "synth-voc", "--out", url.path, "--count", "10", "--seed", "6"])
        return url
    }()

    /// 8 steps with a checkpoint, outputs and an evaluation every 2 steps.
    var arguments: [String] {
        ["train", "Experiments/voc2007-quick.yaml", "--quiet", "--set", "data.root=\(Self.voc.path)", "--set", "data.image_size=32",
         "--set", "model.base_channels=2", "--set", "train.batch_size=2", "--set", "train.max_steps=8", "--set", "train.epochs=null",
         "--set", "train.checkpoint_every_steps=2", "--set", "train.checkpoint_every_epochs=null", "--set", "train.eval_every_steps=4",
         "--set", "train.eval_every_epochs=null", "--set", "train.log_every_steps=1", "--set", "threads=1"]
    }

    func files(_ run: URL) -> [String] {
        var names: [String] = ["metrics.jsonl", "metrics.csv", "config.yaml", "summary.json"].filter { _ in true }
        for folder in ["checkpoints", "outputs", "plots"] {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent(folder).path)) ?? []
            names += entries.filter { !$0.hasPrefix(".") && $0 != "progress.json" }.map { "\(folder)/\($0)" }
        }
        return names.sorted()
    }

    func testKilledAnywhereAndResumedEqualsTheUninterruptedRun() throws {
        let whole = Self.folder.appendingPathComponent("whole")
        let reference = try CommandLine.run(arguments + ["--run-dir", whole.path])
        XCTAssertEqual(reference.status, 0, reference.error)
        let expected = files(whole)
        XCTAssertTrue(expected.contains("outputs/predictions-step0000004.png"), "\(expected)")

        let points = ["atomic-write.partial#1", "atomic-write.partial#7", "atomic-write.before-rename#3", "atomic-write.before-rename#12",
                      "metrics.appended#2", "metrics.appended#9", "trainer.step#1", "trainer.step#5", "trainer.state-saved#1",
                      "trainer.state-saved#3", "trainer.outputs-written#2", "trainer.outputs-written#4"]
        for point in points {
            let run = Self.folder.appendingPathComponent("killed-" + point.replacingOccurrences(of: "#", with: "-"))
            let killed = try CommandLine.run(arguments + ["--run-dir", run.path], environment: ["WORKBENCH_KILL_AT": point])
            XCTAssertTrue(killed.crashed, "\(point): the process was not killed (status \(killed.status)): \(killed.error)")
            let resumed = try CommandLine.run(arguments + ["--resume", run.path])
            XCTAssertEqual(resumed.status, 0, "\(point): \(resumed.error)")
            XCTAssertEqual(files(run), expected, point)
            for name in expected where name != "summary.json" {
                let a = try Data(contentsOf: whole.appendingPathComponent(name))
                let b = try? Data(contentsOf: run.appendingPathComponent(name))
                XCTAssertEqual(a, b, "\(point): \(name) differs")
            }
            let leftovers = try FileManager.default.subpathsOfDirectory(atPath: run.path).filter { $0.contains(".tmp-") }
            XCTAssertEqual(leftovers, [], "\(point): temporary files left")
        }
    }
}
