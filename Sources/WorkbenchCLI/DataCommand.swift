import ArgumentParser
import Foundation
import Workbench

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Make data sets.", subcommands: [SynthVOC.self])

    struct SynthVOC: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "synth-voc",
            abstract: "Write a synthetic segmentation data set in the exact VOC layout (JPEGs, palette PNGs with void borders, ImageSets).",
            discussion: """
            Examples:
              workbench data synth-voc --out data/shapes --count 600 --seed 0
              workbench data synth-voc --out data/by-shape --count 1000 --seed 1 --classes 5 --by-shape
            """)

        @Option(help: "Output folder.") var out: String
        @Option(help: "Number of images.") var count = 200
        @Option(help: "Random seed.") var seed: UInt64 = 0
        @Option(help: "Object classes (3 by colour; with --by-shape 1…12, labels 1…N).") var classes = 3
        @Flag(name: .customLong("by-shape"), help: "Decide each object's class by its shape alone and colour it at random.") var byShape = false
        @Option(help: "At most this many objects per image.") var objects = 3
        @Option(name: .customLong("min-size"), help: "Smallest object radius, as a fraction of the image's shorter side.") var minSize = 0.2
        @Option(name: .customLong("max-size"), help: "Largest object radius, as a fraction of the image's shorter side.") var maxSize = 0.45

        func run() throws {
            try reportingErrors {
                guard count > 0 else { throw ValidationError("--count must be positive") }
                var options = SyntheticVOCOptions()
                options.classes = classes
                options.classByShape = byShape
                options.maxObjects = objects
                options.minSize = minSize
                options.maxSize = maxSize
                try DataJobs.synthesizeVOC(root: URL(fileURLWithPath: out), count: count, seed: seed, options: options)
                print("wrote \(count) images to \(out)")
            }
        }
    }
}

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Inspect experiment files.", subcommands: [Show.self, Check.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the resolved experiment (every key, defaults included).",
            discussion: """
            Examples:
              workbench config show Experiments/voc2007.yaml
              workbench config show Experiments/ddpm-mnist-cond.yaml --set train.lr=1e-4   # inherited keys merged
            """)
        @Argument(help: "The experiment file (YAML), or --config; --set overrides apply.") var experiment: String?
        @OptionGroup var options: ExperimentOptions

        func run() throws {
            try reportingErrors { print(try options.load(experiment, checkData: false).resolvedYAML, terminator: "") }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate experiment files without running them.",
            discussion: """
            Examples:
              workbench config check Experiments/*.yaml
              workbench config check Experiments/voc2007.yaml --data --set data.root=/data/VOC2007
            """)
        @Argument(help: "Experiment files (YAML).") var experiments: [String]
        @Flag(help: "Also require the data folders to exist.") var data = false
        @OptionGroup var options: ExperimentOptions

        func run() throws {
            try reportingErrors {
                for path in experiments {
                    let experiment = try options.load(path, checkData: data)
                    print("ok \(path) (\(experiment.task.rawValue), config \(experiment.configHash))")
                }
            }
        }
    }
}
