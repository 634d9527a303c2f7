import Foundation

/// β schedules.
public enum BetaSchedule: String, CaseIterable, Sendable {
    /// Ho et al.: β linear from β_start to β_end (numpy's linspace, last value exact).
    case linear
    /// Nichol & Dhariwal: ᾱ(t) = cos²(((t/T + s)/(1 + s))·π/2), β clipped at 0.999.
    case cosine
    /// √β linear ("quad" in the reference).
    case quad
}

/// What the network predicts.
public enum ModelMeanType: String, CaseIterable, Sendable {
    case eps, xstart, xprev
    /// v = √ᾱ·ε − √(1−ᾱ)·x₀ (Salimans & Ho 2022), so x₀ = √ᾱ·x_t − √(1−ᾱ)·v.
    case v
}

/// The reverse-process variance.
public enum ModelVarianceType: String, CaseIterable, Sendable {
    /// β̃_t (posterior variance, log clipped at t = 0).
    case fixedsmall
    /// β_t (log-variance uses β̃_1 at t = 0, as Ho's code does).
    case fixedlarge
    /// The second half of the output channels is the log-variance (Ho's `learned`).
    case learned
    /// Improved DDPM: the second half v interpolates log β̃_t … log β_t with (v+1)/2.
    case learnedRange = "learned_range"

    public var isLearned: Bool { self == .learned || self == .learnedRange }
}

/// The training objective.
public enum DiffusionLossType: String, CaseIterable, Sendable {
    /// L_simple: mean squared error to the target of the mean type.
    case mse
    /// The variational bound term L_{t-1} (bits/dim), decoder NLL at t = 0.
    case kl
    /// Improved DDPM: mse + λ·T·L_t with the mean's gradient stopped in the bound term.
    case hybrid
}

/// The diffusion process of Ho et al. (the reference `GaussianDiffusion2`), in Float64, separate
/// from any network: the model enters only as its output for (x_t, t). Timesteps are 0-based
/// (t = 0 is the paper's t = 1), as in the reference code.
public struct GaussianDiffusion: Sendable {
    public let meanType: ModelMeanType
    public let varianceType: ModelVarianceType
    public let lossType: DiffusionLossType
    /// γ of min-SNR loss weighting of the MSE term (nil: unweighted, as Ho et al.).
    public let minSNRGamma: Double?

    public let betas: [Double]
    public let alphas: [Double]
    public let alphasCumprod: [Double]
    public let alphasCumprodPrev: [Double]
    public let sqrtAlphasCumprod: [Double]
    public let sqrtOneMinusAlphasCumprod: [Double]
    public let logOneMinusAlphasCumprod: [Double]
    public let sqrtRecipAlphasCumprod: [Double]
    public let sqrtRecipm1AlphasCumprod: [Double]
    public let posteriorVariance: [Double]
    public let posteriorLogVarianceClipped: [Double]
    public let posteriorMeanCoef1: [Double]
    public let posteriorMeanCoef2: [Double]
    public let fixedLargeVariance: [Double]
    public let fixedLargeLogVariance: [Double]

    public var timesteps: Int { betas.count }

    /// β_t for t = 0..<timesteps.
    public static func betas(_ schedule: BetaSchedule, timesteps: Int, start: Double = 1e-4, end: Double = 0.02) -> [Double] {
        func linspace(_ a: Double, _ b: Double) -> [Double] {
            guard timesteps > 1 else { return [a] }
            let step = (b - a) / Double(timesteps - 1)
            var values = (0..<timesteps).map { Double($0) * step + a }
            values[timesteps - 1] = b
            return values
        }
        switch schedule {
        case .linear:
            return linspace(start, end)
        case .quad:
            return linspace(start.squareRoot(), end.squareRoot()).map { $0 * $0 }
        case .cosine:
            let s = 0.008
            func alphaBar(_ t: Double) -> Double { let c = cos((t + s) / (1 + s) * Double.pi / 2); return c * c }
            return (0..<timesteps).map { i in
                min(1 - alphaBar(Double(i + 1) / Double(timesteps)) / alphaBar(Double(i) / Double(timesteps)), 0.999)
            }
        }
    }

    public init(betas: [Double], meanType: ModelMeanType = .eps, varianceType: ModelVarianceType = .fixedlarge,
                lossType: DiffusionLossType = .mse, minSNRGamma: Double? = nil) {
        self.minSNRGamma = minSNRGamma
        precondition(!betas.isEmpty && betas.allSatisfy { $0 > 0 && $0 <= 1 }, "betas must lie in (0, 1]")
        self.meanType = meanType
        self.varianceType = varianceType
        self.lossType = lossType
        self.betas = betas
        alphas = betas.map { 1 - $0 }
        var product = 1.0
        alphasCumprod = alphas.map { product *= $0; return product }
        alphasCumprodPrev = [1] + alphasCumprod.dropLast()
        sqrtAlphasCumprod = alphasCumprod.map { $0.squareRoot() }
        sqrtOneMinusAlphasCumprod = alphasCumprod.map { (1 - $0).squareRoot() }
        logOneMinusAlphasCumprod = alphasCumprod.map { log(1 - $0) }
        sqrtRecipAlphasCumprod = alphasCumprod.map { (1 / $0).squareRoot() }
        sqrtRecipm1AlphasCumprod = alphasCumprod.map { (1 / $0 - 1).squareRoot() }
        let (b, a, ac, acp) = (betas, alphas, alphasCumprod, alphasCumprodPrev)
        posteriorVariance = (0..<b.count).map { b[$0] * (1 - acp[$0]) / (1 - ac[$0]) }
        let clippedSource = b.count > 1 ? [posteriorVariance[1]] + posteriorVariance.dropFirst() : posteriorVariance
        posteriorLogVarianceClipped = clippedSource.map { log($0) }
        posteriorMeanCoef1 = (0..<b.count).map { b[$0] * acp[$0].squareRoot() / (1 - ac[$0]) }
        posteriorMeanCoef2 = (0..<b.count).map { (1 - acp[$0]) * a[$0].squareRoot() / (1 - ac[$0]) }
        fixedLargeVariance = betas
        fixedLargeLogVariance = ((b.count > 1 ? [posteriorVariance[1]] : []) + betas.dropFirst()).map { log($0) }
    }

    // MARK: Forward process

    /// Mean, variance and log-variance of q(x_t | x_0).
    public func qMeanVariance(_ x0: DoubleBatch, t: [Int]) -> (mean: DoubleBatch, variance: [Double], logVariance: [Double]) {
        let mean = DoubleBatch.make(shape: x0.shape) { b, i in sqrtAlphasCumprod[t[b]] * x0.values[i] }
        return (mean, t.map { 1 - alphasCumprod[$0] }, t.map { logOneMinusAlphasCumprod[$0] })
    }

    /// x_t = √ᾱ_t x_0 + √(1-ᾱ_t) ε.
    public func qSample(_ x0: DoubleBatch, t: [Int], noise: DoubleBatch) -> DoubleBatch {
        DoubleBatch.make(shape: x0.shape) { b, i in
            sqrtAlphasCumprod[t[b]] * x0.values[i] + sqrtOneMinusAlphasCumprod[t[b]] * noise.values[i]
        }
    }

    /// Mean, variance and clipped log-variance of q(x_{t-1} | x_t, x_0).
    public func qPosterior(x0: DoubleBatch, xt: DoubleBatch, t: [Int]) -> (mean: DoubleBatch, variance: [Double], logVarianceClipped: [Double]) {
        let mean = DoubleBatch.make(shape: xt.shape) { b, i in
            posteriorMeanCoef1[t[b]] * x0.values[i] + posteriorMeanCoef2[t[b]] * xt.values[i]
        }
        return (mean, t.map { posteriorVariance[$0] }, t.map { posteriorLogVarianceClipped[$0] })
    }

    public func predictXStart(fromEps eps: DoubleBatch, xt: DoubleBatch, t: [Int]) -> DoubleBatch {
        DoubleBatch.make(shape: xt.shape) { b, i in
            sqrtRecipAlphasCumprod[t[b]] * xt.values[i] - sqrtRecipm1AlphasCumprod[t[b]] * eps.values[i]
        }
    }

    public func predictXStart(fromXPrev xprev: DoubleBatch, xt: DoubleBatch, t: [Int]) -> DoubleBatch {
        DoubleBatch.make(shape: xt.shape) { b, i in
            (1 / posteriorMeanCoef1[t[b]]) * xprev.values[i] - (posteriorMeanCoef2[t[b]] / posteriorMeanCoef1[t[b]]) * xt.values[i]
        }
    }

    public func predictEps(fromXStart x0: DoubleBatch, xt: DoubleBatch, t: [Int]) -> DoubleBatch {
        DoubleBatch.make(shape: xt.shape) { b, i in
            (sqrtRecipAlphasCumprod[t[b]] * xt.values[i] - x0.values[i]) / sqrtRecipm1AlphasCumprod[t[b]]
        }
    }

    // MARK: Reverse process

    /// p(x_{t-1} | x_t) from the model's output.
    public struct Prediction {
        public var mean: DoubleBatch
        public var variance: DoubleBatch
        public var logVariance: DoubleBatch
        public var predictedXStart: DoubleBatch
    }

    /// The model output split into its mean part and (for learned variances) its variance part.
    func split(_ output: DoubleBatch, channels: Int) -> (mean: DoubleBatch, variance: DoubleBatch?) {
        guard varianceType.isLearned else { return (output, nil) }
        precondition(output.shape[1] == 2 * channels, "a learned variance needs 2C output channels, got \(output.shape[1]) for C = \(channels)")
        return (output.channels(0..<channels), output.channels(channels..<(2 * channels)))
    }

    public func pMeanVariance(_ output: DoubleBatch, xt: DoubleBatch, t: [Int], clipDenoised: Bool) -> Prediction {
        let (meanPart, variancePart) = split(output, channels: xt.shape[1])
        let logVariance: DoubleBatch
        switch varianceType {
        case .fixedsmall:
            logVariance = DoubleBatch.make(shape: xt.shape) { b, _ in posteriorLogVarianceClipped[t[b]] }
        case .fixedlarge:
            logVariance = DoubleBatch.make(shape: xt.shape) { b, _ in fixedLargeLogVariance[t[b]] }
        case .learned:
            logVariance = variancePart!
        case .learnedRange:
            logVariance = DoubleBatch.make(shape: xt.shape) { b, i in
                let fraction = (variancePart!.values[i] + 1) / 2
                return fraction * log(betas[t[b]]) + (1 - fraction) * posteriorLogVarianceClipped[t[b]]
            }
        }
        let variance: DoubleBatch
        switch varianceType {
        case .fixedsmall: variance = DoubleBatch.make(shape: xt.shape) { b, _ in posteriorVariance[t[b]] }
        case .fixedlarge: variance = DoubleBatch.make(shape: xt.shape) { b, _ in fixedLargeVariance[t[b]] }
        default: variance = DoubleBatch(shape: xt.shape, values: logVariance.values.map { exp($0) })
        }
        func clip(_ x: DoubleBatch) -> DoubleBatch {
            clipDenoised ? DoubleBatch(shape: x.shape, values: x.values.map { min(max($0, -1), 1) }) : x
        }
        let predicted: DoubleBatch, mean: DoubleBatch
        switch meanType {
        case .xprev:
            predicted = clip(predictXStart(fromXPrev: meanPart, xt: xt, t: t))
            mean = meanPart
        case .xstart:
            predicted = clip(meanPart)
            mean = qPosterior(x0: predicted, xt: xt, t: t).mean
        case .eps:
            predicted = clip(predictXStart(fromEps: meanPart, xt: xt, t: t))
            mean = qPosterior(x0: predicted, xt: xt, t: t).mean
        case .v:
            predicted = clip(DoubleBatch.make(shape: xt.shape) { b, i in
                sqrtAlphasCumprod[t[b]] * xt.values[i] - sqrtOneMinusAlphasCumprod[t[b]] * meanPart.values[i]
            })
            mean = qPosterior(x0: predicted, xt: xt, t: t).mean
        }
        return Prediction(mean: mean, variance: variance, logVariance: logVariance, predictedXStart: predicted)
    }

    /// One ancestral step (Algorithm 2): mean + σ_t z, with no noise at t = 0.
    public func pSample(_ output: DoubleBatch, xt: DoubleBatch, t: [Int], noise: DoubleBatch, clipDenoised: Bool = true)
        -> (sample: DoubleBatch, predictedXStart: DoubleBatch) {
        let p = pMeanVariance(output, xt: xt, t: t, clipDenoised: clipDenoised)
        let sample = DoubleBatch.make(shape: xt.shape) { b, i in
            p.mean.values[i] + (t[b] == 0 ? 0 : exp(0.5 * p.logVariance.values[i]) * noise.values[i])
        }
        return (sample, p.predictedXStart)
    }

    /// One DDIM step x_t → x_{tPrev} (tPrev -1 means ᾱ = 1): σ = η·√((1-ᾱ')/(1-ᾱ))·√(1-ᾱ/ᾱ'),
    /// x' = x̂_0·√ᾱ' + √(1-ᾱ'-σ²)·ε̂ + σ z (no noise at t = 0). ε̂ is re-derived from the (clipped) x̂_0.
    public func ddimStep(_ output: DoubleBatch, xt: DoubleBatch, t: [Int], tPrev: [Int]? = nil, eta: Double,
                         noise: DoubleBatch, clipDenoised: Bool = true) -> (sample: DoubleBatch, eps: DoubleBatch, sigma: [Double]) {
        let predicted = pMeanVariance(output, xt: xt, t: t, clipDenoised: clipDenoised).predictedXStart
        let eps = predictEps(fromXStart: predicted, xt: xt, t: t)
        let previous = (0..<t.count).map { b -> Double in
            guard let tPrev else { return alphasCumprodPrev[t[b]] }
            return tPrev[b] < 0 ? 1 : alphasCumprod[tPrev[b]]
        }
        let sigma = (0..<t.count).map { b -> Double in
            let a = alphasCumprod[t[b]], ap = previous[b]
            return eta * ((1 - ap) / (1 - a)).squareRoot() * (1 - a / ap).squareRoot()
        }
        let sample = DoubleBatch.make(shape: xt.shape) { b, i in
            let ap = previous[b]
            let mean = predicted.values[i] * ap.squareRoot() + (1 - ap - sigma[b] * sigma[b]).squareRoot() * eps.values[i]
            return mean + (t[b] != 0 ? sigma[b] * noise.values[i] : 0)
        }
        return (sample, eps, sigma)
    }
}
