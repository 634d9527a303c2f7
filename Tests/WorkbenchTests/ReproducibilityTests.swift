import Foundation
import Tensor
import Workbench
import XCTest

/// Same experiment + seed + machine + threads ⇒ byte-identical metrics and checkpoints, also for
/// a run stopped (by a step budget or SIGINT) and resumed.
final class ReproducibilityTests: XCTestCase {
    static let folder = try! CommandLine.temporaryFolder()

    override class func tearDown() { try? FileManager.default.removeItem(at: folder) }

    /// A tiny segmentation experiment on 12 synthetic images (generated once, shared by the runs).
    func tinyExperiment(epochs: Int = 2, extra: String = "") throws -> URL {
        let url = Self.folder.appendingPathComponent("tiny-\(epochs).yaml")
        let yaml = """
        name: tiny
        seed: 3
        threads: 2
        data:
          root: \(Self.folder.appendingPathComponent("data").path)
          synthetic:
            count: 12
          image_size: 32
          train_split: train
          val_split: val
          flip: true
          min_scale: 0.8
          max_scale: 1.2
        model:
          base_channels: 2
          dropout: 0.2
        segmentation:
          target: onehot
        train:
          batch_size: 4
          epochs: \(epochs)
          lr: 0.01
          log_every_steps: 1
          checkpoint_every_epochs: 1
          eval_every_epochs: 1
        eval:
          batch_size: 2
        \(extra)
        """
        try yaml.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    func train(_ experiment: URL, overrides: [String] = [], into run: URL, resume: Bool = false) throws -> TrainResult {
        var options = TrainOptions()
        options.verbose = false
        if resume { options.resume = run } else { options.runDirectory = run }
        return try Trainer.run(try Experiment.load(experiment, overrides: overrides), options: options)
    }

    /// The files that must match byte for byte between two runs.
    func assertIdentical(_ a: URL, _ b: URL, file: StaticString = #filePath, line: UInt = #line) throws {
        let checkpoints = try FileManager.default.contentsOfDirectory(atPath: a.appendingPathComponent("checkpoints").path)
            .filter { $0.hasSuffix(".safetensors") }.sorted()
        XCTAssertTrue(checkpoints.contains("state.safetensors") && checkpoints.contains("model-final.safetensors"), file: file, line: line)
        for name in ["metrics.jsonl", "metrics.csv", "config.yaml"] + checkpoints.map({ "checkpoints/" + $0 }) {
            let left = try Data(contentsOf: a.appendingPathComponent(name))
            let right = try? Data(contentsOf: b.appendingPathComponent(name))
            XCTAssertEqual(left, right, "\(name) differs", file: file, line: line)
        }
    }

    func testSameSeedGivesByteIdenticalRuns() throws {
        let experiment = try tinyExperiment()
        let first = try train(experiment, into: Self.folder.appendingPathComponent("run-a"))
        let second = try train(experiment, into: Self.folder.appendingPathComponent("run-b"))
        XCTAssertEqual(first.steps, 6, "10 training images in batches of 4: 3 steps per epoch")
        XCTAssertEqual(first.ending, .completed)
        try assertIdentical(first.run.url, second.run.url)
        let metrics = try String(contentsOf: first.run.url.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        XCTAssertTrue(metrics.contains("\"kind\":\"final_eval\""), metrics)
        XCTAssertTrue(metrics.contains("\"mIoU\":"), metrics)
        for plot in ["loss.png", "lr.png", "validation.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: first.run.url.appendingPathComponent("plots/\(plot)").path), plot)
        }
        // A different seed really changes the run (the comparison above can fail).
        let other = try train(experiment, overrides: ["seed=4"], into: Self.folder.appendingPathComponent("run-c"))
        XCTAssertNotEqual(try Data(contentsOf: first.run.url.appendingPathComponent("checkpoints/model-final.safetensors")),
                          try Data(contentsOf: other.run.url.appendingPathComponent("checkpoints/model-final.safetensors")))
    }

    /// Images are shared between threads differently (1 thread: one chunk; 3 threads: 1+1+2 images,
    /// and the 2-image evaluation batches split single products by columns), yet every weight,
    /// optimiser moment and metric is the same to the bit.
    func testThreadCountDoesNotChangeTheResult() throws {
        // OpenBLAS rounds a product split into column blocks differently from the whole product.
        try XCTSkipUnless(BLAS.ownKernel, "thread-count independence needs the workbench's GEMM (this CPU uses OpenBLAS)")
        let experiment = try tinyExperiment(epochs: 1)
        let runs = try [1, 3].map { threads in
            try train(experiment, overrides: ["threads=\(threads)", "model.base_channels=8"],
                      into: Self.folder.appendingPathComponent("threads-\(threads)")).run.url
        }
        for name in ["metrics.jsonl", "checkpoints/model-final.safetensors"] {
            XCTAssertEqual(try Data(contentsOf: runs[0].appendingPathComponent(name)),
                           try Data(contentsOf: runs[1].appendingPathComponent(name)), name)
        }
        // The training state's header records the experiment's hash (threads differ); its tensors must not.
        let states = try runs.map { try SafeTensorsFile.read($0.appendingPathComponent("checkpoints/state.safetensors")) }
        XCTAssertEqual(states[0].keys, states[1].keys)
        XCTAssertGreaterThan(states[0].keys.count, 20)
        for name in states[0].keys {
            XCTAssertEqual(states[0].entries[name]?.bytes, states[1].entries[name]?.bytes, name)
        }
    }

    /// Gradient accumulation through the trainer: 10 images in micro-batches of 4 make 3 batches per
    /// epoch, so 2 steps (2 + 1 micro-batches) per epoch; resumed mid-run it equals the whole run.
    /// bf16 mixed precision: reproducible and thread-count independent to the bit like float32, a
    /// different result from float32 (the products really are bf16) whose first losses agree with
    /// float32's to bf16's accuracy, and the manifest says which precision ran.
    func testBF16RunsAreReproducibleAndCloseToFloat32() throws {
        try XCTSkipUnless(BLAS.bf16Available && BLAS.backend == .avx512, "bf16 needs AVX512_BF16 (this CPU has none)")
        let experiment = try tinyExperiment(epochs: 1)
        func run(_ name: String, _ overrides: [String]) throws -> URL {
            try train(experiment, overrides: ["model.base_channels=8"] + overrides, into: Self.folder.appendingPathComponent(name)).run.url
        }
        let bf16 = try [1, 3].map { try run("bf16-\($0)", ["train.precision=bf16", "threads=\($0)"]) }
        let float32 = try run("float32", [])
        XCTAssertEqual(BLAS.precision, .float32, "training restores the process's precision")
        for name in ["metrics.jsonl", "checkpoints/model-final.safetensors"] {
            XCTAssertEqual(try Data(contentsOf: bf16[0].appendingPathComponent(name)),
                           try Data(contentsOf: bf16[1].appendingPathComponent(name)), name)
        }
        XCTAssertNotEqual(try Data(contentsOf: bf16[0].appendingPathComponent("checkpoints/model-final.safetensors")),
                          try Data(contentsOf: float32.appendingPathComponent("checkpoints/model-final.safetensors")))
        func firstLoss(_ run: URL) throws -> Double {
            let lines = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
            for line in lines {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                if object?["kind"] as? String == "train", let loss = object?["loss"] as? Double { return loss }
            }
            throw XCTSkip("no training loss in \(run.path)")
        }
        let (low, full) = (try firstLoss(bf16[0]), try firstLoss(float32))
        XCTAssertEqual(low, full, accuracy: 0.02 * abs(full), "first-step loss, bf16 against float32")
        let manifest = try String(contentsOf: bf16[0].appendingPathComponent("manifest.json"), encoding: .utf8)
        XCTAssertTrue(manifest.contains("\"precision\" : \"bf16\"") || manifest.contains("\"precision\":\"bf16\""), manifest)
    }

    func testAccumulatedRunResumesToTheSameBytes() throws {
        let experiment = try tinyExperiment(epochs: 3)
        let whole = try train(experiment, overrides: ["train.accumulate_steps=2"], into: Self.folder.appendingPathComponent("acc-whole"))
        XCTAssertEqual(whole.steps, 6, "2 optimiser steps per epoch")
        let partURL = Self.folder.appendingPathComponent("acc-part")
        _ = try train(experiment, overrides: ["train.accumulate_steps=2", "train.max_steps=3"], into: partURL)
        _ = try train(experiment, overrides: ["train.accumulate_steps=2"], into: partURL, resume: true)
        try assertIdentical(whole.run.url, partURL)
        let plain = try train(experiment, into: Self.folder.appendingPathComponent("acc-plain"))
        XCTAssertNotEqual(try Data(contentsOf: plain.run.url.appendingPathComponent("checkpoints/model-final.safetensors")),
                          try Data(contentsOf: whole.run.url.appendingPathComponent("checkpoints/model-final.safetensors")),
                          "accumulation changes the run")
    }

    func testStepBudgetThenResumeEqualsUninterruptedRun() throws {
        let experiment = try tinyExperiment(epochs: 3)
        let whole = try train(experiment, into: Self.folder.appendingPathComponent("whole"))
        let partURL = Self.folder.appendingPathComponent("part")
        let part = try train(experiment, overrides: ["train.max_steps=3"], into: partURL)
        XCTAssertEqual(part.steps, 3, "stops mid-epoch on the step budget")
        let resumed = try train(experiment, into: partURL, resume: true)
        XCTAssertEqual(resumed.steps, whole.steps)
        try assertIdentical(whole.run.url, partURL)
    }

    func testSIGINTWritesCheckpointAndResumeEqualsUninterruptedRun() throws {
        // Long enough (60 steps: 20 epochs of 3) to be interrupted part-way; the CLI is what a user interrupts.
        let experiment = try tinyExperiment(epochs: 20)
        let whole = Self.folder.appendingPathComponent("cli-whole"), cut = Self.folder.appendingPathComponent("cli-cut")
        let full = try CommandLine.run(["train", experiment.path, "--run-dir", whole.path, "--quiet"])
        XCTAssertEqual(full.status, 0, full.error)

        try CommandLine.freshness.get()
        let process = Process()
        process.executableURL = CommandLine.executable
        process.arguments = ["train", experiment.path, "--run-dir", cut.path, "--quiet"]
        process.currentDirectoryURL = CommandLine.packageRoot
        process.standardError = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let metrics = cut.appendingPathComponent("metrics.jsonl")
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let lines = (try? String(contentsOf: metrics, encoding: .utf8))?.split(separator: "\n").count ?? 0
            if lines >= 5 { break }
            usleep(2000)
        }
        process.interrupt()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 130, "SIGINT ends the run with status 130 after a checkpoint")
        let progress = try JSONSerialization.jsonObject(with: Data(contentsOf: cut.appendingPathComponent("checkpoints/progress.json"))) as! [String: Any]
        let stoppedAt = progress["step"] as! Int
        XCTAssertGreaterThan(stoppedAt, 0)
        XCTAssertLessThan(stoppedAt, 60, "the run was stopped before its end")

        let resumed = try CommandLine.run(["train", experiment.path, "--resume", cut.path, "--quiet"])
        XCTAssertEqual(resumed.status, 0, resumed.error)
        try assertIdentical(whole, cut)
    }

    func testResumeRefusesAChangedExperiment() throws {
        let experiment = try tinyExperiment()
        let run = Self.folder.appendingPathComponent("changed")
        _ = try train(experiment, overrides: ["train.max_steps=1"], into: run)
        XCTAssertThrowsError(try train(experiment, overrides: ["train.lr=0.5"], into: run, resume: true)) { error in
            XCTAssertTrue("\(error)".contains("differs from") && "\(error)".contains("train.lr: 0.01 → 0.5"), "\(error)")
        }
    }
}

final class RunCommandsTests: XCTestCase {
    func testRunsListCompareAndReproduce() throws {
        let folder = try CommandLine.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let data = folder.appendingPathComponent("voc")
        XCTAssertEqual(try CommandLine.run(["data", "synth-voc", "--out", data.path, "--count", "5"]).status, 0)
        let base = ["Experiments/voc2007-quick.yaml", "--quiet", "--set", "data.root=\(data.path)", "--set", "data.image_size=32",
                    "--set", "model.base_channels=2", "--set", "train.max_steps=2", "--set", "threads=2"]
        let runs = folder.appendingPathComponent("runs")
        for (name, lr) in [("a", "0.001"), ("b", "0.002")] {
            let result = try CommandLine.run(["train"] + base + ["--set", "train.lr=\(lr)", "--run-dir", runs.appendingPathComponent(name).path])
            XCTAssertEqual(result.status, 0, result.error)
        }
        let list = try CommandLine.run(["runs", "list", "--dir", runs.path])
        XCTAssertTrue(list.output.contains("a ") && list.output.contains("completed"), list.output)
        let compare = try CommandLine.run(["runs", "compare", runs.appendingPathComponent("a").path, runs.appendingPathComponent("b").path])
        XCTAssertEqual(compare.status, 0, compare.error)
        XCTAssertTrue(compare.output.contains("train.lr"), compare.output)
        XCTAssertTrue(compare.output.contains("mIoU"), compare.output)
        let reproduce = try CommandLine.run(["reproduce", runs.appendingPathComponent("a").path, "--quiet",
                                             "--run-dir", folder.appendingPathComponent("again").path])
        XCTAssertEqual(reproduce.status, 0, reproduce.output + reproduce.error)
        XCTAssertTrue(reproduce.output.contains("reproduced bit for bit"), reproduce.output)
    }
}
