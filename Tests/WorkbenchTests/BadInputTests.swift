import Foundation
import ImageIO
import Tensor
import Workbench
import XCTest

/// Bad inputs and faults, tried as a hostile user would: each must end with exit status 1 and a
/// message naming the file (and key) and saying what to do, never a trap. docs/bad-inputs.md
/// lists every case with its command and message; each row names the test that backs it.
final class BadInputTests: XCTestCase {
    static let folder = try! CommandLine.temporaryFolder()
    override class func tearDown() { try? FileManager.default.removeItem(at: folder) }

    /// A tiny VOC-format set and the overrides that train a tiny U-Net on it.
    static let voc: URL = {
        let url = folder.appendingPathComponent("voc")
        _ = try? CommandLine.run(["data", "synth-voc", "--out", url.path, "--count", "6", "--seed", "4"])
        return url
    }()
    var tiny: [String] { tiny() }
    /// Overrides for a tiny U-Net on the tiny set; `changes` replace or add keys.
    func tiny(_ changes: [String: String] = [:]) -> [String] {
        var values = ["data.root": Self.voc.path, "data.image_size": "32", "model.base_channels": "2", "train.batch_size": "2",
                      "train.max_steps": "2", "data.val_split": "val"]
        values.merge(changes) { $1 }
        return values.keys.sorted().flatMap { ["--set", "\($0)=\(values[$0]!)"] } + ["--quiet"]
    }
    var mnist: URL { CommandLine.packageRoot.appendingPathComponent("Data/mnist-subset") }
    var tinyDiffusion: [String] { tinyDiffusion() }
    func tinyDiffusion(_ changes: [String: String?] = [:]) -> [String] {
        var values: [String: String?] = ["model.base_channels": "4", "model.channel_multipliers": "[1, 2]", "model.groups": "2",
                                         "data.image_size": "8", "data.limit": "32", "train.batch_size": "8", "train.max_steps": "2",
                                         "eval.images": "8", "eval.bound_timesteps": "2", "sample.count": "2", "sample.steps": "2"]
        values.merge(changes) { $1 }
        return values.keys.sorted().compactMap { key in values[key]!.map { ["--set", "\(key)=\($0)"] } }.flatMap { $0 } + ["--quiet"]
    }

    /// Runs the CLI and checks: no trap, exit status 1, and every fragment in the message.
    @discardableResult
    func expectFailure(_ arguments: [String], _ fragments: [String], environment: [String: String] = [:],
                       file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let result = try CommandLine.run(arguments, environment: environment)
        XCTAssertFalse(result.crashed, "trapped: \(result.error)", file: file, line: line)
        XCTAssertEqual(result.status, 1, "exit status; stderr: \(result.error)", file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(result.error.contains(fragment), "message lacks '\(fragment)': \(result.error)", file: file, line: line)
        }
        return result.error
    }

    func write(_ data: Data, _ name: String) throws -> URL {
        let url = Self.folder.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url)
        return url
    }

    // MARK: Sizes that cannot fit

    func testSizesThatCannotFitAreRefusedBeforeAllocating() throws {
        for (key, value) in [("data.image_size", "100000"), ("model.base_channels", "100000"), ("train.batch_size", "100000000")] {
            let run = Self.folder.appendingPathComponent("huge-\(key)")
            try expectFailure(["train", "Experiments/voc2007-quick.yaml", "--set", "\(key)=\(value)", "--run-dir", run.path, "--quiet"],
                              ["Experiments/voc2007-quick.yaml", key, "GB", "lower one of them"])
            XCTAssertFalse(FileManager.default.fileExists(atPath: run.path), "no half-made run folder")
            try expectFailure(["config", "check", "Experiments/voc2007-quick.yaml", "--set", "\(key)=\(value)"], [key, "GB"])
        }
    }

    // MARK: Data files

    /// An IDX3 image file declaring `count` images of 28×28 but holding `stored` of them.
    func idx(count: UInt32, stored: Int, rows: UInt32 = 28) -> Data {
        var data = Data()
        for word in [UInt32(0x0803), count, rows, 28] { withUnsafeBytes(of: word.bigEndian) { data.append(contentsOf: $0) } }
        data.append(Data(repeating: 128, count: stored * Int(rows) * 28))
        return data
    }

    func mnistFolder(_ name: String, train: Data, test: Data) throws -> URL {
        let folder = Self.folder.appendingPathComponent(name)
        _ = try write(train, "\(name)/train-images-idx3-ubyte")
        _ = try write(test, "\(name)/t10k-images-idx3-ubyte")
        return folder
    }

    func testMNISTHeadersAreCheckedBeforeReading() throws {
        let empty = try mnistFolder("mnist-empty-train", train: idx(count: 0, stored: 0), test: idx(count: 10, stored: 10))
        try expectFailure(["train", "Experiments/ddpm-mnist-quick.yaml", "--set", "data.root=\(empty.path)", "--run-dir",
                           Self.folder.appendingPathComponent("r-empty").path] + tinyDiffusion,
                          ["train-images-idx3-ubyte", "declares 0 images"])
        let emptyTest = try mnistFolder("mnist-empty-test", train: idx(count: 10, stored: 10), test: idx(count: 0, stored: 0))
        try expectFailure(["train", "Experiments/ddpm-mnist-quick.yaml", "--set", "data.root=\(emptyTest.path)", "--run-dir",
                           Self.folder.appendingPathComponent("r-empty-test").path] + tinyDiffusion,
                          ["t10k-images-idx3-ubyte", "declares 0 images"])
        let huge = try mnistFolder("mnist-huge", train: idx(count: UInt32.max, stored: 1, rows: 4096), test: idx(count: 10, stored: 10))
        try expectFailure(["train", "Experiments/ddpm-mnist-quick.yaml", "--set", "data.root=\(huge.path)", "--run-dir",
                           Self.folder.appendingPathComponent("r-huge").path] + tinyDiffusion(["data.limit": String?.none]),
                          ["train-images-idx3-ubyte", "more than half of this machine's memory", "data.limit"])
        // 1.4 million images declared, 40 stored: data.limit reads only what it needs, so training works.
        let lying = try mnistFolder("mnist-lying", train: idx(count: 1_400_000, stored: 40), test: idx(count: 10, stored: 10))
        let ok = try CommandLine.run(["train", "Experiments/ddpm-mnist-quick.yaml", "--set", "data.root=\(lying.path)", "--run-dir",
                                      Self.folder.appendingPathComponent("r-lying").path] + tinyDiffusion)
        XCTAssertEqual(ok.status, 0, ok.error)
        try expectFailure(["train", "Experiments/ddpm-mnist-quick.yaml", "--set", "data.root=\(lying.path)",
                           "--run-dir", Self.folder.appendingPathComponent("r-lying-100").path] + tinyDiffusion(["data.limit": "100"]),
                          ["train-images-idx3-ubyte", "truncated"])
    }

    /// A safetensors file with the given header (data: `bytes` zero bytes).
    func safetensors(_ header: String, bytes: Int) -> Data {
        var data = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(Data(header.utf8))
        data.append(Data(repeating: 0, count: bytes))
        return data
    }

    func testSafetensorsWithOverflowingOrOverlappingEntriesAreRefused() throws {
        let overflow = try write(safetensors(#"{"x":{"dtype":"F32","shape":[1,3,32,4611686018427387936],"data_offsets":[0,12288]}}"#, bytes: 12288),
                                 "overflow.safetensors")
        let checkpoint = CommandLine.nnFixture("weights.safetensors").path
        try expectFailure(["forward", "--config", "Experiments/voc2007-seed.yaml", "--checkpoint", checkpoint, "--input", overflow.path,
                           "--output", Self.folder.appendingPathComponent("y.safetensors").path, "--set", "model.base_channels=4"],
                          ["overflow.safetensors", "overflows"])
        let overlap = try write(safetensors(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                                            bytes: 12), "overlap.safetensors")
        XCTAssertThrowsError(try SafeTensorsFile.read(overlap)) { XCTAssertTrue("\($0)".contains("overlaps"), "\($0)") }
        let gap = try write(safetensors(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, bytes: 8), "gap.safetensors")
        XCTAssertThrowsError(try SafeTensorsFile.read(gap)) { XCTAssertTrue("\($0)".contains("gap"), "\($0)") }
        let fractional = try write(safetensors(#"{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#, bytes: 4), "fractional.safetensors")
        XCTAssertThrowsError(try SafeTensorsFile.read(fractional)) { XCTAssertTrue("\($0)".contains("bad shape"), "\($0)") }
        // The same overflow in a training state, met on --resume.
        let run = Self.folder.appendingPathComponent("resume-overflow")
        XCTAssertEqual(try CommandLine.run(["train", "Experiments/voc2007-quick.yaml", "--run-dir", run.path] + tiny).status, 0)
        try FileManager.default.copyItem(at: overflow, to: run.appendingPathComponent("checkpoints/state.safetensors.new"))
        try FileManager.default.removeItem(at: run.appendingPathComponent("checkpoints/state.safetensors"))
        try FileManager.default.moveItem(at: run.appendingPathComponent("checkpoints/state.safetensors.new"),
                                         to: run.appendingPathComponent("checkpoints/state.safetensors"))
        try expectFailure(["train", "Experiments/voc2007-quick.yaml", "--resume", run.path] + tiny.filter { $0 != "--quiet" } + ["--set", "train.max_steps=4"],
                          ["state.safetensors", "overflows"])
    }

    /// Replaces a PNG chunk's 4 bytes at `offset` (from the file start) and, unless `keepCRC`, fixes the chunk's CRC.
    func patchPNG(_ data: Data, offset: Int, bytes: [UInt8], chunkStart: Int, chunkLength: Int, keepCRC: Bool = false) -> Data {
        var data = data
        for (i, byte) in bytes.enumerated() { data[offset + i] = byte }
        if !keepCRC {
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in data[(chunkStart + 4)..<(chunkStart + 8 + chunkLength)] {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
            }
            crc ^= 0xFFFF_FFFF
            let at = chunkStart + 8 + chunkLength
            for i in 0..<4 { data[at + i] = UInt8((crc >> (24 - 8 * UInt32(i))) & 0xFF) }
        }
        return data
    }

    func testImageDecodersGiveTheRealReasonAndRefuseHugeHeaders() throws {
        let image = Image(width: 4, height: 3, channels: 3, fill: 90)
        let png = try PNG.encode(image)
        // IHDR starts at byte 8: length(4) type(4) width(4) height(4) …
        let badCRC = patchPNG(png, offset: 16, bytes: [0, 0, 0, 5], chunkStart: 8, chunkLength: 13, keepCRC: true)
        XCTAssertThrowsError(try PNG.decode(badCRC, path: "bad-crc.png")) { error in
            XCTAssertFalse("\(error)".contains("could not allocate"), "\(error)")
            XCTAssertTrue("\(error)".lowercased().contains("crc"), "\(error)")
        }
        let huge = patchPNG(png, offset: 16, bytes: [0, 1, 0, 0, 0, 1, 0, 0], chunkStart: 8, chunkLength: 13)
        XCTAssertThrowsError(try PNG.decode(huge, path: "huge.png")) { XCTAssertTrue("\($0)".contains("too large"), "\($0)") }
        XCTAssertThrowsError(try PNG.decodeIndices(png, path: "rgb-label.png")) {
            XCTAssertTrue("\($0)".contains("a label map must be a palette or grayscale PNG"), "\($0)")
        }
        // A JPEG whose SOF0 header claims 20000×20000 (a few hundred bytes of file).
        var jpeg = try JPEG.encode(image)
        let sof = (0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 }!
        for (i, byte) in [UInt8(0x4E), 0x20, 0x4E, 0x20].enumerated() { jpeg[sof + 5 + i] = byte }
        XCTAssertThrowsError(try JPEG.decode(jpeg, path: "huge.jpg")) { XCTAssertTrue("\($0)".contains("20000x20000"), "\($0)") }
        // And through the CLI, a label PNG in RGB.
        let voc = Self.folder.appendingPathComponent("voc-rgb-label")
        try FileManager.default.copyItem(at: Self.voc, to: voc)
        let label = try FileManager.default.contentsOfDirectory(atPath: voc.appendingPathComponent("SegmentationClass").path).sorted()[0]
        try PNG.write(Image(width: 8, height: 8, channels: 3), to: voc.appendingPathComponent("SegmentationClass/\(label)"))
        try expectFailure(["train", "Experiments/voc2007.yaml", "--run-dir", Self.folder.appendingPathComponent("r-rgb").path]
                          + tiny(["data.root": voc.path, "data.train_split": "all", "data.prefetch_batches": "0"]),
                          [label, "palette or grayscale"])
    }

    func testLabelOutsideTheClassesIsAnError() throws {
        let voc = Self.folder.appendingPathComponent("voc-class-50")
        try FileManager.default.copyItem(at: Self.voc, to: voc)
        let labels = voc.appendingPathComponent("SegmentationClass")
        let name = try FileManager.default.contentsOfDirectory(atPath: labels.path).sorted()[0]
        var label = try PNG.readIndices(labels.appendingPathComponent(name))
        label.pixels[0] = 50
        try PNG.write(label, to: labels.appendingPathComponent(name), palette: Palette.voc)
        try expectFailure(["train", "Experiments/voc2007.yaml", "--run-dir", Self.folder.appendingPathComponent("r-50").path]
                          + tiny(["data.root": voc.path, "data.train_split": "all"]),
                          [name, "pixel value 50 is not a class index", "segmentation.classes"])
    }

    // MARK: Experiment files and options

    func testExperimentFilesThatAreNotText() throws {
        let binary = try write(Data([0x6E, 0x61, 0x6D, 0x65, 0x3A, 0x0A, 0xFF, 0xFE, 0x00, 0x0A]), "binary.yaml")
        try expectFailure(["config", "check", binary.path], ["binary.yaml:2", "not UTF-8"])
        try expectFailure(["train", Self.folder.path], [Self.folder.path, "is a folder"])
        try expectFailure(["train", "Experiments/nope.yaml"], ["nope.yaml", "no such experiment file"])
        try expectFailure(["config", "check", "Experiments/ddpm-mnist-quick.yaml", "--set", "model.groups=3"],
                          ["model.groups", "3 groups do not divide"])
        try expectFailure(["config", "check", "Experiments/ddpm-mnist-quick.yaml", "--set", "sample.eta=1.5"], ["sample.eta", "at most 1"])
    }

    func testSamplingOptionsAreChecked() throws {
        let run = Self.folder.appendingPathComponent("ddpm")
        let train = try CommandLine.run(["train", "Experiments/ddpm-mnist-quick.yaml", "--run-dir", run.path] + tinyDiffusion)
        XCTAssertEqual(train.status, 0, train.error)
        let checkpoint = run.appendingPathComponent("checkpoints/model-final.safetensors").path
        let base = ["sample", "--config", "Experiments/ddpm-mnist-quick.yaml", "--checkpoint", checkpoint, "--count", "1",
                    "--out", Self.folder.appendingPathComponent("samples").path] + tinyDiffusion.dropLast()
        try expectFailure(base + ["--steps", "0"], ["--steps 0", "must be 1…1000"])
        try expectFailure(base + ["--steps=-3"], ["--steps -3"])
        try expectFailure(base + ["--eta=-1"], ["--eta -1", "between 0"])
        try expectFailure(base + ["--eta", "1.5"], ["--eta 1.5"])
        try expectFailure(base + ["--eta", "nan"], ["--eta nan"])
        try expectFailure(base + ["--sampler", "ddpm", "--steps", "7"], ["the ddpm sampler runs all 1000 steps", "--sampler ddpm_respaced"])
        for sampler in ["dpmpp_2m", "ddpm_respaced"] {
            let result = try CommandLine.run(base + ["--sampler", sampler, "--steps", "3", "--spacing", "trailing"])
            XCTAssertEqual(result.status, 0, "\(sampler): \(result.error)")
        }
        // Checkpoints that are folders or of the other head.
        try expectFailure(["sample", "--config", "Experiments/ddpm-mnist-quick.yaml", "--checkpoint", run.path, "--count", "1",
                           "--out", Self.folder.appendingPathComponent("s2").path], [run.path, "is a folder", "model-final.safetensors"])
        try expectFailure(["eval", "Experiments/voc2007.yaml", "--checkpoint", checkpoint, "--set", "data.root=\(Self.voc.path)"],
                          [checkpoint, "not of this model", "diffusion noise predictor"])
        try expectFailure(["eval", "Experiments/ddpm-mnist-quick.yaml", "--checkpoint", checkpoint, "--output", "/proc/no/such/eval.json"]
                          + tinyDiffusion.dropLast(), ["/proc/no/such/eval.json", "could not write"])
    }

    /// bf16 where it cannot run (here forced with WORKBENCH_AVX512=0, so the test means the same on
    /// every CPU): the error names where bf16 was asked for and why it cannot run, before any run
    /// folder exists; an unknown precision lists the known ones.
    func testBF16WhereTheCPUCannotRunIt() throws {
        let portable = ["WORKBENCH_AVX512": "0"]
        let run = Self.folder.appendingPathComponent("bf16-run")
        try expectFailure(["train", "Experiments/voc2007-quick.yaml", "--run-dir", run.path] + tiny(["train.precision": "bf16"]),
                          ["voc2007-quick.yaml: train.precision", "bf16 precision is not available here", "WORKBENCH_AVX512=0", "use precision float32"],
                          environment: portable)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.path), "no run folder for a run that cannot start")
        try expectFailure(["bench", "Experiments/voc2007-quick.yaml", "--steps", "1"] + tiny(["train.precision": "bf16"]).dropLast(),
                          ["train.precision", "bf16 precision is not available here"], environment: portable)
        try expectFailure(["sample", "Experiments/ddpm-mnist-quick.yaml", "--checkpoint", "missing.safetensors", "--precision", "bf16",
                           "--out", Self.folder.appendingPathComponent("bf16-samples").path],
                          ["--precision bf16: bf16 precision is not available here", "use precision float32"], environment: portable)
        try expectFailure(["train", "Experiments/voc2007-quick.yaml"] + tiny(["train.precision": "fp16"]),
                          ["train.precision: 'fp16' is not one of float32, bf16"])
        // A command-line value the parser refuses: a usage error (status 64) listing the values.
        let usage = try CommandLine.run(["eval", "Experiments/voc2007-quick.yaml", "--checkpoint", "x.safetensors", "--precision", "half"])
        XCTAssertFalse(usage.crashed)
        XCTAssertEqual(usage.status, 64, usage.error)
        XCTAssertTrue(usage.error.contains("'half' is invalid for '--precision") && usage.error.contains("'float32' and 'bf16'"), usage.error)
    }

    func testDataFoldersAndPredictInputs() throws {
        let parent = Self.folder.appendingPathComponent("above")
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        try? FileManager.default.copyItem(at: Self.voc, to: parent.appendingPathComponent("VOC2007"))
        try expectFailure(["train", "Experiments/voc2007.yaml", "--run-dir", Self.folder.appendingPathComponent("r-above").path]
                          + tiny(["data.root": parent.path]),
                          ["no JPEGImages/", "did you mean data.root=\(parent.appendingPathComponent("VOC2007").path)"])
        try expectFailure(["predict", "--config", "Experiments/voc2007-seed.yaml", "--checkpoint", CommandLine.nnFixture("weights.safetensors").path,
                           "--out", Self.folder.appendingPathComponent("p").path, "--set", "model.base_channels=4", Self.voc.path],
                          [Self.voc.path, "is a folder", "*.jpg"])
    }

    // MARK: Numbers

    func testNonFiniteStateStopsTheRunAndTellsTheTruth() throws {
        let run = Self.folder.appendingPathComponent("lr1e10")
        let message = try expectFailure(["train", "Experiments/voc2007-quick.yaml", "--run-dir", run.path]
                                        + tiny(["train.lr": "1e10", "train.max_steps": "30", "train.log_every_steps": "1"]),
                                        ["became non-finite", "no checkpoint was written yet"])
        XCTAssertTrue(message.contains("running_var") || message.contains("weight") || message.contains("exp_avg"), message)
    }

    // MARK: Run folders

    func testRunFoldersAreLockedAndNotOverwritten() throws {
        let run = Self.folder.appendingPathComponent("locked")
        let first = RunDirectory(url: run), second = RunDirectory(url: run)
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        try first.lock()
        XCTAssertThrowsError(try second.lock()) { XCTAssertTrue("\($0)".contains("is being written by another workbench process (pid \(getpid()))"), "\($0)") }
        first.unlock()
        XCTAssertNoThrow(try second.lock())
        second.unlock()

        let done = Self.folder.appendingPathComponent("done")
        XCTAssertEqual(try CommandLine.run(["train", "Experiments/voc2007-quick.yaml", "--run-dir", done.path] + tiny).status, 0)
        try expectFailure(["train", "Experiments/voc2007-quick.yaml", "--run-dir", done.path] + tiny,
                          [done.path, "already holds a run", "--resume", "--overwrite"])
        let again = try CommandLine.run(["train", "Experiments/voc2007-quick.yaml", "--run-dir", done.path, "--overwrite"] + tiny)
        XCTAssertEqual(again.status, 0, again.error)
    }

    func testConfigChangesOnResumeAreListedByKey() throws {
        let run = Self.folder.appendingPathComponent("changed")
        XCTAssertEqual(try CommandLine.run(["train", "Experiments/voc2007-quick.yaml", "--run-dir", run.path] + tiny).status, 0)
        try expectFailure(["train", "Experiments/voc2007-quick.yaml", "--resume", run.path] + tiny(["train.lr": "0.5"]),
                          ["train.lr: 0.002 → 0.5", "resume with the experiment the run started from"])
    }

    func testReproduceOfARunATimeBudgetEnded() throws {
        // However far the time budget lets it get, the re-run stops at the same step.
        let run = Self.folder.appendingPathComponent("timed")
        let trained = try CommandLine.run(["train", "Experiments/voc2007-quick.yaml", "--run-dir", run.path]
                                          + tiny(["train.max_steps": "400", "train.max_minutes": "0.003"]))
        XCTAssertEqual(trained.status, 0, trained.error)
        let reproduced = try CommandLine.run(["reproduce", run.path, "--quiet"])
        XCTAssertEqual(reproduced.status, 0, reproduced.output + reproduced.error)
        XCTAssertTrue(reproduced.output.contains("reproduced bit for bit"), reproduced.output)
    }
}
