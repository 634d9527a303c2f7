import Foundation
import ImageIO
import NN
import Classification
import Diffusion
import Segmentation
import Tensor

/// A parsed, validated experiment file.
public struct Experiment {
    /// What the experiment trains.
    public enum Task: String, CaseIterable, Sendable { case segmentation, diffusion, classification }

    public enum Head {
        case segmentation(SegmentationSettings)
        case diffusion(DiffusionSettings)
        case classification(ClassifierSettings)
    }

    /// A synthetic VOC-format data set generated into `data.root` when it is missing.
    public struct SyntheticData: Equatable, Sendable {
        public var count: Int
        public var seed: UInt64
        public var options = SyntheticVOC.Options()
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
    public var resolvedYAML: String { resolved.yaml }
    /// Every key with its effective value: the text and the key paths.
    public var resolved: ResolvedConfig

    public var task: Task {
        switch head {
        case .segmentation: return .segmentation
        case .diffusion: return .diffusion
        case .classification: return .classification
        }
    }

    /// 64-bit FNV-1a of the resolved YAML, in hex: equal hashes mean equal settings.
    public var configHash: String { String(format: "%016llx", RandomGenerator.stableHash(resolvedYAML)) }

    public var training: TrainingSettings {
        switch head {
        case .segmentation(let settings): return settings.training
        case .diffusion(let settings): return settings.training
        case .classification(let settings): return settings.training
        }
    }

    public var dataRoot: URL {
        switch head {
        case .segmentation(let settings): return settings.data.root
        case .diffusion(let settings): return settings.data.root
        case .classification(let settings): return settings.data.root
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
        let segmentation = task == .segmentation

        let data = try top.section("data")
        guard let rootText = try data.optionalString("root") else {
            throw data.error("root", "is required: the folder holding the data (VOC: the folder with JPEGImages/; MNIST: the folder with the IDX files)")
        }
        let root = URL(fileURLWithPath: (rootText as NSString).expandingTildeInPath)
        let imageSize = try data.int("image_size", default: segmentation ? 256 : 32, min: segmentation ? 32 : 4)
        let prefetch = try data.int("prefetch_batches", default: 2, min: 0)
        let flip = try data.bool("flip", default: false)
        var synthetic: SyntheticData?
        let model = try top.section("model")
        let baseChannels = try model.int("base_channels", default: segmentation ? 64 : 32, min: 1)
        let dropout = try model.double("dropout", default: segmentation ? 0.3 : 0.1, min: 0, max: 0.99)
        let train = try top.section("train")
        let evaluation = try top.section("eval")

        var head: Head
        var evalSplit = "all"
        var evalBatchSize = 1
        switch task {
        case .segmentation:
            var dataSettings = SegmentationDataSettings(root: root)
            dataSettings.imageSize = imageSize
            guard imageSize % 16 == 0 else {
                throw data.error("image_size", "must be a multiple of 16 for the 4-level U-Net (each level halves it), found \(imageSize)")
            }
            let syntheticSection = try data.section("synthetic")
            let syntheticCount = try syntheticSection.optionalInt("count", min: 1)
            let syntheticSeed = try syntheticSection.int("seed", default: 0, min: 0)
            var syntheticOptions = SyntheticVOC.Options()
            syntheticOptions.classByShape = try syntheticSection.bool("by_shape", default: false)
            syntheticOptions.classes = try syntheticSection.int("classes", default: 3, min: 1, max: SyntheticVOC.shapes.count)
            syntheticOptions.maxObjects = try syntheticSection.int("objects", default: 3, min: 1, max: 64)
            syntheticOptions.minSize = try syntheticSection.double("min_size", default: 0.2, min: 0.01, max: 0.5)
            syntheticOptions.maxSize = try syntheticSection.double("max_size", default: 0.45, min: 0.01, max: 0.5)
            if let problem = syntheticOptions.problem {
                throw syntheticSection.error(syntheticOptions.classByShape ? "classes" : "by_shape", problem.replacingOccurrences(of: "--", with: "data.synthetic."))
            }
            try syntheticSection.finish()
            synthetic = syntheticCount.map { SyntheticData(count: $0, seed: UInt64(syntheticSeed), options: syntheticOptions) }
            dataSettings.trainSplit = try data.string("train_split", default: "all")
            dataSettings.valSplit = try data.optionalString("val_split")
            dataSettings.flip = flip
            dataSettings.minScale = try data.double("min_scale", default: 1, min: 0.1, max: 4)
            dataSettings.maxScale = try data.double("max_scale", default: 1, min: 0.1, max: 4)
            guard dataSettings.maxScale >= dataSettings.minScale else {
                throw data.error("max_scale", "must be at least data.min_scale (\(dataSettings.minScale))")
            }
            dataSettings.labelPadding = try data.choice("label_padding", default: LabelPadding.background)
            dataSettings.prefetchBatches = prefetch
            var settings = SegmentationSettings(data: dataSettings)
            settings.model.baseChannels = baseChannels
            settings.model.inChannels = try model.int("in_channels", default: 3, min: 1)
            settings.model.dropout = dropout
            let section = try top.section("segmentation")
            settings.target = try section.choice("target", default: TargetFormulation.seed)
            settings.classCount = try section.int("classes", default: 21, min: 2, max: 255)
            let defaultNames = settings.classCount == VOCClasses.names.count ? VOCClasses.names : (0..<settings.classCount).map { "class\($0)" }
            settings.classNames = try section.optionalStringList("class_names", default: defaultNames)!
            guard settings.classNames.count == settings.classCount else {
                throw section.error("class_names", "has \(settings.classNames.count) names but segmentation.classes is \(settings.classCount)")
            }
            settings.loss = try decodeLoss(section, target: settings.target, classes: settings.classCount)
            try section.finish()
            settings.training = try decodeTraining(train, defaults: TrainingSettings())
            evalSplit = try evaluation.string("split", default: dataSettings.valSplit ?? dataSettings.trainSplit)
            evalBatchSize = try evaluation.int("batch_size", default: 1, min: 1)
            let tta = try evaluation.section("tta")
            settings.tta.flip = try tta.bool("flip", default: false)
            settings.tta.scales = try tta.optionalDoubleList("scales", default: [1], min: 0, exclusiveMin: true)!
            if settings.tta.scales.isEmpty { throw tta.error("scales", "is empty; give at least one scale such as [1.0]") }
            try tta.finish()
            if settings.target == .seed && !settings.tta.isIdentity {
                throw tta.error("flip", "test-time augmentation averages class probabilities; the seed's RGB target has none (use segmentation.target: onehot)")
            }
            head = .segmentation(settings)
        case .diffusion:
            let numClasses = try model.optionalInt("num_classes", min: 1, max: 100_000)
            let dataSettings = try decodeImageData(data, root: root, imageSize: imageSize, prefetch: prefetch, flip: flip, labelled: numClasses != nil)
            if numClasses != nil && dataSettings.labels == .none {
                throw data.error("labels", "is none, but model.num_classes makes a class-conditional model; use format (MNIST, CIFAR-10) or subfolders (an image folder)")
            }
            var settings = DiffusionSettings(data: dataSettings)
            settings.model.numClasses = numClasses
            settings.model.baseChannels = baseChannels
            settings.model.dropout = dropout
            settings.model.channelMultipliers = try model.intList("channel_multipliers", default: [1, 2, 2, 2], min: 1)
            settings.model.normalization = try model.choice("normalization", default: NormalizationKind.group)
            settings.model.groups = try model.int("groups", default: 8, min: 1)
            settings.model.activation = try model.choice("activation", default: ActivationKind.silu)
            settings.model.attentionResolutions = try model.intList("attention_resolutions", default: [], min: 1)
            let section = try top.section("diffusion")
            settings.timesteps = try section.int("timesteps", default: 1000, min: 2)
            settings.schedule = try section.choice("schedule", default: BetaSchedule.linear)
            settings.betaStart = try section.double("beta_start", default: 1e-4, min: 0, max: 1, exclusiveMin: true)
            settings.betaEnd = try section.double("beta_end", default: 0.02, min: 0, max: 1, exclusiveMin: true)
            settings.meanType = try section.choice("mean_type", default: ModelMeanType.eps)
            settings.varianceType = try section.choice("variance_type", default: ModelVarianceType.fixedlarge)
            settings.lossType = try section.choice("loss", default: DiffusionLossType.mse)
            settings.hybridWeight = try section.double("hybrid_lambda", default: 0.001, min: 0)
            let weighting = try section.choice("loss_weighting", default: LossWeighting.none)
            let gamma = try section.double("min_snr_gamma", default: 5, min: 0, exclusiveMin: true)
            if weighting == .minSNR {
                if settings.meanType == .xprev { throw section.error("loss_weighting", "min_snr weighs ε-, v- or x₀-prediction; mean_type xprev has no such weight") }
                if settings.lossType == .kl { throw section.error("loss_weighting", "min_snr weighs the MSE term; loss kl has none (use mse or hybrid)") }
                settings.minSNRGamma = gamma
            }
            settings.condDropProb = try section.double("cond_drop_prob", default: 0.1, min: 0, max: 1)
            let condition = try section.choice("condition", default: DiffusionCondition.none)
            try section.finish()
            if condition == .image && numClasses != nil {
                throw section.error("condition", "image-conditioned restoration and model.num_classes do not combine; choose one")
            }
            settings.degradation = try parseDegradation(top, imageConditioned: condition == .image, imageSize: imageSize)
            if settings.lossType == .mse && settings.varianceType.isLearned {
                throw section.error("loss", "mse does not train a learned variance; use loss: hybrid (or kl) with variance_type \(settings.varianceType.rawValue)")
            }
            if settings.lossType != .mse && !settings.varianceType.isLearned && settings.lossType == .hybrid {
                throw section.error("loss", "hybrid trains the variance; use variance_type learned_range (or learned)")
            }
            if let problem = settings.predictorSettings.problem() {
                throw model.error(String(problem.key.dropFirst("model.".count)), problem.message)
            }
            var trainingDefaults = TrainingSettings()
            trainingDefaults.batchSize = 64
            trainingDefaults.optimizer.learningRate = 2e-4
            trainingDefaults.epochs = nil
            trainingDefaults.maxSteps = 10_000
            trainingDefaults.gradClipNorm = 1
            trainingDefaults.warmupSteps = 1000
            trainingDefaults.checkpointEveryEpochs = nil
            trainingDefaults.checkpointEverySteps = 1000
            trainingDefaults.evalEveryEpochs = nil
            settings.training = try decodeTraining(train, defaults: trainingDefaults)
            settings.emaDecay = try train.double("ema_decay", default: 0.9999, min: 0, max: 1)
            settings.emaWarmup = try train.bool("ema_warmup", default: true)
            settings.sampleEverySteps = try train.optionalInt("sample_every_steps", min: 1)
            let sample = try top.section("sample")
            settings.sampling.count = try sample.int("count", default: 16, min: 1)
            settings.sampling.sampler = try sample.choice("sampler", default: SamplerKind.ddim)
            settings.sampling.steps = try sample.int("steps", default: 50, min: 1, max: settings.timesteps)
            settings.sampling.spacing = try sample.choice("spacing", default: TimestepSpacing.linspace)
            settings.sampling.eta = try sample.double("eta", default: 0, min: 0, max: 1)
            settings.sampling.clipDenoised = try sample.bool("clip_denoised", default: true)
            settings.sampling.batchSize = try sample.int("batch_size", default: 64, min: 1)
            settings.sampling.guidanceScale = try sample.double("guidance_scale", default: 0, min: 0, max: 100)
            if settings.sampling.guidanceScale != 0 && numClasses == nil {
                throw sample.error("guidance_scale", "classifier-free guidance needs a class-conditional model (model.num_classes)")
            }
            try sample.finish()
            settings.evalImages = try evaluation.int("images", default: 256, min: 1)
            settings.boundTimesteps = try evaluation.optionalInt("bound_timesteps", default: 100, min: 1)
            settings.evalBatchSize = try evaluation.int("batch_size", default: 64, min: 1)
            evalSplit = "test"
            evalBatchSize = settings.evalBatchSize
            head = .diffusion(settings)
        case .classification:
            head = .classification(try decodeClassifier(data: data, model: model, train: train, evaluation: evaluation, root: root,
                                                        imageSize: imageSize, prefetch: prefetch, flip: flip, baseChannels: baseChannels,
                                                        dropout: dropout))
        }
        for section in [data, model, train, evaluation, top] { try section.finish() }
        try checkMemory(head: head, data: data, model: model, train: train)

        if checkData && synthetic == nil {
            var isFolder: ObjCBool = false
            if !FileManager.default.fileExists(atPath: root.path, isDirectory: &isFolder) || !isFolder.boolValue {
                throw data.error("root", "no data folder at \(root.path); point it at your data, e.g. --set data.root=/path/to/VOC2007")
            }
        }
        return Experiment(source: source, name: name, seed: UInt64(seed), threads: threads, head: head, synthetic: synthetic,
                          evalSplit: evalSplit, evalBatchSize: evalBatchSize, resolved: ResolvedConfig(yaml: reader.resolvedYAML))
    }

    static func decodeTraining(_ train: ConfigSection, defaults: TrainingSettings) throws -> TrainingSettings {
        var settings = defaults
        settings.batchSize = try train.int("batch_size", default: defaults.batchSize, min: 1)
        settings.epochs = try train.optionalInt("epochs", default: defaults.epochs, min: 1)
        settings.maxSteps = try train.optionalInt("max_steps", default: defaults.maxSteps, min: 1)
        settings.maxMinutes = try train.optionalDouble("max_minutes", min: 0, exclusiveMin: true)
        if settings.epochs == nil && settings.maxSteps == nil && settings.maxMinutes == nil {
            throw train.error("epochs", "the run needs a budget: set train.epochs, train.max_steps or train.max_minutes")
        }
        var optimizer = OptimizerSettings()
        optimizer.kind = try train.choice("optimizer", default: OptimizerSettings.Kind.adam)
        optimizer.learningRate = try train.double("lr", default: defaults.optimizer.learningRate, min: 0, exclusiveMin: true)
        optimizer.beta1 = try train.double("beta1", default: 0.9, min: 0, max: 0.999999)
        optimizer.beta2 = try train.double("beta2", default: 0.999, min: 0, max: 0.999999)
        optimizer.eps = try train.double("eps", default: 1e-8, min: 0)
        optimizer.weightDecay = try train.double("weight_decay", default: optimizer.kind == .adamw ? 0.01 : 0, min: 0)
        optimizer.momentum = try train.double("momentum", default: 0, min: 0, max: 1)
        optimizer.nesterov = try train.bool("nesterov", default: false)
        settings.optimizer = optimizer
        settings.warmupSteps = try train.int("warmup_steps", default: defaults.warmupSteps, min: 0)
        settings.accumulateSteps = try train.int("accumulate_steps", default: 1, min: 1, max: 4096)
        let schedule = try train.choice("lr_schedule", default: ScheduleKind.constant)
        switch schedule {
        case .constant:
            settings.schedule = .constant
        case .cosine:
            settings.schedule = .cosine(minimum: try train.double("min_lr", default: 0, min: 0))
        case .poly:
            settings.schedule = .poly(power: try train.double("lr_power", default: 0.9, min: 0, exclusiveMin: true),
                                      minimum: try train.double("min_lr", default: 0, min: 0))
        case .step:
            let milestones = try train.intList("lr_milestones", default: [], min: 1)
            if milestones.isEmpty { throw train.error("lr_milestones", "lr_schedule step needs the steps where the rate drops, e.g. [3000, 6000]") }
            if milestones != milestones.sorted() { throw train.error("lr_milestones", "must be increasing, found \(milestones)") }
            settings.schedule = .step(milestones: milestones, gamma: try train.double("lr_gamma", default: 0.1, min: 0, exclusiveMin: true))
        }
        if case .cosine(let minimum) = settings.schedule, minimum > optimizer.learningRate {
            throw train.error("min_lr", "must not exceed train.lr (\(optimizer.learningRate))")
        }
        if settings.schedule.needsTotalSteps && settings.epochs == nil && settings.maxSteps == nil {
            throw train.error("lr_schedule", "\(schedule.rawValue) decays over the whole run, so it needs train.max_steps or train.epochs (a time budget alone has no known length)")
        }
        settings.gradClipNorm = try train.optionalDouble("grad_clip", default: defaults.gradClipNorm, min: 0, exclusiveMin: true)
        settings.checkpointEveryEpochs = try train.optionalInt("checkpoint_every_epochs", default: defaults.checkpointEveryEpochs, min: 1)
        settings.checkpointEverySteps = try train.optionalInt("checkpoint_every_steps", default: defaults.checkpointEverySteps, min: 1)
        settings.evalEveryEpochs = try train.optionalInt("eval_every_epochs", default: defaults.evalEveryEpochs, min: 1)
        settings.evalEverySteps = try train.optionalInt("eval_every_steps", default: defaults.evalEverySteps, min: 1)
        settings.logEverySteps = try train.int("log_every_steps", default: 10, min: 1)
        settings.precision = try train.choice("precision", default: BLAS.Precision.float32)
        return settings
    }

    /// Refuses settings whose training step cannot fit in this machine's memory, before anything
    /// is allocated. The estimate (activations ≈ 48 floats per channel of the widest level and per
    /// pixel per image, plus 16 bytes per parameter for weights, gradients and Adam's moments) is
    /// rough but errs high; it is computed with overflow-checked arithmetic.
    static func checkMemory(head: Head, data: ConfigSection, model: ConfigSection, train: ConfigSection) throws {
        let (imageSize, channels, batch): (Int, Int, Int)
        switch head {
        case .segmentation(let settings):
            (imageSize, channels, batch) = (settings.data.imageSize, settings.model.baseChannels, settings.training.batchSize)
        case .diffusion(let settings):
            (imageSize, channels, batch) = (settings.data.imageSize, settings.model.baseChannels * (settings.model.channelMultipliers.max() ?? 1),
                                            settings.training.batchSize)
        case .classification(let settings):
            (imageSize, channels, batch) = (settings.data.imageSize, settings.featureChannels, settings.training.batchSize)
        }
        func product(_ factors: [Int]) -> Int? {
            factors.reduce(Int?(1)) { total, factor in
                guard let total else { return nil }
                let (value, overflow) = total.multipliedReportingOverflow(by: factor)
                return overflow ? nil : value
            }
        }
        let activations = product([48, 4, channels, imageSize, imageSize, batch])
        let parameters = product([16, 16, 9 * 4, channels, channels])
        let budget = Int(min(ProcessInfo.processInfo.physicalMemory, UInt64(Int.max)))
        let needed = activations.flatMap { a in parameters.flatMap { p in a.addingReportingOverflow(p).overflow ? nil : a + p } }
        guard let needed, needed <= budget else {
            let (section, key) = imageSize > 1024 ? (data, "image_size") : channels > 1024 ? (model, "base_channels") : (train, "batch_size")
            let amount = needed.map { "about \($0 >> 30) GB" } ?? "more memory than can be counted"
            throw section.error(key, "data.image_size \(imageSize), model.base_channels \(channels) and train.batch_size \(batch) need \(amount) for a training step, more than this machine's \(budget >> 30) GB; lower one of them")
        }
    }

    /// The names of `diffusion.loss_weighting`.
    enum LossWeighting: String, CaseIterable { case none, minSNR = "min_snr" }

    /// The names of `train.lr_schedule`.
    enum ScheduleKind: String, CaseIterable { case constant, cosine, poly, step }

    /// The names of the entries of `segmentation.loss`.
    enum LossKind: String, CaseIterable { case ce, bce, dice, focal }

    /// `segmentation.loss`: a list of `{type, weight, …}` terms (default: per-class BCE alone).
    static func decodeLoss(_ section: ConfigSection, target: TargetFormulation, classes: Int) throws -> CombinedPixelLoss {
        let example = "[{type: ce, weight: 1.0}, {type: dice, weight: 3.0}]"
        guard let items = try section.mappingList("loss", example: example) else {
            section.recordResolved("loss", "[{type: bce, weight: 1.0}]")
            return CombinedPixelLoss([(.binaryCrossEntropy(posWeight: nil), 1)])
        }
        var terms: [(loss: PixelLoss, weight: Double)] = []
        for item in items {
            let kind = try item.choice("type", default: LossKind.ce)
            let weight = try item.double("weight", default: 1, min: 0)
            func perClass(_ key: String) throws -> [Float]? {
                guard let values = try item.optionalDoubleList(key, min: 0) else { return nil }
                guard values.count == classes else {
                    throw item.error(key, "has \(values.count) entries but segmentation.classes is \(classes); give one per class")
                }
                return values.map(Float.init)
            }
            let loss: PixelLoss
            switch kind {
            case .ce:
                loss = .crossEntropy(classWeights: try perClass("class_weights"),
                                     labelSmoothing: Float(try item.double("label_smoothing", default: 0, min: 0, max: 1)))
            case .bce:
                loss = .binaryCrossEntropy(posWeight: try perClass("pos_weight"))
            case .dice:
                loss = .dice(smooth: Float(try item.double("smooth", default: 1, min: 0)), eps: 1e-7)
            case .focal:
                loss = .focal(gamma: Float(try item.double("gamma", default: 2, min: 0)),
                              alpha: try item.optionalDouble("alpha", min: 0, max: 1).map(Float.init))
            }
            try item.finish()
            if case .binaryCrossEntropy(let posWeight?) = loss, target == .seed, !posWeight.isEmpty {
                throw item.error("pos_weight", "the seed's target (RGB colours) has no classes to weigh; use segmentation.target: onehot")
            }
            if target == .seed && (kind != .bce || terms.count > 0 || items.count > 1) {
                throw item.error("type", "the seed's target (RGB colours) trains with its own BCE only; use segmentation.target: onehot for \(kind.rawValue)")
            }
            terms.append((loss, weight))
        }
        if terms.allSatisfy({ $0.weight == 0 }) { throw section.error("loss", "every weight is 0; at least one term must count") }
        section.recordList("loss", items)
        return CombinedPixelLoss(terms)
    }

    /// The model the experiment describes, initialised from its seed.
    public func makeModel() -> Module {
        switch head {
        case .segmentation(let settings):
            let model = settings.makeModel()
            model.initialize(generator: RandomGenerator(seed: seed, purpose: "init"))
            return model
        case .diffusion(let settings):
            let model = settings.makeModel()
            model.initialize(generator: RandomGenerator(seed: seed, purpose: "init"))
            return model
        case .classification(let settings):
            let model = Classifier(settings: settings)
            model.initialize(generator: RandomGenerator(seed: seed, purpose: "init"))
            return model
        }
    }
}

extension Experiment {
    /// The `restoration` section: the degradation of an image-conditioned model (nil when it is not one).
    static func parseDegradation(_ top: ConfigSection, imageConditioned: Bool, imageSize: Int) throws -> Degradation? {
        guard imageConditioned else {
            if top.has("restoration") {
                throw (try top.section("restoration")).error("degradation", "the restoration section needs diffusion.condition: image")
            }
            return nil
        }
        let restoration = try top.section("restoration")
        let kind = try restoration.choice("degradation", default: DegradationKind.downsample)
        let noiseSigma = try restoration.double("noise_sigma", default: 0.2, min: 0, max: 1, exclusiveMin: true)
        let scale = try restoration.int("scale", default: 4, min: 2, max: 64)
        let blurSigma = try restoration.double("blur_sigma", default: 1.5, min: 0.1, max: 20)
        let quality = try restoration.int("jpeg_quality", default: 10, min: 1, max: 100)
        let holeMin = try restoration.int("hole_min", default: max(1, imageSize / 4), min: 1, max: imageSize)
        let holeMax = try restoration.int("hole_max", default: max(holeMin, imageSize / 2), min: 1, max: imageSize)
        try restoration.finish()
        switch kind {
        case .noise: return .noise(sigma: noiseSigma)
        case .downsample:
            if imageSize % scale != 0 { throw restoration.error("scale", "data.image_size \(imageSize) is not a multiple of \(scale)") }
            return .downsample(scale: scale)
        case .blur: return .blur(sigma: blurSigma)
        case .jpeg: return .jpeg(quality: quality)
        case .inpaint:
            if holeMax < holeMin { throw restoration.error("hole_max", "must be at least restoration.hole_min (\(holeMin))") }
            return .inpaint(minSize: holeMin, maxSize: holeMax)
        }
    }
}

extension Experiment {
    /// `task: classification`: labelled images (MNIST, CIFAR-10, class sub-folders) and the classifier's shape.
    static func decodeClassifier(data: ConfigSection, model: ConfigSection, train: ConfigSection, evaluation: ConfigSection, root: URL,
                                 imageSize: Int, prefetch: Int, flip: Bool, baseChannels: Int, dropout: Double) throws -> ClassifierSettings {
        let dataSettings = try decodeImageData(data, root: root, imageSize: imageSize, prefetch: prefetch, flip: flip, labelled: true)
        if dataSettings.labels == .none { throw data.error("labels", "a classifier needs labels: format (MNIST, CIFAR-10) or subfolders") }
        if dataSettings.format == .voc { throw data.error("format", "VOC images have no single class; use mnist, cifar10 or folder") }
        var settings = ClassifierSettings(data: dataSettings)
        settings.classCount = try model.int("num_classes", default: 10, min: 2, max: 255)
        settings.baseChannels = baseChannels
        settings.dropout = dropout
        settings.channelMultipliers = try model.intList("channel_multipliers", default: [1, 2, 4], min: 1)
        if imageSize >> (settings.channelMultipliers.count - 1) < 2 {
            throw model.error("channel_multipliers", "\(settings.channelMultipliers.count) levels halve data.image_size \(imageSize) below 2")
        }
        var defaults = TrainingSettings()
        defaults.batchSize = 128
        defaults.optimizer.learningRate = 2e-3
        defaults.epochs = 3
        defaults.checkpointEveryEpochs = 1
        defaults.evalEveryEpochs = 1
        settings.training = try decodeTraining(train, defaults: defaults)
        settings.evalImages = try evaluation.optionalInt("images", min: 1)
        settings.evalBatchSize = try evaluation.int("batch_size", default: 256, min: 1)
        return settings
    }
}

extension Experiment {
    /// The `data` section of the image heads (diffusion, classification). With `labelled`, labels
    /// default to the format's own (sub-folders for a folder of images).
    static func decodeImageData(_ data: ConfigSection, root: URL, imageSize: Int, prefetch: Int, flip: Bool, labelled: Bool) throws -> ImageDataSettings {
        var settings = ImageDataSettings(root: root)
        settings.format = try data.choice("format", default: ImageSourceKind.mnist)
        settings.imageSize = imageSize
        settings.channels = try data.int("channels", default: settings.format == .mnist ? 1 : 3, min: 1, max: 3)
        if settings.format == .mnist && settings.channels != 1 { throw data.error("channels", "MNIST digits have 1 channel") }
        settings.flip = flip
        settings.limit = try data.optionalInt("limit", min: 1)
        settings.prefetchBatches = prefetch
        let labelDefault: ImageLabelKind = labelled ? (settings.format == .folder ? .subfolders : .format) : .none
        settings.labels = try data.choice("labels", default: labelDefault)
        if settings.labels == .format && !(settings.format == .mnist || settings.format == .cifar10) {
            throw data.error("labels", "format labels come with mnist and cifar10 data; a folder of images uses data.labels: subfolders")
        }
        if settings.labels == .subfolders && settings.format != .folder {
            throw data.error("labels", "subfolders needs data.format: folder")
        }
        return settings
    }
}
