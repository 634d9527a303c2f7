import Foundation
import ImageIO
import NN

/// The diffusion head's data: images (with classes for class-conditional models).
public typealias DiffusionDataSettings = ImageDataSettings

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
