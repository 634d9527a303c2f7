import ArgumentParser
import Foundation
import Workbench

/// Options shared by commands that read an experiment file.
struct ExperimentOptions: ParsableArguments {
    @Option(name: .customLong("set"), help: ArgumentHelp("Override a key of the experiment file.", valueName: "key.path=value"))
    var overrides: [String] = []

    func load(_ path: String, checkData: Bool = true) throws -> Experiment {
        try Experiment.load(URL(fileURLWithPath: path), overrides: overrides, checkData: checkData)
    }
}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train the model an experiment file describes; writes a run folder under runs/.")

    @Argument(help: "The experiment file (YAML).") var experiment: String
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
            let result = try Trainer.run(loaded, options: trainOptions)
            if result.ending == .interrupted { throw ExitCode(130) }
            let metrics = result.finalMetrics.map { "\($0.name) \(String(format: "%.4f", $0.value))" }.joined(separator: ", ")
            print("run \(result.run.url.path): \(result.steps) steps\(metrics.isEmpty ? "" : ", " + metrics)")
        }
    }
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a checkpoint: pixel accuracy, per-class IoU and mIoU (segmentation); the bound in bits/dim and the simple loss (diffusion).")

    @Argument(help: "The experiment file (YAML).") var experiment: String
    @Option(help: "Model weights or a training state (safetensors).") var checkpoint: String
    @Option(help: "The ImageSets split to evaluate (default: the experiment's eval.split).") var split: String?
    @Flag(help: "Print one JSON object instead of a table.") var json = false
    @Option(help: "Also write the JSON report to this file.") var output: String?
    @OptionGroup var options: ExperimentOptions

    func run() throws {
        try reportingErrors {
            let loaded = try options.load(experiment)
            let checkpointURL = URL(fileURLWithPath: checkpoint)
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
        abstract: "Segment images: a VOC-palette mask and an overlay per image (and the seed's original/label/result PNGs when labels exist).")

    @Option(help: "The experiment file that describes the model.") var config: String
    @Option(help: "Model weights or a training state (safetensors).") var checkpoint: String
    @Option(help: "Output folder.") var out: String
    @Argument(help: "JPEG or PNG images.") var images: [String]
    @OptionGroup var options: ExperimentOptions

    func run() throws {
        try reportingErrors {
            let loaded = try options.load(config, checkData: false)
            let written = try SegmentationJobs.predict(loaded, checkpoint: URL(fileURLWithPath: checkpoint),
                                                       images: images.map { URL(fileURLWithPath: $0) },
                                                       output: URL(fileURLWithPath: out), verbose: true)
            print("wrote \(written.count) files to \(out)")
        }
    }
}
