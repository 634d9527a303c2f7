import Diffusion
import Foundation
import Tensor
import TestSupport
import XCTest

final class DiffusionPropertyTests: XCTestCase {
    let diffusion = GaussianDiffusion(betas: GaussianDiffusion.betas(.linear, timesteps: 1000))
    let random = RandomGenerator(seed: 5, purpose: "diffusion-tests")

    func normal(_ shape: [Int]) -> DoubleBatch { DoubleBatch(random.normal(shape)) }

    /// q(x_t | x_0): the empirical mean and variance of many draws match √ᾱ_t x_0 and 1 - ᾱ_t.
    func testQSampleMoments() {
        let n = 20_000
        for t in [0, 250, 999] {
            let x0 = DoubleBatch(shape: [n, 1], values: Array(repeating: 0.7, count: n))
            let xt = diffusion.qSample(x0, t: Array(repeating: t, count: n), noise: normal([n, 1])).values
            let mean = xt.reduce(0, +) / Double(n)
            let variance = xt.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n)
            XCTAssertEqual(mean, diffusion.sqrtAlphasCumprod[t] * 0.7, accuracy: 4 * (1 - diffusion.alphasCumprod[t]).squareRoot() / Double(n).squareRoot() + 1e-12)
            XCTAssertEqual(variance, 1 - diffusion.alphasCumprod[t], accuracy: 0.05 * (1 - diffusion.alphasCumprod[t]) + 1e-12)
        }
    }

    /// The posterior of a known x_0 matches Bayes' rule for the two Gaussians
    /// q(x_t | x_{t-1}) and q(x_{t-1} | x_0): precision 1/(1-ᾱ_{t-1}) + α_t/β_t.
    func testPosteriorOfKnownXStart() {
        for t in [1, 10, 500, 999] {
            let x0 = 0.3, xt = -0.4
            let (ap, beta, alpha) = (diffusion.alphasCumprodPrev[t], diffusion.betas[t], diffusion.alphas[t])
            let precision = 1 / (1 - ap) + alpha / beta
            let mean = (ap.squareRoot() * x0 / (1 - ap) + alpha.squareRoot() * xt / beta) / precision
            let p = diffusion.qPosterior(x0: DoubleBatch(shape: [1, 1], values: [x0]), xt: DoubleBatch(shape: [1, 1], values: [xt]), t: [t])
            XCTAssertEqual(p.variance[0], 1 / precision, accuracy: 1e-12 * (1 / precision))
            XCTAssertEqual(p.mean.values[0], mean, accuracy: 1e-12)
        }
    }

    /// DDIM with η = 0 adds no noise: different noise gives the same step.
    func testDDIMWithZeroEtaIsDeterministic() {
        let xt = normal([2, 1, 4, 4]), output = normal([2, 1, 4, 4])
        let first = diffusion.ddimStep(output, xt: xt, t: [500, 10], tPrev: [480, -1], eta: 0, noise: normal([2, 1, 4, 4]))
        let second = diffusion.ddimStep(output, xt: xt, t: [500, 10], tPrev: [480, -1], eta: 0, noise: normal([2, 1, 4, 4]))
        XCTAssertEqual(first.sample, second.sample)
        XCTAssertEqual(first.sigma, [0, 0])
    }

    /// DDIM with η = 1 over all T steps is ancestral DDPM: σ² is β̃_t and the step's mean is the
    /// posterior mean of (x̂_0, x_t), so one step has the same distribution as p_sample's.
    func testDDIMWithUnitEtaMatchesAncestralStatistics() {
        let fixedSmall = GaussianDiffusion(betas: diffusion.betas, meanType: .eps, varianceType: .fixedsmall)
        let t = [1, 17, 300, 999]
        let xt = normal([4, 1, 3, 3]), output = normal([4, 1, 3, 3]), zero = DoubleBatch(zeros: [4, 1, 3, 3])
        let ddim = fixedSmall.ddimStep(output, xt: xt, t: t, eta: 1, noise: zero, clipDenoised: false)
        let ancestral = fixedSmall.pSample(output, xt: xt, t: t, noise: zero, clipDenoised: false).sample
        for (index, step) in t.enumerated() {
            XCTAssertEqual(ddim.sigma[index] * ddim.sigma[index], fixedSmall.posteriorVariance[step], accuracy: 1e-12 * fixedSmall.posteriorVariance[step])
        }
        if let problem = mismatch(ddim.sample.values, ancestral.values, rtol: 1e-9, atol: 1e-12) { XCTFail(problem) }
        // And with the same noise, the two samplers take the same step.
        let noise = normal([4, 1, 3, 3])
        let a = fixedSmall.ddimStep(output, xt: xt, t: t, eta: 1, noise: noise, clipDenoised: false).sample
        let b = fixedSmall.pSample(output, xt: xt, t: t, noise: noise, clipDenoised: false).sample
        if let problem = mismatch(a.values, b.values, rtol: 1e-9, atol: 1e-12) { XCTFail(problem) }
    }

    /// The analytic gradient of every training loss matches central differences of the loss.
    func testTrainingLossGradients() {
        let x0 = DoubleBatch(shape: [3, 1, 2, 2], values: [-1, 1, 0.2, -0.5, 0.9, -0.1, 0.3, 1, -1, 0.6, 0.0, -0.8])
        let noise = normal([3, 1, 2, 2])
        let t = [0, 3, 400]
        let cases: [(ModelMeanType, ModelVarianceType, DiffusionLossType)] = [
            (.eps, .fixedlarge, .mse), (.xstart, .fixedsmall, .mse), (.xprev, .fixedsmall, .mse),
            (.eps, .fixedsmall, .kl), (.xstart, .fixedlarge, .kl), (.xprev, .fixedsmall, .kl),
            (.eps, .learned, .kl), (.eps, .learnedRange, .kl), (.eps, .learnedRange, .hybrid), (.xstart, .learned, .hybrid),
        ]
        for (meanType, varianceType, lossType) in cases {
            let d = GaussianDiffusion(betas: GaussianDiffusion.betas(.linear, timesteps: 1000), meanType: meanType,
                                      varianceType: varianceType, lossType: lossType)
            let channels = varianceType.isLearned ? 2 : 1
            var output = DoubleBatch(shape: [3, channels, 2, 2], values: random.normal([3 * channels * 4], std: 0.5).scalars.map(Double.init))
            if varianceType == .learned {
                // Log-variances near the fixed ones, so the bound is well conditioned.
                for b in 0..<3 { for i in 0..<4 { output.values[b * 8 + 4 + i] = d.posteriorLogVarianceClipped[t[b]] + 0.3 * output.values[b * 8 + 4 + i] } }
            }
            let analytic = d.trainingLoss(output, x0: x0, t: t, noise: noise).gradient.values
            var mean: (DoubleBatch) -> Double = { d.trainingLoss($0, x0: x0, t: t, noise: noise).losses.reduce(0, +) / 3 }
            if lossType == .hybrid {
                // The bound term's mean gradient is stopped: differentiate the mse part through the
                // mean channels and the bound through the variance channels only.
                let mseOnly = GaussianDiffusion(betas: d.betas, meanType: meanType, varianceType: varianceType, lossType: .mse)
                let boundOnly = GaussianDiffusion(betas: d.betas, meanType: meanType, varianceType: varianceType, lossType: .kl)
                let baseline = output
                mean = { o in
                    var frozen = o
                    for b in 0..<3 { for i in 0..<4 { frozen.values[b * 8 + i] = baseline.values[b * 8 + i] } }
                    return (mseOnly.trainingLoss(o, x0: x0, t: t, noise: noise).losses.reduce(0, +)
                        + 0.001 * 1000 * boundOnly.trainingLoss(frozen, x0: x0, t: t, noise: noise).losses.reduce(0, +)) / 3
                }
            }
            let numeric = finiteDifferenceGradient(at: output.values, step: 1e-6) { mean(DoubleBatch(shape: output.shape, values: $0)) }
            if let problem = mismatch(analytic, numeric, rtol: 1e-4, atol: 1e-7) {
                XCTFail("\(meanType) \(varianceType) \(lossType): \(problem)")
            }
        }
    }
}
