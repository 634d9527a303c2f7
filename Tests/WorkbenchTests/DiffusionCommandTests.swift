import Foundation
import ImageIO
import Workbench
import XCTest

/// The diffusion head end to end on a tiny model: reproducible training (EMA and optimiser state
/// included) and resume, sampling with a seed, and the bound evaluation.
final class DiffusionCommandTests: XCTestCase {
    static let folder = try! CommandLine.temporaryFolder()
    override class func tearDown() { try? FileManager.default.removeItem(at: folder) }

    func experiment() throws -> URL {
        let url = Self.folder.appendingPathComponent("tiny-ddpm.yaml")
        let yaml = """
        name: tiny-ddpm
        task: diffusion
        seed: 1
        threads: 2
        data:
          root: \(CommandLine.packageRoot.appendingPathComponent("Data/mnist-subset").path)
          image_size: 8
          limit: 64
          flip: true
        model:
          base_channels: 4
          channel_multipliers: [1, 2]
          groups: 2
          dropout: 0.1
          attention_resolutions: [4]
        diffusion:
          timesteps: 20
          variance_type: learned_range
          loss: hybrid
        train:
          batch_size: 8
          lr: 0.001
          max_steps: 4
          warmup_steps: 2
          checkpoint_every_steps: 2
          eval_every_steps: 4
          log_every_steps: 1
        sample:
          count: 4
          steps: 5
        eval:
          images: 8
          bound_timesteps: 5
        """
        try yaml.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    func files(_ run: URL) throws -> [String: Data] {
        var result: [String: Data] = [:]
        for name in ["metrics.jsonl", "checkpoints/state.safetensors", "checkpoints/model-final.safetensors", "checkpoints/model-step0000002.safetensors"] {
            result[name] = try Data(contentsOf: run.appendingPathComponent(name))
        }
        return result
    }

    func testTrainResumeSampleEvaluate() throws {
        let yaml = try experiment().path
        let a = Self.folder.appendingPathComponent("a"), b = Self.folder.appendingPathComponent("b"), c = Self.folder.appendingPathComponent("c")
        for run in [a, b] {
            let result = try CommandLine.run(["train", yaml, "--run-dir", run.path, "--quiet"])
            XCTAssertEqual(result.status, 0, result.error)
        }
        XCTAssertEqual(try files(a), try files(b), "same seed, same bytes")
        let metrics = try String(contentsOf: a.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        XCTAssertTrue(metrics.contains("\"bits_per_dim\":"), metrics)
        XCTAssertTrue(FileManager.default.fileExists(atPath: a.appendingPathComponent("outputs/samples-step0000004.png").path))

        let part = try CommandLine.run(["train", yaml, "--run-dir", c.path, "--quiet", "--set", "train.max_steps=2"])
        XCTAssertEqual(part.status, 0, part.error)
        let resumed = try CommandLine.run(["train", yaml, "--resume", c.path, "--quiet"])
        XCTAssertEqual(resumed.status, 0, resumed.error)
        XCTAssertEqual(try files(a), try files(c), "a resumed run equals the uninterrupted one (EMA, optimiser, step)")

        let checkpoint = a.appendingPathComponent("checkpoints/model-final.safetensors").path
        func sample(_ sampler: String, seed: Int, into name: String) throws -> Data {
            let out = Self.folder.appendingPathComponent(name)
            // DDPM runs all T steps (asking it for fewer is an error); DDIM takes --steps.
            let steps = sampler == "ddim" ? ["--steps", "4"] : []
            let result = try CommandLine.run(["sample", "--config", yaml, "--checkpoint", checkpoint, "--count", "3", "--sampler", sampler,
                                              "--seed", "\(seed)", "--out", out.path] + steps)
            XCTAssertEqual(result.status, 0, result.error)
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("sample_0002.png").path))
            return try Data(contentsOf: out.appendingPathComponent("grid.png"))
        }
        XCTAssertEqual(try sample("ddim", seed: 7, into: "s1"), try sample("ddim", seed: 7, into: "s2"), "same seed, same images")
        XCTAssertNotEqual(try sample("ddim", seed: 7, into: "s3"), try sample("ddim", seed: 8, into: "s4"))
        XCTAssertEqual(try sample("ddpm", seed: 3, into: "s5"), try sample("ddpm", seed: 3, into: "s6"))
        let state = a.appendingPathComponent("checkpoints/state.safetensors").path
        let fromState = try CommandLine.run(["sample", "--config", yaml, "--checkpoint", state, "--count", "2", "--out",
                                             Self.folder.appendingPathComponent("s7").path])
        XCTAssertEqual(fromState.status, 0, "a training state samples with its EMA weights: \(fromState.error)")

        let eval = try CommandLine.run(["eval", yaml, "--checkpoint", checkpoint, "--json"])
        XCTAssertEqual(eval.status, 0, eval.error)
        let report = try JSONSerialization.jsonObject(with: Data(eval.output.utf8)) as! [String: Any]
        XCTAssertGreaterThan(report["bits_per_dim"] as! Double, 0)
        XCTAssertNotNil(report["mse"] as? Double)
        XCTAssertTrue((report["bound_estimator"] as! String).contains("stratified"))
    }
}

extension DiffusionCommandTests {
    /// A loss that becomes NaN/inf stops the run with a message and keeps the last good checkpoint.
    func testNonFiniteLossStopsAndKeepsTheLastCheckpoint() throws {
        let yaml = try experiment().path
        let run = Self.folder.appendingPathComponent("nan")
        let result = try CommandLine.run(["train", yaml, "--run-dir", run.path, "--quiet", "--set", "train.lr=1e30", "--set", "train.grad_clip=null",
                                          "--set", "train.warmup_steps=0", "--set", "train.max_steps=50", "--set", "train.checkpoint_every_steps=1",
                                          "--set", "diffusion.loss=kl"])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.error.contains("loss became"), result.error)
        XCTAssertTrue(result.error.contains("still holds the last good state (step "), result.error)
        let progress = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("checkpoints/progress.json"))) as! [String: Any]
        XCTAssertGreaterThanOrEqual(progress["step"] as! Int, 1)
        XCTAssertNoThrow(try Data(contentsOf: run.appendingPathComponent("checkpoints/state.safetensors")))
    }

    /// A class-conditional run (learned variance, guidance) killed after its first checkpoint and
    /// resumed equals the uninterrupted run; the same seed samples the same images per class; bad
    /// requests are clear errors.
    func testClassConditionalTrainingResumeAndGuidedSampling() throws {
        let base = try experiment()
        let conditional = Self.folder.appendingPathComponent("tiny-ddpm-cond.yaml")
        try """
        base: \(base.path)
        name: tiny-ddpm-cond
        model:
          num_classes: 10
        diffusion:
          cond_drop_prob: 0.3
        sample:
          guidance_scale: 1.5
        """.write(to: conditional, atomically: true, encoding: .utf8)
        let whole = Self.folder.appendingPathComponent("cond-whole"), killed = Self.folder.appendingPathComponent("cond-killed")
        let first = try CommandLine.run(["train", conditional.path, "--quiet", "--run-dir", whole.path])
        XCTAssertEqual(first.status, 0, first.error)
        let crash = try CommandLine.run(["train", conditional.path, "--quiet", "--run-dir", killed.path], environment: ["WORKBENCH_KILL_AT": "trainer.state-saved#1"])
        XCTAssertTrue(crash.crashed, crash.error)
        let resumed = try CommandLine.run(["train", conditional.path, "--quiet", "--resume", killed.path])
        XCTAssertEqual(resumed.status, 0, resumed.error)
        XCTAssertEqual(try files(whole), try files(killed), "a resumed conditional run equals the uninterrupted one")

        var grids: [Data] = []
        for name in ["a", "b"] {
            let out = Self.folder.appendingPathComponent("by-class-\(name)")
            let sample = try CommandLine.run(["sample", "--run", whole.path, "--classes", "all", "--count", "2", "--seed", "3", "--out", out.path])
            XCTAssertEqual(sample.status, 0, sample.error)
            XCTAssertTrue(sample.output.contains("wrote 20 samples"), sample.output)
            grids.append(try Data(contentsOf: out.appendingPathComponent("grid.png")))
        }
        XCTAssertEqual(grids[0], grids[1], "the same seed gives the same samples")
        let grid = try PNG.read(Self.folder.appendingPathComponent("by-class-a/grid.png"))
        XCTAssertGreaterThan(grid.height, 4 * grid.width, "one row per class: 10 rows of 2")

        let outside = try CommandLine.run(["sample", "--run", whole.path, "--class", "10", "--out", Self.folder.appendingPathComponent("x").path])
        XCTAssertNotEqual(outside.status, 0)
        XCTAssertTrue(outside.error.contains("--class 10: the model has 10 classes (0…9)"), outside.error)
        let unconditional = try CommandLine.run(["sample", base.path, "--checkpoint", whole.appendingPathComponent("checkpoints/model-final.safetensors").path,
                                                 "--guidance-scale", "2", "--out", Self.folder.appendingPathComponent("y").path])
        XCTAssertNotEqual(unconditional.status, 0)
        XCTAssertTrue(unconditional.error.contains("--guidance-scale needs a class-conditional model"), unconditional.error)
        let noModel = try CommandLine.run(["config", "check", base.path, "--set", "sample.guidance_scale=2"])
        XCTAssertNotEqual(noModel.status, 0)
        XCTAssertTrue(noModel.error.contains("sample.guidance_scale: classifier-free guidance needs a class-conditional model"), noModel.error)
    }

    /// Image-conditioned restoration: a run killed after its first checkpoint and resumed equals the
    /// uninterrupted one; evaluation reports restoration, degraded and bicubic quality; `restore`
    /// writes restorations at the input's size; `sample` and `restore` refuse the wrong kind of model.
    func testRestorationTrainingEvaluationAndRestore() throws {
        let base = try experiment()
        let restoration = Self.folder.appendingPathComponent("tiny-sr.yaml")
        try """
        base: \(base.path)
        name: tiny-sr
        data:
          image_size: 16
        diffusion:
          condition: image
        restoration:
          degradation: downsample
          scale: 2
        """.write(to: restoration, atomically: true, encoding: .utf8)
        let whole = Self.folder.appendingPathComponent("sr-whole"), killed = Self.folder.appendingPathComponent("sr-killed")
        let first = try CommandLine.run(["train", restoration.path, "--quiet", "--run-dir", whole.path])
        XCTAssertEqual(first.status, 0, first.error)
        for name in ["psnr", "ssim", "psnr_degraded", "ssim_degraded", "psnr_bicubic", "ssim_bicubic", "bits_per_dim"] {
            XCTAssertTrue(first.output.contains(name + " "), "\(name) missing from \(first.output)")
        }
        let crash = try CommandLine.run(["train", restoration.path, "--quiet", "--run-dir", killed.path], environment: ["WORKBENCH_KILL_AT": "trainer.state-saved#1"])
        XCTAssertTrue(crash.crashed, crash.error)
        let resumed = try CommandLine.run(["train", restoration.path, "--quiet", "--resume", killed.path])
        XCTAssertEqual(resumed.status, 0, resumed.error)
        XCTAssertEqual(try files(whole), try files(killed), "a resumed restoration run equals the uninterrupted one")

        var input = Image(width: 20, height: 12, channels: 1, fill: 30)
        for x in 5..<15 { input.pixels[6 * 20 + x] = 220 }
        let inputURL = Self.folder.appendingPathComponent("line.png")
        try PNG.write(input, to: inputURL)
        let out = Self.folder.appendingPathComponent("restored")
        let restored = try CommandLine.run(["restore", "--run", whole.path, "--degrade", inputURL.path, "--out", out.path])
        XCTAssertEqual(restored.status, 0, restored.error)
        let result = try PNG.read(out.appendingPathComponent("line_restored.png"))
        XCTAssertEqual([result.width, result.height], [20, 12], "the restoration has the input's size")
        let again = Self.folder.appendingPathComponent("restored-again")
        XCTAssertEqual(try CommandLine.run(["restore", "--run", whole.path, "--degrade", inputURL.path, "--out", again.path]).status, 0)
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("line_panel.png")), try Data(contentsOf: again.appendingPathComponent("line_panel.png")),
                       "the same seed restores the same image")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("line_panel.png").path))

        let sample = try CommandLine.run(["sample", "--run", whole.path, "--out", Self.folder.appendingPathComponent("s").path])
        XCTAssertNotEqual(sample.status, 0)
        XCTAssertTrue(sample.error.contains("is an image-conditioned restoration model"), sample.error)
        let unconditional = Self.folder.appendingPathComponent("uncond")
        XCTAssertEqual(try CommandLine.run(["train", base.path, "--quiet", "--run-dir", unconditional.path]).status, 0)
        let wrong = try CommandLine.run(["restore", "--run", unconditional.path, inputURL.path, "--out", Self.folder.appendingPathComponent("w").path])
        XCTAssertNotEqual(wrong.status, 0)
        XCTAssertTrue(wrong.error.contains("is not a restoration model"), wrong.error)
    }
}
