import Diffusion
import Foundation
import ImageIO
import NN
import Tensor

/// `workbench sample` and `workbench eval` for the diffusion head.
public enum DiffusionJobs {
    static func settings(_ experiment: Experiment) throws -> DiffusionSettings {
        guard case .diffusion(let settings) = experiment.head else {
            throw TrainingError("\(experiment.source.path) is not a diffusion experiment (task: diffusion)")
        }
        return settings
    }

    /// The network with the checkpoint's weights: a model file (the EMA export), or a training
    /// state, whose EMA weights are used.
    public static func loadNetwork(_ settings: DiffusionSettings, checkpoint: URL) throws -> NoisePredictor {
        let network = settings.makeModel()
        try Checkpoints.loadModelWeights(into: network, from: checkpoint, statePrefix: "extra.ema.")
        return network
    }

    public struct SampleOptions {
        public var count = 16
        /// nil: the experiment's sample.sampler.
        public var sampler: SamplerKind?
        public var steps: Int?
        public var eta: Double?
        public var spacing: TimestepSpacing?
        public var seed: UInt64 = 0
        /// Class-conditional models: one class for every sample, or every class (`count` each, one grid row per class).
        public var classChoice: ClassChoice?
        /// nil: the experiment's sample.guidance_scale.
        public var guidanceScale: Double?
        public init() {}
    }

    /// Which classes a class-conditional model samples.
    public enum ClassChoice: Equatable {
        case one(Int)
        case all
    }

    /// The experiment's diffusion settings with the sampler options of the command line applied.
    static func samplingSettings(_ experiment: Experiment, options: SampleOptions) throws -> DiffusionSettings {
        var settings = try settings(experiment)
        if let steps = options.steps {
            guard (1...settings.timesteps).contains(steps) else {
                throw TrainingError("--steps \(steps): must be 1…\(settings.timesteps) (the experiment's diffusion.timesteps)")
            }
            if !(options.sampler ?? settings.sampling.sampler).takesSteps && steps != settings.timesteps {
                throw TrainingError("--steps \(steps): the ddpm sampler runs all \(settings.timesteps) steps; use --sampler ddpm_respaced, ddim or dpmpp_2m for fewer")
            }
        }
        if let eta = options.eta, !(eta >= 0 && eta <= 1) {
            throw TrainingError("--eta \(eta): must be between 0 (deterministic DDIM) and 1 (as noisy as ancestral sampling)")
        }
        if let sampler = options.sampler { settings.sampling.sampler = sampler }
        if let steps = options.steps, settings.sampling.sampler.takesSteps { settings.sampling.steps = steps }
        if let spacing = options.spacing { settings.sampling.spacing = spacing }
        if let eta = options.eta { settings.sampling.eta = eta }
        return settings
    }

    /// Writes `sample_NNNN.png` per sample and `grid.png`; returns the files.
    public static func sample(_ experiment: Experiment, checkpoint: URL, options: SampleOptions, output: URL, verbose: Bool) throws -> [URL] {
        Runtime.configureThreads(experiment.threads)
        var settings = try samplingSettings(experiment, options: options)
        if settings.degradation != nil {
            throw TrainingError("\(experiment.source.path) is an image-conditioned restoration model (diffusion.condition: image); it restores images: use workbench restore")
        }
        let classCount = settings.model.numClasses
        if classCount == nil, options.classChoice != nil || options.guidanceScale != nil {
            let flag = options.classChoice == nil ? "--guidance-scale" : (options.classChoice == .all ? "--classes" : "--class")
            throw TrainingError("\(flag) needs a class-conditional model, but \(experiment.source.path) has no model.num_classes (its checkpoint is unconditional)")
        }
        if case .one(let chosen) = options.classChoice, let classCount, !(0..<classCount).contains(chosen) {
            throw TrainingError("--class \(chosen): the model has \(classCount) classes (0…\(classCount - 1))")
        }
        if let scale = options.guidanceScale {
            guard scale >= 0 && scale <= 100 else { throw TrainingError("--guidance-scale \(scale): must be between 0 (plain conditional sampling) and 100") }
            settings.sampling.guidanceScale = scale
        }
        var classes: [Int]?
        var count = options.count, columns: Int?
        switch options.classChoice {
        case .one(let chosen): classes = Array(repeating: chosen, count: count)
        case .all:
            classes = (0..<classCount!).flatMap { Array(repeating: $0, count: options.count) }
            count = classes!.count
            columns = options.count
        case nil:
            // A class-conditional model without a choice samples the classes in turn.
            classes = classCount.map { k in (0..<count).map { $0 % k } }
        }
        let network = try loadNetwork(settings, checkpoint: checkpoint)
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        var bar: ProgressBar?
        let began = Date()
        let images = DiffusionTask.sampleImages(network, diffusion: settings.makeDiffusion(), settings: settings, seed: options.seed,
                                                count: count, classes: classes) { done, total in
            // done/total count image × step network evaluations.
            guard verbose else { return }
            if bar == nil { bar = ProgressBar(label: "sample \(settings.sampling.sampler.rawValue)", total: total, unit: "img·step", started: began) }
            bar?.update(done)
        }
        var files: [URL] = []
        for (index, image) in images.enumerated() {
            let url = output.appendingPathComponent(String(format: "sample_%04d.png", index))
            try PNG.write(image, to: url)
            files.append(url)
        }
        if let classes {
            // What eval-samples checks the samples against.
            let url = output.appendingPathComponent("classes.txt")
            try AtomicFile.write(Data(classes.map(String.init).joined(separator: "\n").appending("\n").utf8), to: url)
            files.append(url)
        }
        let grid = output.appendingPathComponent("grid.png")
        try PNG.write(Image.grid(images, columns: columns ?? Int(Double(images.count).squareRoot().rounded(.up)), padding: 2), to: grid)
        return files + [grid]
    }

    /// `workbench restore`: each input is resized to the model's size (bicubic), restored with the
    /// experiment's sampler, and the restoration resized back to the input's size. With `degrade`
    /// the inputs are clean images that the experiment's degradation spoils first (seeded), and the
    /// side-by-side panel shows degraded | restored | clean; otherwise degraded | restored.
    /// Writes `<name>_restored.png` and `<name>_panel.png` per input; returns the files.
    public static func restore(_ experiment: Experiment, checkpoint: URL, inputs: [URL], degrade: Bool, options: SampleOptions,
                               output: URL, verbose: Bool) throws -> [URL] {
        Runtime.configureThreads(experiment.threads)
        let settings = try samplingSettings(experiment, options: options)
        guard let degradation = settings.degradation else {
            throw TrainingError("\(experiment.source.path) is not a restoration model (no diffusion.condition: image); use workbench sample to draw images")
        }
        guard !inputs.isEmpty else { throw TrainingError("give at least one image to restore") }
        let network = try loadNetwork(settings, checkpoint: checkpoint)
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let size = settings.data.imageSize, channels = settings.data.channels
        var files: [URL] = []
        var bar: ProgressBar?
        let began = Date()
        for (index, input) in inputs.enumerated() {
            var image = try ImageFile.read(input)
            image = channels == 1 ? image.gray() : image.rgb()
            let original = (width: image.width, height: image.height)
            var shown = image.resized(width: size, height: size, filter: .bicubic), clean: Image?
            var condition = shown
            if degrade {
                clean = shown
                condition = try degradation.apply(shown, generator: RandomGenerator(seed: options.seed, purpose: "restore/degrade/\(index)"))
                shown = degradation.shown(shown, condition: condition)
            }
            var y = Tensor(uninitializedShape: [1, channels, size, size])
            condition.writeSigned(into: y.mutablePointer())
            let restored = DiffusionTask.sampleImages(network, diffusion: settings.makeDiffusion(), settings: settings, seed: options.seed &+ UInt64(index),
                                                      count: 1, conditions: y)[0]
            let name = input.deletingPathExtension().lastPathComponent
            let restoredURL = output.appendingPathComponent("\(name)_restored.png")
            try PNG.write(restored.resized(width: original.width, height: original.height, filter: .bicubic), to: restoredURL)
            let panel = Image.grid([shown, restored] + (clean.map { [$0] } ?? []), columns: 3, padding: 2)
            let panelURL = output.appendingPathComponent("\(name)_panel.png")
            try PNG.write(panel.width < 256 ? panel.resized(width: panel.width * 4, height: panel.height * 4, filter: .nearest) : panel, to: panelURL)
            files += [restoredURL, panelURL]
            if verbose {
                if bar == nil { bar = ProgressBar(label: "restore", total: inputs.count, unit: "img", started: began) }
                bar?.update(index + 1)
            }
        }
        return files
    }

    /// The evaluation as JSON (written to `output` when given) and as a table for people.
    public static func write(_ metrics: [(name: String, value: Double)], experiment: Experiment, checkpoint: URL,
                             output: URL?) throws -> (json: Data, table: String) {
        let settings = try settings(experiment)
        var object: [String: Any] = ["checkpoint": checkpoint.path, "split": "test"]
        for (name, value) in metrics { object[name] = value }
        object["images"] = settings.evalImages
        object["bound_timesteps"] = settings.boundTimesteps ?? settings.timesteps
        object["bound_estimator"] = (settings.boundTimesteps ?? settings.timesteps) >= settings.timesteps - 1
            ? "all T terms" : "prior + decoder (t=0) + stratified sample of t>=1 weighted by stratum size (unbiased)"
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        if let output { try AtomicFile.write(data, to: output) }
        let table = metrics.map { "\($0.name.padding(toLength: 14, withPad: " ", startingAt: 0)) \(String(format: "%.5f", $0.value))" }
        return (data, table.joined(separator: "\n"))
    }

    /// The test-set bound in bits/dim and the simple loss.
    public static func evaluate(_ experiment: Experiment, checkpoint: URL, verbose: Bool) throws -> [(name: String, value: Double)] {
        Runtime.configureThreads(experiment.threads)
        let settings = try settings(experiment)
        let network = try loadNetwork(settings, checkpoint: checkpoint)
        let source = try settings.data.source(split: "test")
        var bar: ProgressBar?
        let began = Date()
        return try DiffusionTask.evaluate(network, diffusion: settings.makeDiffusion(), source: source, settings: settings,
                                          seed: experiment.seed) { done, total in
            guard verbose else { return }
            if bar == nil { bar = ProgressBar(label: "eval bound", total: total, unit: "img", started: began) }
            bar?.update(done)
        }
    }
}
