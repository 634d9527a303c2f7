import ArgumentParser
import Diffusion
import Foundation
import Workbench

extension SamplerKind: ExpressibleByArgument {}
extension TimestepSpacing: ExpressibleByArgument {}

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Draw images from a trained diffusion model: one PNG per sample and a grid.",
        discussion: """
        Examples:
          workbench sample --run runs/ddpm --count 64 --seed 1 --out samples
          workbench sample --run runs/ddpm --sampler ddpm --count 16 --out samples-ddpm1000
          workbench sample --run runs/ddpm --sampler dpmpp_2m --steps 20 --count 64 --out samples-dpm20
          workbench sample Experiments/ddpm-mnist.yaml --checkpoint model.safetensors --sampler ddim --steps 50 --eta 0.5 --out s
          workbench sample --run runs/ddpm-cond --class 3 --guidance-scale 2 --count 16 --out threes
          workbench sample --run runs/ddpm-cond --classes all --count 8 --out by-class    # one grid row per class
        """)

    @Argument(help: "The diffusion experiment file, or --config, or --run.") var experiment: String?
    @Option(help: "Number of samples.") var count = 16
    @Option(help: "ddpm (ancestral, all T steps), ddim, dpmpp_2m (DPM-Solver++ 2M) or ddpm_respaced (default: the experiment's sample.sampler).")
    var sampler: SamplerKind?
    @Option(help: "Steps of ddim, dpmpp_2m and ddpm_respaced (default: the experiment's sample.steps).") var steps: Int?
    @Option(help: "Timestep spacing of dpmpp_2m and ddpm_respaced: linspace, leading or trailing (default: the experiment's sample.spacing).")
    var spacing: TimestepSpacing?
    @Option(help: "DDIM η (0: deterministic).") var eta: Double?
    @Option(help: "Random seed; the same seed gives the same images.") var seed: UInt64 = 0
    @Option(name: .customLong("class"), help: "Class-conditional models: sample this class (0-based).") var sampleClass: Int?
    @Option(help: "Class-conditional models: 'all' samples --count images of every class, one grid row per class.") var classes: String?
    @Option(help: "Classifier-free guidance w: ε̂ = (1+w)·ε(x,c) − w·ε(x,∅); 0 is plain conditional sampling (default: the experiment's sample.guidance_scale).")
    var guidanceScale: Double?
    @Option(help: "Output folder.") var out: String
    @OptionGroup var model: ModelOptions

    func run() throws {
        try reportingErrors {
            guard count > 0 else { throw ValidationError("--count must be positive") }
            let (experiment, checkpoint) = try model.load(self.experiment, checkData: false)
            var sampleOptions = DiffusionJobs.SampleOptions()
            sampleOptions.count = count
            sampleOptions.sampler = sampler
            sampleOptions.steps = steps
            sampleOptions.eta = eta
            sampleOptions.spacing = spacing
            sampleOptions.seed = seed
            if let classes {
                guard classes == "all" else { throw ValidationError("--classes takes 'all' (for one class use --class N)") }
                guard sampleClass == nil else { throw ValidationError("--class and --classes all exclude each other") }
                sampleOptions.classChoice = .all
            }
            if let sampleClass { sampleOptions.classChoice = .one(sampleClass) }
            sampleOptions.guidanceScale = guidanceScale
            let files = try DiffusionJobs.sample(experiment, checkpoint: checkpoint, options: sampleOptions,
                                                 output: URL(fileURLWithPath: out), verbose: true)
            print("wrote \(files.filter { $0.lastPathComponent.hasPrefix("sample_") }.count) samples and grid.png to \(out)")
        }
    }
}

struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore images with an image-conditioned diffusion model (diffusion.condition: image): <name>_restored.png at the input's size and a side-by-side <name>_panel.png.",
        discussion: """
        Each input is resized to the model's image size (bicubic), restored, and the restoration
        resized back to the input's size. With --degrade the inputs are clean images that the
        experiment's degradation spoils first, and the panel shows degraded | restored | clean.

        Examples:
          workbench restore --run runs/ddpm-mnist-sr4 low-res-digit.png --out restored
          workbench restore --run runs/ddpm-mnist-sr4 --degrade digits/*.png --out restored --seed 1
          workbench restore --config Experiments/ddpm-mnist-sr4.yaml --checkpoint model.safetensors --steps 50 a.png --out r
        """)

    @Argument(help: "PNG or JPEG images to restore.") var images: [String]
    @Flag(help: "Treat the inputs as clean images and degrade them with the experiment's degradation first.") var degrade = false
    @Option(help: "ddpm, ddim, dpmpp_2m or ddpm_respaced (default: the experiment's sample.sampler).") var sampler: SamplerKind?
    @Option(help: "Sampler steps (default: the experiment's sample.steps).") var steps: Int?
    @Option(help: "Random seed; the same seed gives the same restorations.") var seed: UInt64 = 0
    @Option(help: "Output folder.") var out: String
    @OptionGroup var model: ModelOptions

    func run() throws {
        try reportingErrors {
            let (experiment, checkpoint) = try model.load(nil, checkData: false)
            var options = DiffusionJobs.SampleOptions()
            options.sampler = sampler
            options.steps = steps
            options.seed = seed
            let files = try DiffusionJobs.restore(experiment, checkpoint: checkpoint, inputs: images.map { URL(fileURLWithPath: $0) }, degrade: degrade,
                                                  options: options, output: URL(fileURLWithPath: out), verbose: true)
            print("restored \(files.count / 2) images into \(out)")
        }
    }
}

struct EvalSamplesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval-samples",
        abstract: "Score a folder of samples with a trained classifier: classifier-FID against the test set, the class histogram and its entropy, and for class-conditional samples the fraction classified as the class asked for.",
        discussion: """
        classifier-FID is the Fréchet distance of this project's classifier's pooled features (not
        Inception's): a domain-specific FID, comparable only between sample sets scored by the same
        classifier. A classes.txt beside the samples (written by `workbench sample` for
        class-conditional models) gives the class each sample was drawn for.

        Examples:
          workbench train Experiments/mnist-classifier.yaml --run-dir runs/classifier
          workbench sample --run runs/ddpm --count 500 --out samples
          workbench eval-samples --classifier runs/classifier samples
          workbench eval-samples --classifier runs/classifier by-class --json
        """)

    @Option(help: "The classifier's run folder (task: classification).") var classifier: String
    @Argument(help: "The folder of sample PNGs.") var samples: String
    @Option(help: "Test images the samples are compared with.") var testImages = 2000
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        try reportingErrors {
            let run = URL(fileURLWithPath: classifier)
            let experiment = try Experiment.load(run.appendingPathComponent("config.yaml"), checkData: false)
            let report = try ClassificationJobs.evalSamples(experiment, checkpoint: run.appendingPathComponent("checkpoints/model-final.safetensors"),
                                                            folder: URL(fileURLWithPath: samples), testImages: max(2, testImages))
            if json {
                print(String(decoding: try JSONSerialization.data(withJSONObject: report.json, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self))
            } else {
                print(report.table)
            }
        }
    }
}
