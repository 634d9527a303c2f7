import Foundation
import NN
import Segmentation
import Tensor

/// A parsed, validated experiment file.
public struct Experiment {
    /// What the experiment trains.
    public enum Task: String, CaseIterable, Sendable { case segmentation }

    public enum Head {
        case segmentation(SegmentationSettings)
    }

    /// A synthetic VOC-format data set generated into `data.root` when it is missing.
    public struct SyntheticData: Equatable, Sendable {
        public var count: Int
        public var seed: UInt64
    }

    public var source: URL
    public var name: String
    public var seed: UInt64
    /// Threads for kernels and OpenBLAS (0: every core).
    public var threads: Int
    public var head: Head
    public var synthetic: SyntheticData?
    public var evalSplit: String
    public var evalBatchSize: Int
    /// Every key with its effective value, as YAML.
    public var resolvedYAML: String

    public var task: Task {
        switch head {
        case .segmentation: return .segmentation
        }
    }

    /// 64-bit FNV-1a of the resolved YAML, in hex: equal hashes mean equal settings.
    public var configHash: String { String(format: "%016llx", RandomGenerator.stableHash(resolvedYAML)) }

    public var training: TrainingSettings {
        switch head {
        case .segmentation(let settings): return settings.training
        }
    }

    public var dataRoot: URL {
        switch head {
        case .segmentation(let settings): return settings.data.root
        }
    }

    /// Loads, applies `--set` overrides, decodes and validates. With `checkData`, a missing data
    /// folder is an error (unless the file asks for synthetic data).
    public static func load(_ url: URL, overrides: [String] = [], checkData: Bool = true) throws -> Experiment {
        let reader = try ConfigReader(contentsOf: url, overrides: overrides)
        return try decode(reader, source: url, checkData: checkData)
    }

    public static func decode(_ reader: ConfigReader, source: URL, checkData: Bool) throws -> Experiment {
        let top = try reader.top()
        let name = try top.string("name", default: source.deletingPathExtension().lastPathComponent)
        let task = try top.choice("task", default: Task.segmentation)
        let seed = try top.int("seed", default: 0, min: 0)
        let threads = try top.int("threads", default: 0, min: 0)

        let data = try top.section("data")
        guard let rootText = try data.optionalString("root") else {
            throw data.error("root", "is required: the folder holding the data (for VOC2007, the folder with JPEGImages/)")
        }
        let root = URL(fileURLWithPath: (rootText as NSString).expandingTildeInPath)
        let imageSize = try data.int("image_size", default: 256, min: 32)
        let syntheticSection = try data.section("synthetic")
        let syntheticCount = try syntheticSection.optionalInt("count", min: 1)
        let syntheticSeed = try syntheticSection.int("seed", default: 0, min: 0)
        try syntheticSection.finish()
        let synthetic = syntheticCount.map { SyntheticData(count: $0, seed: UInt64(syntheticSeed)) }

        let model = try top.section("model")
        let train = try top.section("train")
        let evaluation = try top.section("eval")

        var head: Head
        var evalSplit = "all"
        switch task {
        case .segmentation:
            var dataSettings = SegmentationDataSettings(root: root)
            dataSettings.imageSize = imageSize
            guard imageSize % 16 == 0 else {
                throw data.error("image_size", "must be a multiple of 16 for the 4-level U-Net (each level halves it), found \(imageSize)")
            }
            dataSettings.trainSplit = try data.string("train_split", default: "all")
            dataSettings.valSplit = try data.optionalString("val_split")
            dataSettings.flip = try data.bool("flip", default: false)
            dataSettings.minScale = try data.double("min_scale", default: 1, min: 0.1, max: 4)
            dataSettings.maxScale = try data.double("max_scale", default: 1, min: 0.1, max: 4)
            guard dataSettings.maxScale >= dataSettings.minScale else {
                throw data.error("max_scale", "must be at least data.min_scale (\(dataSettings.minScale))")
            }
            dataSettings.prefetchBatches = try data.int("prefetch_batches", default: 2, min: 0)
            var settings = SegmentationSettings(data: dataSettings)
            settings.model.baseChannels = try model.int("base_channels", default: 64, min: 1)
            settings.model.inChannels = try model.int("in_channels", default: 3, min: 1)
            settings.model.dropout = try model.double("dropout", default: 0.3, min: 0, max: 0.99)
            let segmentation = try top.section("segmentation")
            settings.target = try segmentation.choice("target", default: TargetFormulation.seed)
            settings.classCount = try segmentation.int("classes", default: 21, min: 2, max: 255)
            try segmentation.finish()
            settings.training = try decodeTraining(train)
            evalSplit = try evaluation.string("split", default: dataSettings.valSplit ?? dataSettings.trainSplit)
            head = .segmentation(settings)
        }
        let evalBatchSize = try evaluation.int("batch_size", default: 1, min: 1)
        for section in [data, model, train, evaluation, top] { try section.finish() }

        if checkData && synthetic == nil {
            var isFolder: ObjCBool = false
            if !FileManager.default.fileExists(atPath: root.path, isDirectory: &isFolder) || !isFolder.boolValue {
                throw data.error("root", "no data folder at \(root.path); point it at your data, e.g. --set data.root=/path/to/VOC2007")
            }
        }
        return Experiment(source: source, name: name, seed: UInt64(seed), threads: threads, head: head, synthetic: synthetic,
                          evalSplit: evalSplit, evalBatchSize: evalBatchSize, resolvedYAML: reader.resolvedYAML)
    }

    static func decodeTraining(_ train: ConfigSection) throws -> TrainingSettings {
        var settings = TrainingSettings()
        settings.batchSize = try train.int("batch_size", default: 4, min: 1)
        settings.epochs = try train.optionalInt("epochs", default: 50, min: 1)
        settings.maxSteps = try train.optionalInt("max_steps", min: 1)
        settings.maxMinutes = try train.optionalDouble("max_minutes", min: 0, exclusiveMin: true)
        if settings.epochs == nil && settings.maxSteps == nil && settings.maxMinutes == nil {
            throw train.error("epochs", "the run needs a budget: set train.epochs, train.max_steps or train.max_minutes")
        }
        var optimizer = OptimizerSettings()
        optimizer.kind = try train.choice("optimizer", default: OptimizerSettings.Kind.adam)
        optimizer.learningRate = try train.double("lr", default: 1e-4, min: 0, exclusiveMin: true)
        optimizer.beta1 = try train.double("beta1", default: 0.9, min: 0, max: 0.999999)
        optimizer.beta2 = try train.double("beta2", default: 0.999, min: 0, max: 0.999999)
        optimizer.eps = try train.double("eps", default: 1e-8, min: 0)
        optimizer.weightDecay = try train.double("weight_decay", default: optimizer.kind == .adamw ? 0.01 : 0, min: 0)
        optimizer.momentum = try train.double("momentum", default: 0, min: 0, max: 1)
        optimizer.nesterov = try train.bool("nesterov", default: false)
        settings.optimizer = optimizer
        settings.warmupSteps = try train.int("warmup_steps", default: 0, min: 0)
        settings.gradClipNorm = try train.optionalDouble("grad_clip", min: 0, exclusiveMin: true)
        settings.checkpointEveryEpochs = try train.optionalInt("checkpoint_every_epochs", default: 5, min: 1)
        settings.checkpointEverySteps = try train.optionalInt("checkpoint_every_steps", min: 1)
        settings.evalEveryEpochs = try train.optionalInt("eval_every_epochs", default: 1, min: 1)
        settings.evalEverySteps = try train.optionalInt("eval_every_steps", min: 1)
        settings.logEverySteps = try train.int("log_every_steps", default: 10, min: 1)
        return settings
    }

    /// The model the experiment describes, initialised from its seed.
    public func makeModel() -> Module {
        switch head {
        case .segmentation(let settings):
            let model = settings.makeModel()
            model.initialize(generator: RandomGenerator(seed: seed, purpose: "init"))
            return model
        }
    }
}
