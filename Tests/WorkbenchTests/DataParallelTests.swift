import Foundation
import XCTest

/// `mpirun -np 2 workbench train …` (Open MPI, two ranks on this machine) against one process with
/// the same global batch: byte-identical metrics and checkpoints for both heads, resumed across
/// rank counts in both directions, a dead rank ending the run with an error, and clear errors for
/// runs that cannot be split.
final class DataParallelTests: XCTestCase {
    static let folder = try! CommandLine.temporaryFolder()
    override class func tearDown() { try? FileManager.default.removeItem(at: folder) }

    static let voc: URL = {
        let url = folder.appendingPathComponent("voc")
        _ = try? CommandLine.run(["data", "synth-voc", "--out", url.path, "--count", "12", "--seed", "3"])
        return url
    }()

    /// The segmentation head with BatchNorm, dropout and CE + Dice: 6 steps of 4 images; evaluation in batches of 2.
    var segmentation: [String] {
        ["train", "Experiments/voc2007-quick.yaml", "--quiet", "--set", "data.root=\(Self.voc.path)", "--set", "data.image_size=32",
         "--set", "model.base_channels=4", "--set", "train.batch_size=4", "--set", "train.max_steps=6", "--set", "train.epochs=null",
         "--set", "train.checkpoint_every_steps=3", "--set", "train.checkpoint_every_epochs=null", "--set", "train.eval_every_steps=6",
         "--set", "train.eval_every_epochs=null", "--set", "train.log_every_steps=1", "--set", "eval.batch_size=2", "--set", "threads=1"]
    }

    /// The class-conditional diffusion head (class embedding, classes dropped to ∅, guided samples) with
    /// GroupNorm, dropout, attention and the EMA: 6 steps of 6 images; the bound
    /// and the sample grid in batches of 2.
    var diffusion: [String] {
        ["train", "Experiments/ddpm-mnist-cond-quick.yaml", "--quiet", "--set", "model.base_channels=8", "--set", "model.dropout=0.1",
         "--set", "model.attention_resolutions=[8]",
         "--set", "train.batch_size=6", "--set", "train.max_steps=6", "--set", "train.warmup_steps=2",
         "--set", "train.checkpoint_every_steps=3", "--set", "train.eval_every_steps=6", "--set", "train.log_every_steps=1",
         "--set", "sample.count=4", "--set", "sample.steps=4", "--set", "sample.batch_size=2", "--set", "eval.images=6",
         "--set", "eval.batch_size=2", "--set", "eval.bound_timesteps=3",
         "--set", "threads=1"]
    }

    /// Runs `mpirun -np ranks workbench arguments…` (or the MPMD form when `arguments` has several
    /// parts), with `environment` exported to every rank.
    func mpirun(_ ranks: Int, _ parts: [[String]], environment: [String: String] = [:]) throws -> (status: Int32, error: String, seconds: Double) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var arguments = ["mpirun", "--allow-run-as-root", "--oversubscribe"]
        for key in environment.keys.sorted() { arguments += ["-x", key] }
        for (index, part) in parts.enumerated() {
            if index > 0 { arguments.append(":") }
            arguments += ["-np", String(ranks / parts.count), CommandLine.executable.path] + part
        }
        process.arguments = arguments
        process.currentDirectoryURL = CommandLine.packageRoot
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        let started = Date()
        try process.run()
        let data = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self), Date().timeIntervalSince(started))
    }

    /// Metrics (training losses and the evaluations, split over ranks), checkpoints and outputs
    /// (sample grids, split over ranks; prediction panels).
    /// One rank per executable (`mpirun -np 1 A args : -np 1 B args`).
    func mpirunBinaries(_ executables: [String], _ arguments: [String]) throws -> (status: Int32, error: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var command = ["mpirun", "--allow-run-as-root", "--oversubscribe"]
        for (index, executable) in executables.enumerated() {
            if index > 0 { command.append(":") }
            command += ["-np", "1", executable] + arguments
        }
        process.arguments = command
        process.currentDirectoryURL = CommandLine.packageRoot
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let data = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func compared(_ run: URL) -> [String] {
        func files(_ folder: String, _ suffix: String) -> [String] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent(folder).path)) ?? []
            return names.filter { $0.hasSuffix(suffix) }.sorted().map { "\(folder)/\($0)" }
        }
        return ["metrics.jsonl"] + files("checkpoints", ".safetensors") + files("outputs", ".png")
    }

    func assertIdentical(_ a: URL, _ b: URL, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        let names = compared(a)
        XCTAssertEqual(names, compared(b), label, file: file, line: line)
        XCTAssertGreaterThan(names.count, 3, "\(label): \(names)", file: file, line: line)
        for name in names {
            let x = try? Data(contentsOf: a.appendingPathComponent(name)), y = try? Data(contentsOf: b.appendingPathComponent(name))
            XCTAssertNotNil(x, "\(label): \(name) missing", file: file, line: line)
            XCTAssertEqual(x, y, "\(label): \(name) differs between \(a.lastPathComponent) and \(b.lastPathComponent)", file: file, line: line)
        }
    }

    func checkHead(_ name: String, _ arguments: [String]) throws {
        let single = Self.folder.appendingPathComponent("\(name)-1")
        let one = try CommandLine.run(arguments + ["--run-dir", single.path])
        XCTAssertEqual(one.status, 0, one.error)

        let pair = Self.folder.appendingPathComponent("\(name)-2")
        let two = try mpirun(2, [arguments + ["--run-dir", pair.path]])
        XCTAssertEqual(two.status, 0, two.error)
        assertIdentical(single, pair, "\(name): 2 ranks vs 1 process")
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: pair.appendingPathComponent("manifest.json"))) as? [String: Any]
        XCTAssertEqual(manifest?["ranks"] as? Int, 2)
        XCTAssertEqual((manifest?["hosts"] as? [String])?.count, 2)

        // Killed at its first checkpoint with 2 ranks, resumed by 1 process; and the reverse.
        let twoThenOne = Self.folder.appendingPathComponent("\(name)-2then1")
        let killed = try mpirun(2, [arguments + ["--run-dir", twoThenOne.path]], environment: ["WORKBENCH_KILL_AT": "trainer.state-saved#1"])
        XCTAssertNotEqual(killed.status, 0, "the killed 2-rank run exited normally")
        let resumedByOne = try CommandLine.run(arguments + ["--resume", twoThenOne.path])
        XCTAssertEqual(resumedByOne.status, 0, resumedByOne.error)
        assertIdentical(single, twoThenOne, "\(name): 2 ranks, killed, resumed by 1 process")

        let oneThenTwo = Self.folder.appendingPathComponent("\(name)-1then2")
        let killedOne = try CommandLine.run(arguments + ["--run-dir", oneThenTwo.path], environment: ["WORKBENCH_KILL_AT": "trainer.state-saved#1"])
        XCTAssertTrue(killedOne.crashed, killedOne.error)
        let resumedByTwo = try mpirun(2, [arguments + ["--resume", oneThenTwo.path]])
        XCTAssertEqual(resumedByTwo.status, 0, resumedByTwo.error)
        assertIdentical(single, oneThenTwo, "\(name): 1 process, killed, resumed by 2 ranks")
    }

    func testSegmentationOverTwoRanksEqualsOneProcess() throws {
        try checkHead("segmentation", segmentation)
    }

    func testDiffusionOverTwoRanksEqualsOneProcess() throws {
        try checkHead("diffusion", diffusion)
    }

    /// SIGTERM to `mpirun` (as a cluster's scheduler sends it) reaches every rank: rank 0 writes a
    /// checkpoint and stops the workers; the run resumed by one process ends byte-identical.
    func testSIGTERMToMpirunStopsWithACheckpoint() throws {
        let whole = Self.folder.appendingPathComponent("term-whole"), stopped = Self.folder.appendingPathComponent("term-stopped")
        let longer = diffusion + ["--set", "train.max_steps=40", "--set", "train.checkpoint_every_steps=20", "--set", "train.eval_every_steps=40"]
        XCTAssertEqual(try CommandLine.run(longer + ["--run-dir", whole.path]).status, 0)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", CommandLine.executable.path] + longer + ["--run-dir", stopped.path]
        process.currentDirectoryURL = CommandLine.packageRoot
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait until training is under way (a few metrics lines), then stop it.
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let lines = (try? String(contentsOf: stopped.appendingPathComponent("metrics.jsonl"), encoding: .utf8))?.split(separator: "\n").count ?? 0
            if lines >= 3 { break }
            usleep(50_000)
        }
        process.terminate()
        process.waitUntilExit()
        XCTAssertNotEqual(process.terminationStatus, 0)
        let log = (try? String(contentsOf: stopped.appendingPathComponent("train.log"), encoding: .utf8)) ?? ""
        XCTAssertTrue(log.contains("stopped by signal 15"), log)
        XCTAssertTrue(FileManager.default.fileExists(atPath: stopped.appendingPathComponent("checkpoints/state.safetensors").path))
        let resumed = try CommandLine.run(longer + ["--resume", stopped.path])
        XCTAssertEqual(resumed.status, 0, resumed.error)
        assertIdentical(whole, stopped, "stopped by SIGTERM to mpirun, resumed by 1 process")
    }

    /// `--resume` under mpirun of a folder that another run is still writing: every rank ends, with
    /// the lock's message.
    func testResumingAFolderAnotherRunWritesIsRefused() throws {
        let busy = Self.folder.appendingPathComponent("busy")
        let writer = Process()
        writer.executableURL = CommandLine.executable
        writer.arguments = diffusion + ["--set", "train.max_steps=100000", "--run-dir", busy.path]
        writer.currentDirectoryURL = CommandLine.packageRoot
        writer.standardOutput = FileHandle.nullDevice
        writer.standardError = FileHandle.nullDevice
        try writer.run()
        defer { writer.terminate(); writer.waitUntilExit() }
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, !FileManager.default.fileExists(atPath: busy.appendingPathComponent("metrics.jsonl").path) { usleep(50_000) }
        let resumed = try mpirun(2, [diffusion + ["--set", "train.max_steps=100000", "--resume", busy.path]])
        XCTAssertNotEqual(resumed.status, 0)
        XCTAssertLessThan(resumed.seconds, 60)
        XCTAssertTrue(resumed.error.contains("is being written by another workbench process"), resumed.error)
    }

    func testADeadRankEndsTheRunWithAnError() throws {
        let run = Self.folder.appendingPathComponent("dead-worker")
        let result = try mpirun(2, [diffusion + ["--run-dir", run.path]], environment: ["WORKBENCH_KILL_AT": "worker.step#2"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertLessThan(result.seconds, 60, "the surviving rank must not hang")
        XCTAssertTrue(result.error.contains("rank 1") || result.error.contains("signal 9"), result.error)
    }

    func testAHangingRankEndsTheRunWithAnErrorAfterTheTimeout() throws {
        let run = Self.folder.appendingPathComponent("hung-worker")
        let result = try mpirun(2, [diffusion + ["--run-dir", run.path]],
                                environment: ["WORKBENCH_HANG_AT": "worker.step#2", "WORKBENCH_MPI_TIMEOUT": "4"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertLessThan(result.seconds, 60)
        XCTAssertTrue(result.error.contains("rank 0 of 2: no answer from the other ranks for 4 s"), result.error)
    }

    func testRunsThatCannotBeSplitAreClearErrors() throws {
        let tooSmall = try mpirun(2, [diffusion + ["--set", "train.batch_size=1", "--run-dir", Self.folder.appendingPathComponent("small").path]])
        XCTAssertNotEqual(tooSmall.status, 0)
        XCTAssertTrue(tooSmall.error.contains("train.batch_size 1 splits into 1 gradient groups, fewer than the 2 ranks"), tooSmall.error)

        let run = Self.folder.appendingPathComponent("mixed").path
        let mixed = try mpirun(2, [diffusion + ["--run-dir", run], diffusion + ["--set", "train.lr=0.5", "--run-dir", run]])
        XCTAssertNotEqual(mixed.status, 0)
        XCTAssertTrue(mixed.error.contains("rank 1 runs an experiment whose resolved config differs from rank 0's"), mixed.error)

        // Another binary on one rank (the same build plus one byte: a different hash).
        let other = Self.folder.appendingPathComponent("workbench-other")
        try? FileManager.default.removeItem(at: other)
        var bytes = try Data(contentsOf: CommandLine.executable)
        bytes.append(0)
        try bytes.write(to: other)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: other.path)
        let binaries = try mpirunBinaries([CommandLine.executable.path, other.path], diffusion + ["--run-dir", Self.folder.appendingPathComponent("binaries").path])
        XCTAssertNotEqual(binaries.status, 0)
        XCTAssertTrue(binaries.error.contains("rank 1 on") && binaries.error.contains("runs another workbench binary than rank 0"), binaries.error)

        // Rank 0 refuses to resume with another config while the workers wait for its state: every rank ends.
        let finished = Self.folder.appendingPathComponent("finished")
        XCTAssertEqual(try CommandLine.run(diffusion + ["--set", "train.max_steps=2", "--run-dir", finished.path]).status, 0)
        let changed = try mpirun(2, [diffusion + ["--set", "train.lr=0.5", "--resume", finished.path]])
        XCTAssertNotEqual(changed.status, 0)
        XCTAssertLessThan(changed.seconds, 60)
        XCTAssertTrue(changed.error.contains("differs from") && changed.error.contains("train.lr: 0.001 → 0.5"), changed.error)
    }
}
