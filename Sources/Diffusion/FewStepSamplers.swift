import Foundation
import Tensor

/// How a few-step sampler places its timesteps among the T trained ones (diffusers'
/// `timestep_spacing`, Table 2 of Lin et al. 2023), always in descending order.
public enum TimestepSpacing: String, CaseIterable, Sendable {
    /// Evenly from T−1 down, ending above 0: round(i·(T−1)/n) for i = n … 1.
    case linspace
    /// Multiples of ⌊T/(n+1)⌋: i·⌊T/(n+1)⌋ for i = n … 1.
    case leading
    /// From T−1 down in steps of T/n: round(T − k·T/n) − 1 for k = 0 … n−1 (reaches t = 0 exactly).
    case trailing

    /// `count` timesteps of `total`, as diffusers' DPMSolverMultistepScheduler.set_timesteps gives them
    /// (numpy's round half to even).
    public func timesteps(_ count: Int, of total: Int) -> [Int] {
        let n = max(1, min(count, total))
        switch self {
        case .linspace:
            return (1...n).reversed().map { Int((Double($0) * Double(total - 1) / Double(n)).rounded(.toNearestOrEven)) }
        case .leading:
            let ratio = total / (n + 1)
            return (1...n).reversed().map { $0 * ratio }
        case .trailing:
            let ratio = Double(total) / Double(n)
            return (0..<n).map { Int((Double(total) - Double($0) * ratio).rounded(.toNearestOrEven)) - 1 }
        }
    }
}

/// DPM-Solver++ (2M) of Lu et al. 2022: a second-order multistep solver of the diffusion ODE in the
/// data prediction x̂₀, as diffusers' DPMSolverMultistepScheduler (algorithm "dpmsolver++", order 2,
/// "midpoint" solver, final σ = 0, no thresholding): first order at the first and last step.
/// With λ = log(α/σ), h = λ_next − λ_now and x̂₀ the data prediction (x̂₀ = (x − σ·ε)/α for ε-prediction):
/// x_next = (σ_next/σ_now)·x − α_next·(e^{−h} − 1)·(D₀ + ½·D₁), D₀ = x̂₀, D₁ = (x̂₀ − x̂₀_prev)/r, r = h_prev/h.
public struct DPMSolverPlusPlusSampler: Sampler {
    public var steps: Int
    public var spacing: TimestepSpacing

    public init(steps: Int, spacing: TimestepSpacing = .linspace) {
        self.steps = steps
        self.spacing = spacing
    }

    public var name: String { "dpmpp_2m" }
    public var evaluations: Int { steps }

    public func sample(_ diffusion: GaussianDiffusion, shape: [Int], seed: UInt64, model: DenoiseFunction,
                       progress: ((Int, Int) -> Void)?) -> DoubleBatch {
        solve(diffusion, from: standardNormal(shape, seed: seed, purpose: "sample/x_T"), model: model, progress: progress)
    }

    /// The solver from a given x_T (the fixtures start it from diffusers' own draw).
    public func solve(_ diffusion: GaussianDiffusion, from start: DoubleBatch, model: DenoiseFunction,
                      progress: ((Int, Int) -> Void)? = nil) -> DoubleBatch {
        let timesteps = spacing.timesteps(steps, of: diffusion.timesteps)
        // (α, σ, λ) at each visited timestep, then at the end (σ = 0: the clean image).
        let points: [(alpha: Double, sigma: Double, lambda: Double)] = timesteps.map { t in
            let alpha = diffusion.alphasCumprod[t].squareRoot(), sigma = (1 - diffusion.alphasCumprod[t]).squareRoot()
            return (alpha, sigma, log(alpha) - log(sigma))
        } + [(1, 0, .infinity)]
        var x = start
        var previous: (x0: DoubleBatch, lambda: Double)?
        for (index, t) in timesteps.enumerated() {
            let now = points[index], next = points[index + 1]
            let ts = Array(repeating: t, count: start.batch)
            // The data prediction x̂₀, whatever the network predicts (ε, x₀, x_{t−1} or v), unclipped.
            let x0 = diffusion.pMeanVariance(DoubleBatch(model(x.tensor, ts)), xt: x, t: ts, clipDenoised: false).predictedXStart
            let h = next.lambda - now.lambda
            let decay = exp(-h) - 1
            let ratio = next.sigma / now.sigma
            if let previous, index < timesteps.count - 1 {
                let r = (now.lambda - previous.lambda) / h
                x = DoubleBatch.make(shape: x.shape) { _, i in
                    let d1 = (x0.values[i] - previous.x0.values[i]) / r
                    return ratio * x.values[i] - next.alpha * decay * x0.values[i] - 0.5 * next.alpha * decay * d1
                }
            } else {
                x = DoubleBatch.make(shape: x.shape) { _, i in ratio * x.values[i] - next.alpha * decay * x0.values[i] }
            }
            previous = (x0, now.lambda)
            progress?(index + 1, timesteps.count)
        }
        return x
    }
}

/// Ancestral sampling (Algorithm 2) on a respaced schedule, as improved-diffusion's
/// `timestep_respacing` and diffusers' DDPMScheduler with fewer inference steps: the kept
/// timesteps t₁ < … < t_n get βᵢ = 1 − ᾱ(tᵢ)/ᾱ(tᵢ₋₁), and the network is asked at the original tᵢ.
public struct RespacedAncestralSampler: Sampler {
    public var steps: Int
    public var spacing: TimestepSpacing
    public var clipDenoised: Bool

    public init(steps: Int, spacing: TimestepSpacing = .linspace, clipDenoised: Bool = true) {
        self.steps = steps
        self.spacing = spacing
        self.clipDenoised = clipDenoised
    }

    public var name: String { "ddpm_respaced" }
    public var evaluations: Int { steps }

    /// The respaced process and the original timestep of each of its steps.
    public func respaced(_ diffusion: GaussianDiffusion) -> (diffusion: GaussianDiffusion, timesteps: [Int]) {
        let kept = spacing.timesteps(steps, of: diffusion.timesteps).sorted()
        var previous = 1.0
        let betas = kept.map { t -> Double in
            defer { previous = diffusion.alphasCumprod[t] }
            return 1 - diffusion.alphasCumprod[t] / previous
        }
        return (GaussianDiffusion(betas: betas, meanType: diffusion.meanType, varianceType: diffusion.varianceType,
                                  lossType: diffusion.lossType), kept)
    }

    public func sample(_ diffusion: GaussianDiffusion, shape: [Int], seed: UInt64, model: DenoiseFunction,
                       progress: ((Int, Int) -> Void)?) -> DoubleBatch {
        let (spaced, kept) = respaced(diffusion)
        let original: DenoiseFunction = { x, indices in model(x, indices.map { kept[$0] }) }
        return AncestralSampler(clipDenoised: clipDenoised).sample(spaced, shape: shape, seed: seed, model: original, progress: progress)
    }
}
