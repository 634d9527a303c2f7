import Foundation
import Tensor

/// The network as the diffusion math sees it: a function of (x_t as Float32, 0-based timesteps).
public typealias DenoiseFunction = (Tensor, [Int]) -> Tensor

/// A reverse-process sampler; swappable, and independent of the network's type.
public protocol Sampler {
    var name: String { get }
    /// Network evaluations per sample.
    var evaluations: Int { get }
    /// Draws samples of `shape` starting from x_T ~ N(0, I). Every random draw comes from
    /// `seed` and the step index, so the same seed gives the same images.
    func sample(_ diffusion: GaussianDiffusion, shape: [Int], seed: UInt64, model: DenoiseFunction,
                progress: ((Int, Int) -> Void)?) -> DoubleBatch
}

func standardNormal(_ shape: [Int], seed: UInt64, purpose: String) -> DoubleBatch {
    DoubleBatch(RandomGenerator(seed: seed, purpose: purpose).normal(shape))
}

/// Algorithm 2 of Ho et al.: x_{t-1} ~ p(x_{t-1} | x_t) for t = T-1 … 0, with the experiment's
/// variance type (fixed small, fixed large or learned).
public struct AncestralSampler: Sampler {
    public var clipDenoised: Bool
    public init(clipDenoised: Bool = true) { self.clipDenoised = clipDenoised }

    public var name: String { "ddpm" }
    public var evaluations: Int { 0 }

    public func sample(_ diffusion: GaussianDiffusion, shape: [Int], seed: UInt64, model: DenoiseFunction,
                       progress: ((Int, Int) -> Void)?) -> DoubleBatch {
        var x = standardNormal(shape, seed: seed, purpose: "sample/x_T")
        let total = diffusion.timesteps
        for (done, t) in (0..<total).reversed().enumerated() {
            let steps = Array(repeating: t, count: shape[0])
            let output = DoubleBatch(model(x.tensor, steps))
            let noise = t > 0 ? standardNormal(shape, seed: seed, purpose: "sample/step\(t)") : DoubleBatch(zeros: shape)
            x = diffusion.pSample(output, xt: x, t: steps, noise: noise, clipDenoised: clipDenoised).sample
            progress?(done + 1, total)
        }
        return x
    }
}

/// DDIM (Song et al. 2021, eq. 12): deterministic for η = 0, ancestral-like for η = 1, on an
/// evenly spaced subsequence of `steps` timesteps ending at t = 0.
public struct DDIMSampler: Sampler {
    public var steps: Int
    public var eta: Double
    public var clipDenoised: Bool

    public init(steps: Int, eta: Double = 0, clipDenoised: Bool = true) {
        self.steps = steps
        self.eta = eta
        self.clipDenoised = clipDenoised
    }

    public var name: String { "ddim" }
    public var evaluations: Int { steps }

    /// The timesteps visited, from T-1 down to 0 (evenly spaced, as improved-diffusion's respacing).
    public static func timesteps(_ steps: Int, of total: Int) -> [Int] {
        let count = max(1, min(steps, total))
        if count == 1 { return [total - 1] }
        let values = (0..<count).map { Int((Double($0) * Double(total - 1) / Double(count - 1)).rounded()) }
        return Array(Set(values)).sorted(by: >)
    }

    public func sample(_ diffusion: GaussianDiffusion, shape: [Int], seed: UInt64, model: DenoiseFunction,
                       progress: ((Int, Int) -> Void)?) -> DoubleBatch {
        var x = standardNormal(shape, seed: seed, purpose: "sample/x_T")
        let sequence = DDIMSampler.timesteps(steps, of: diffusion.timesteps)
        for (index, t) in sequence.enumerated() {
            let previous = index + 1 < sequence.count ? sequence[index + 1] : -1
            let ts = Array(repeating: t, count: shape[0])
            let output = DoubleBatch(model(x.tensor, ts))
            let noise = eta > 0 && t > 0 ? standardNormal(shape, seed: seed, purpose: "sample/step\(t)") : DoubleBatch(zeros: shape)
            x = diffusion.ddimStep(output, xt: x, t: ts, tPrev: Array(repeating: previous, count: shape[0]), eta: eta,
                                   noise: noise, clipDenoised: clipDenoised).sample
            progress?(index + 1, sequence.count)
        }
        return x
    }
}

extension GaussianDiffusion {
    /// The bound in bits/dim per example: L_T (prior) + Σ_t L_t. With `subsample` K < T, the
    /// terms for t ≥ 1 are estimated by stratified sampling: T-1 timesteps split into K strata of
    /// near-equal size, one uniformly drawn t per stratum weighted by the stratum's size, which is
    /// unbiased; the decoder term (t = 0) and the prior are always exact.
    public func bitsPerDim(_ x0: DoubleBatch, seed: UInt64, subsample: Int?, model: DenoiseFunction,
                           progress: ((Int, Int) -> Void)? = nil) -> (total: [Double], prior: [Double], decoder: [Double]) {
        let batch = x0.batch
        var chosen: [(t: Int, weight: Double)] = [(0, 1)]
        let rest = timesteps - 1
        let strata = min(subsample ?? rest, rest)
        if strata >= rest {
            chosen += (1...rest).map { ($0, 1) }
        } else {
            let random = RandomGenerator(seed: seed, purpose: "bound/timesteps")
            for k in 0..<strata {
                let lower = 1 + k * rest / strata, upper = 1 + (k + 1) * rest / strata
                chosen.append((lower + random.nextInt(below: upper - lower), Double(upper - lower)))
            }
        }
        var total = priorBitsPerDim(x0)
        let prior = total
        var decoder = [Double](repeating: 0, count: batch)
        for (index, (t, weight)) in chosen.enumerated() {
            let ts = Array(repeating: t, count: batch)
            let noise = standardNormal(x0.shape, seed: seed, purpose: "bound/noise\(t)")
            let xt = qSample(x0, t: ts, noise: noise)
            let terms = variationalBoundTerms(DoubleBatch(model(xt.tensor, ts)), x0: x0, xt: xt, t: ts, clipDenoised: false).output
            for b in 0..<batch {
                total[b] += weight * terms[b]
                if t == 0 { decoder[b] = terms[b] }
            }
            progress?(index + 1, chosen.count)
        }
        return (total, prior, decoder)
    }
}
