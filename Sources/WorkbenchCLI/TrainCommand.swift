import DataParallel
import ArgumentParser
import Foundation
import Workbench

extension Precision: ExpressibleByArgument {}

/// Options shared by commands that read an experiment file: the file (as the first argument or
/// with --config, whichever the user types) and --set overrides.
struct ExperimentOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The experiment file (YAML); the same as giving it as the first argument.", valueName: "file"))
    var config: String?
    @Option(name: .customLong("set"), help: ArgumentHelp("Override a key of the experiment file.", valueName: "key.path=value"))
    var overrides: [String] = []

    /// The experiment from `positional` or --config (or `fallback`, e.g. a run's config.yaml).
    func load(_ positional: String?, fallback: URL? = nil, checkData: Bool = true) throws -> Experiment {
        if let positional, let config, positional != config {
            throw ValidationError("two experiment files given (\(positional) and --config \(config)); give one")
        }
        guard let path = positional ?? config ?? fallback?.path else {
            throw ValidationError("give the experiment file, e.g. `workbench <command> Experiments/voc2007-quick.yaml …` or --config FILE (or --run RUN_DIR where the command takes one)")
        }
        return try Experiment.load(URL(fileURLWithPath: path), overrides: overrides, checkData: checkData)
    }
}

/// Which trained model a command runs: an experiment and a checkpoint, or a run folder, whose
/// config.yaml and final model are then used (so none of the training run's --set need repeating).
struct ModelOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A run folder: its config.yaml and checkpoints/model-final.safetensors (either can still be given).", valueName: "run-dir"))
    var run: String?
    @Option(help: ArgumentHelp("Model weights or a training state (safetensors).", valueName: "file"))
    var checkpoint: String?
    @Option(help: ArgumentHelp("Matrix products and convolutions in float32, or bf16 (bfloat16 operands, float32 sums; CPUs with AVX512_BF16).", valueName: "float32|bf16"))
    var precision: Precision = .float32
    @OptionGroup var experiment: ExperimentOptions

    /// The experiment and checkpoint; also sets --precision for the command's products.
    func load(_ positional: String?, checkData: Bool = true) throws -> (Experiment, URL) {
        try Runtime.configurePrecision(precision, setting: "--precision \(precision.rawValue)")
        let runURL = run.map { URL(fileURLWithPath: $0) }
        let loaded = try experiment.load(positional, fallback: runURL?.appendingPathComponent("config.yaml"), checkData: checkData)
        guard let path = checkpoint ?? runURL.map({ $0.appendingPathComponent("checkpoints/model-final.safetensors").path }) else {
            throw ValidationError("give the model: --checkpoint FILE, or --run RUN_DIR for a run's final model")
        }
        return (loaded, URL(fileURLWithPath: path))
    }
}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train the model an experiment file describes; writes a run folder under runs/.",
        discussion: TrainCommand.examples)

    static let examples = """
        Examples:
          workbench train Experiments/voc2007-quick.yaml
          workbench train Experiments/voc2007.yaml --set data.root=/data/VOC2007 --set train.lr=1e-3
          workbench train Experiments/ddpm-mnist.yaml --run-dir runs/ddpm
          workbench train Experiments/ddpm-mnist.yaml --resume runs/ddpm          # after Ctrl-C or a budget
          mpirun -np 2 workbench train Experiments/voc2007.yaml                   # data-parallel, same bits as one process
        """

    @Argument(help: "The experiment file (YAML), or --config.") var experiment: String?
    @OptionGroup var options: ExperimentOptions
    @Option(help: "Write the run here instead of runs/<name>-<timestamp>/.") var runDir: String?
    @Option(help: "Continue the run in this folder from its last checkpoint.") var resume: String?
    @Flag(help: "Replace the run already in --run-dir (without it, an existing run there is an error).") var overwrite = false
    @Flag(help: "Print only the final summary.") var quiet = false

    func run() throws {
        try reportingErrors {
            if overwrite && runDir == nil { throw ValidationError("--overwrite needs --run-dir (the folder to replace)") }
            if resume != nil && (runDir != nil || overwrite) { throw ValidationError("--resume continues its own folder; leave out --run-dir and --overwrite") }
            let loaded = try options.load(experiment)
            var trainOptions = TrainOptions()
            trainOptions.overwrite = overwrite
            trainOptions.runDirectory = runDir.map { URL(fileURLWithPath: $0) }
            trainOptions.resume = resume.map { URL(fileURLWithPath: $0) }
            trainOptions.verbose = !quiet
            let group = try MPIProcessGroup.fromEnvironment()
            trainOptions.processGroup = group
            // Only rank 0 of a data-parallel run talks to the terminal.
            if let group, group.rank != 0 { trainOptions.verbose = false }
            let result: TrainResult
            do {
                result = try Trainer.run(loaded, options: trainOptions)
            } catch {
                // A rank that stops with an error ends every rank (the others may be waiting for it
                // in a collective, where MPI_Finalize would wait forever).
                if let group { group.abort("error: \(error)") }
                throw error
            }
            group?.finalize()
            if result.ending == .interrupted { throw ExitCode(130) }
            if let group, group.rank != 0 { return }
            let metrics = result.finalMetrics.map { "\($0.name) \(String(format: "%.4f", $0.value))" }.joined(separator: ", ")
            print("run \(result.run.url.path): \(result.steps) steps\(metrics.isEmpty ? "" : ", " + metrics)")
        }
    }
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a checkpoint: per-class IoU, accuracy and Dice, mIoU (segmentation); the bound in bits/dim and the simple loss (diffusion).",
        discussion: """
        Examples:
          workbench eval --run runs/voc
          workbench eval Experiments/voc2007.yaml --checkpoint weights.safetensors --set data.root=/data/VOC2007 --json
          workbench eval --run runs/voc --split train --output report.json    # also report.confusion.png
        """)

    @Argument(help: "The experiment file (YAML), or --config, or --run.") var experiment: String?
    @Option(help: "The ImageSets split to evaluate (default: the experiment's eval.split).") var split: String?
    @Flag(help: "Print one JSON object instead of a table.") var json = false
    @Option(help: "Also write the JSON report to this file (and, for segmentation, the confusion matrix beside it as .confusion.png).")
    var output: String?
    @OptionGroup var model: ModelOptions

    func run() throws {
        try reportingErrors {
            let (loaded, checkpointURL) = try model.load(experiment)
            if loaded.task == .classification {
                let metrics = try ClassificationJobs.evaluate(loaded, checkpoint: checkpointURL)
                if json {
                    let object = Dictionary(uniqueKeysWithValues: metrics.map { ($0.name, $0.value as Any) } + [("checkpoint", checkpointURL.path as Any)])
                    print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self))
                } else {
                    print(metrics.map { "\($0.name.padding(toLength: 14, withPad: " ", startingAt: 0)) \(String(format: "%.5f", $0.value))" }.joined(separator: "\n"))
                }
                return
            }
            if loaded.task == .diffusion {
                let metrics = try DiffusionJobs.evaluate(loaded, checkpoint: checkpointURL, verbose: !json)
                let written = try DiffusionJobs.write(metrics, experiment: loaded, checkpoint: checkpointURL,
                                                      output: output.map { URL(fileURLWithPath: $0) })
                print(json ? String(decoding: written.json, as: UTF8.self) : written.table)
                return
            }
            let report = try SegmentationJobs.evaluate(loaded, checkpoint: checkpointURL, split: split, verbose: !json)
            let written = try SegmentationJobs.write(report, experiment: loaded, checkpoint: checkpointURL, split: split ?? loaded.evalSplit,
                                                     output: output.map { URL(fileURLWithPath: $0) })
            print(json ? String(decoding: written.json, as: UTF8.self) : written.table)
        }
    }
}

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Segment images: a VOC-palette mask and an overlay per image (and the seed's original/label/result PNGs when labels exist).",
        discussion: """
        Examples:
          workbench predict --run runs/voc --out predictions photo1.jpg photo2.png
          workbench predict --config Experiments/voc2007-seed.yaml --checkpoint seed.safetensors --out out VOC2007/JPEGImages/*.jpg
        """)

    @Option(help: "Output folder.") var out: String
    @Argument(help: "JPEG or PNG images.") var images: [String]
    @OptionGroup var model: ModelOptions

    func run() throws {
        try reportingErrors {
            let (loaded, checkpoint) = try model.load(nil, checkData: false)
            let written = try SegmentationJobs.predict(loaded, checkpoint: checkpoint,
                                                       images: images.map { URL(fileURLWithPath: $0) },
                                                       output: URL(fileURLWithPath: out), verbose: true)
            print("wrote \(written.count) files to \(out)")
        }
    }
}
