import Foundation
import NN

/// Where the training images come from.
public enum ImageSourceKind: String, CaseIterable, Sendable {
    /// A folder with MNIST's IDX files (gzip or raw).
    case mnist
    /// A folder of PNG/JPEG images.
    case folder
    /// A VOC folder: its `JPEGImages/` as unconditional images.
    case voc
    /// CIFAR-10's binary batches (`data_batch_*.bin`, `test_batch.bin`), with labels.
    case cifar10
}

/// Where the class of each image comes from.
public enum ImageLabelKind: String, CaseIterable, Sendable {
    /// No labels (unconditional data).
    case none
    /// The format's own labels: MNIST's label files, CIFAR-10's records.
    case format
    /// An image folder with one sub-folder per class.
    case subfolders
}

public struct DiffusionDataSettings: Sendable, Equatable {
    public var root: URL
    public var format = ImageSourceKind.mnist
    public var imageSize = 32
    public var channels = 1
    /// Random horizontal flips (off for digits).
    public var flip = false
    /// Use only the first N training images.
    public var limit: Int?
    public var labels = ImageLabelKind.none
    public var prefetchBatches = 2

    public init(root: URL) { self.root = root }

    /// The training or test images. MNIST has its own test split; folders are split 95/5 by order.
    public func source(split: String) throws -> ImageSource {
        let limit = split == "train" ? self.limit : nil
        switch format {
        case .mnist:
            return try MNISTSource(folder: root, split: split, imageSize: imageSize, limit: limit, labels: labels != .none)
        case .cifar10:
            return try CIFAR10Source(folder: root, split: split, imageSize: imageSize, channels: channels, limit: limit)
        case .folder, .voc:
            let folder = format == .voc ? root.appendingPathComponent("JPEGImages") : root
            let all = labels == .subfolders
                ? try ImageFolderSource(classFolders: folder, imageSize: imageSize, channels: channels)
                : try ImageFolderSource(folder: folder, imageSize: imageSize, channels: channels)
            // The last 5 % by order is the test split; with class sub-folders (ordered by class) every
            // 20th image instead, so that each class keeps its share.
            let testCount = max(1, all.count / 20)
            let isTest: (Int) -> Bool = labels == .subfolders
                ? { $0 % 20 == 19 || (all.count < 20 && $0 == all.count - 1) } : { $0 >= all.count - testCount }
            let chosen = all.files.indices.filter { (split == "train") != isTest($0) }
            let kept = split == "train" ? Array(chosen.prefix(limit ?? Int.max)) : chosen
            var source = ImageFolderSource(files: kept.map { all.files[$0] }, imageSize: imageSize, channels: channels)
            source.labels = all.labels.map { labels in kept.map { labels[$0] } }
            source.classNames = all.classNames
            return source
        }
    }
}

extension ImageFolderSource {
    init(files: [URL], imageSize: Int, channels: Int) {
        self.files = files
        self.imageSize = imageSize
        self.channels = channels
    }
}

/// The samplers: ancestral over all T steps (`ddpm`), DDIM, DPM-Solver++ (2M), and ancestral on a
/// respaced schedule of `steps` timesteps.
public enum SamplerKind: String, CaseIterable, Sendable {
    case ddpm, ddim
    case dpmpp2m = "dpmpp_2m"
    case ddpmRespaced = "ddpm_respaced"

    /// Whether `steps` chooses how many network evaluations the sampler makes.
    public var takesSteps: Bool { self != .ddpm }
}

public struct SamplingSettings: Sendable, Equatable {
    public var count = 16
    public var sampler = SamplerKind.ddim
    /// Steps of DDIM, DPM-Solver++ and respaced DDPM (DDPM always takes all T).
    public var steps = 50
    /// Where DPM-Solver++ and respaced DDPM place their steps (DDIM spaces evenly, ending at 0).
    public var spacing = TimestepSpacing.linspace
    public var eta = 0.0
    public var clipDenoised = true
    public var batchSize = 64
    /// Classifier-free guidance w: ε̂ = (1 + w)·ε(x, c) − w·ε(x, ∅); 0 is plain conditional sampling.
    public var guidanceScale = 0.0

    public init() {}

    public func makeSampler() -> Sampler {
        switch sampler {
        case .ddpm: return AncestralSampler(clipDenoised: clipDenoised)
        case .ddim: return DDIMSampler(steps: steps, eta: eta, clipDenoised: clipDenoised)
        case .dpmpp2m: return DPMSolverPlusPlusSampler(steps: steps, spacing: spacing)
        case .ddpmRespaced: return RespacedAncestralSampler(steps: steps, spacing: spacing, clipDenoised: clipDenoised)
        }
    }
}

/// Everything the diffusion head needs (no YAML).
public struct DiffusionSettings: Sendable, Equatable {
    public var data: DiffusionDataSettings
    public var model = NoisePredictorSettings()
    public var schedule = BetaSchedule.linear
    public var timesteps = 1000
    public var betaStart = 1e-4
    public var betaEnd = 0.02
    public var meanType = ModelMeanType.eps
    public var varianceType = ModelVarianceType.fixedlarge
    public var lossType = DiffusionLossType.mse
    public var hybridWeight = 0.001
    /// γ of min-SNR weighting of the MSE term (nil: none).
    public var minSNRGamma: Double?
    /// Probability that a training image's class is replaced by the null class ∅ (class-conditional
    /// models), so that one network learns ε(x, c) and ε(x, ∅) for classifier-free guidance.
    public var condDropProb = 0.1
    /// Image-conditioned restoration: what degrades the clean images (nil: an unconditional or
    /// class-conditional generator).
    public var degradation: Degradation?
    public var training = TrainingSettings()
    public var emaDecay = 0.9999
    public var emaWarmup = true
    /// Write a sample grid every N steps (and at every checkpoint).
    public var sampleEverySteps: Int?
    public var sampling = SamplingSettings()
    /// Test images used by evaluation.
    public var evalImages = 256
    /// Timesteps of the bound evaluated per image (nil: all T).
    public var boundTimesteps: Int? = 100
    public var evalBatchSize = 64

    public init(data: DiffusionDataSettings) { self.data = data }

    public func makeDiffusion() -> GaussianDiffusion {
        GaussianDiffusion(betas: GaussianDiffusion.betas(schedule, timesteps: timesteps, start: betaStart, end: betaEnd),
                          meanType: meanType, varianceType: varianceType, lossType: lossType, minSNRGamma: minSNRGamma)
    }

    /// The model's settings with the channel counts the data and variance type imply.
    public var predictorSettings: NoisePredictorSettings {
        var settings = model
        settings.imageSize = data.imageSize
        settings.inChannels = data.channels
        settings.outChannels = varianceType.isLearned ? 2 * data.channels : data.channels
        settings.conditionChannels = degradation == nil ? 0 : data.channels
        return settings
    }

    public func makeModel() -> NoisePredictor { NoisePredictor(settings: predictorSettings) }
}
