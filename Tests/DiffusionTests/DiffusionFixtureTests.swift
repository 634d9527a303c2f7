import Diffusion
import Foundation
import Tensor
import TestSupport
import XCTest

/// Every case of Fixtures/ (the DDPM part of the shared fixtures, a float64 port of Ho et al.'s
/// GaussianDiffusion2 plus cosine schedule and DDIM). Tolerances from the fixtures README.
final class DiffusionFixtureTests: XCTestCase {
    let meanTypes: [ModelMeanType] = [.eps, .xstart, .xprev]
    let varianceTypes: [ModelVarianceType] = [.fixedsmall, .fixedlarge, .learned]

    func betas(_ name: String) -> [Double] {
        GaussianDiffusion.betas(name == "linear" ? .linear : .cosine, timesteps: 1000)
    }

    /// |a - b| <= tolerance · max|b| (the README's "norm. err").
    func expect(_ actual: [Double], _ fixture: Fixture, _ key: String, tolerance: Double = 1e-10,
                file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try fixture.doubles(key)
        let scale = max(expected.map(abs).max() ?? 0, 1e-300)
        if let problem = mismatch(actual, expected, rtol: 0, atol: tolerance * scale) {
            XCTFail("\(fixture.path) \(key): \(problem)", file: file, line: line)
        }
    }

    func batch(_ fixture: Fixture, _ key: String) throws -> DoubleBatch {
        DoubleBatch(shape: fixture.file[key]!.shape, values: try fixture.doubles(key))
    }

    func testSchedules() throws {
        for name in ["linear", "cosine"] {
            let f = try Fixture("schedule_\(name).safetensors")
            let d = GaussianDiffusion(betas: betas(name))
            let tables: [(String, [Double])] = [
                ("betas", d.betas), ("alphas", d.alphas), ("alphas_cumprod", d.alphasCumprod), ("alphas_cumprod_prev", d.alphasCumprodPrev),
                ("sqrt_alphas_cumprod", d.sqrtAlphasCumprod), ("sqrt_one_minus_alphas_cumprod", d.sqrtOneMinusAlphasCumprod),
                ("log_one_minus_alphas_cumprod", d.logOneMinusAlphasCumprod), ("sqrt_recip_alphas_cumprod", d.sqrtRecipAlphasCumprod),
                ("sqrt_recipm1_alphas_cumprod", d.sqrtRecipm1AlphasCumprod), ("posterior_variance", d.posteriorVariance),
                ("posterior_log_variance_clipped", d.posteriorLogVarianceClipped), ("posterior_mean_coef1", d.posteriorMeanCoef1),
                ("posterior_mean_coef2", d.posteriorMeanCoef2), ("fixedlarge_variance", d.fixedLargeVariance),
                ("fixedlarge_log_variance", d.fixedLargeLogVariance),
            ]
            XCTAssertEqual(tables.count, f.keys.count)
            for (key, values) in tables {
                if let problem = mismatch(values, try f.doubles(key), rtol: 1e-11, atol: 1e-300) { XCTFail("\(name) \(key): \(problem)") }
            }
        }
    }

    func testOps() throws {
        for name in ["linear", "cosine"] {
            let f = try Fixture("ops_\(name).safetensors")
            let t = f.file["t"]!.int64s().map(Int.init)
            let tPrev = f.file["t_prev_strided"]!.int64s().map(Int.init)
            let x0 = try batch(f, "x_start"), noise = try batch(f, "noise"), noiseSample = try batch(f, "noise_sample")
            let output = try batch(f, "model_output"), outputLearned = try batch(f, "model_output_learned")
            let base = GaussianDiffusion(betas: betas(name), meanType: .eps, varianceType: .fixedsmall)

            let q = base.qMeanVariance(x0, t: t)
            try expect(q.mean.values, f, "q_mean")
            try expect(q.variance, f, "q_variance")
            try expect(q.logVariance, f, "q_log_variance")
            let xt = base.qSample(x0, t: t, noise: noise)
            try expect(xt.values, f, "x_t")
            let posterior = base.qPosterior(x0: x0, xt: xt, t: t)
            try expect(posterior.mean.values, f, "posterior_mean")
            try expect(posterior.variance, f, "posterior_variance")
            try expect(posterior.logVarianceClipped, f, "posterior_log_variance_clipped")
            try expect(base.priorBitsPerDim(x0), f, "prior_bpd", tolerance: 1e-7)

            for meanType in meanTypes {
                for varianceType in varianceTypes {
                    let d = GaussianDiffusion(betas: betas(name), meanType: meanType, varianceType: varianceType)
                    let out = varianceType == .learned ? outputLearned : output
                    for clip in [false, true] {
                        let tag = "clip\(clip ? 1 : 0)"
                        let p = d.pMeanVariance(out, xt: xt, t: t, clipDenoised: clip)
                        try expect(p.mean.values, f, "pmv.\(meanType.rawValue).\(tag).mean")
                        try expect(p.predictedXStart.values, f, "pmv.\(meanType.rawValue).\(tag).pred_xstart")
                        try expect(p.variance.values, f, "pmv.\(varianceType.rawValue).variance")
                        try expect(p.logVariance.values, f, "pmv.\(varianceType.rawValue).log_variance")
                        let vb = d.variationalBoundTerms(out, x0: x0, xt: xt, t: t, clipDenoised: clip)
                        let prefix = "vb.\(meanType.rawValue).\(varianceType.rawValue).\(tag)"
                        // KL values span decades: compare elementwise (README: 1e-8 relative).
                        if let problem = mismatch(vb.kl, try f.doubles("\(prefix).kl"), rtol: 1e-8, atol: 1e-300) { XCTFail("\(prefix).kl: \(problem)") }
                        try expect(vb.decoderNLL, f, "\(prefix).decoder_nll", tolerance: 1e-6)
                        let expectedOutput = try f.doubles("\(prefix).output")
                        for b in 0..<t.count {
                            XCTAssertEqual(vb.output[b], expectedOutput[b], accuracy: (t[b] == 0 ? 1e-6 : 1e-8) * max(abs(expectedOutput[b]), 1e-12), prefix)
                        }
                        let sample = d.pSample(out, xt: xt, t: t, noise: noiseSample, clipDenoised: clip).sample
                        try expect(sample.values, f, "p_sample.\(meanType.rawValue).\(varianceType.rawValue).\(tag)")
                    }
                }
                let d = GaussianDiffusion(betas: betas(name), meanType: meanType, varianceType: .fixedsmall, lossType: .mse)
                try expect(d.trainingLoss(output, x0: x0, t: t, noise: noise).losses, f, "loss_mse.\(meanType.rawValue)")
                for clip in [false, true] {
                    for eta in [0.0, 1.0] {
                        let tag = "clip\(clip ? 1 : 0).eta\(Int(eta))"
                        let step = d.ddimStep(output, xt: xt, t: t, eta: eta, noise: noiseSample, clipDenoised: clip)
                        try expect(step.sample.values, f, "ddim.\(meanType.rawValue).\(tag).sample")
                        try expect(step.eps.values, f, "ddim.\(meanType.rawValue).\(tag).eps")
                        try expect(step.sigma, f, "ddim.eta\(Int(eta)).sigma")
                        let strided = d.ddimStep(output, xt: xt, t: t, tPrev: tPrev, eta: eta, noise: noiseSample, clipDenoised: clip)
                        try expect(strided.sample.values, f, "ddim_strided.\(meanType.rawValue).\(tag).sample")
                        try expect(strided.sigma, f, "ddim_strided.eta\(Int(eta)).sigma")
                    }
                }
            }
        }
    }

    func testPrimitives() throws {
        let f = try Fixture("primitives.safetensors")
        try expect(try f.doubles("cdf.x").map(Likelihood.approxStandardNormalCDF), f, "cdf.approx")
        let (m1, lv1, m2, lv2) = (try f.doubles("normal_kl.mean1"), try f.doubles("normal_kl.logvar1"),
                                  try f.doubles("normal_kl.mean2"), try f.doubles("normal_kl.logvar2"))
        let kl = (0..<m1.count).map { Likelihood.normalKL(mean1: m1[$0], logVariance1: lv1[$0], mean2: m2[$0], logVariance2: lv2[$0]) }
        try expect(kl, f, "normal_kl.kl")
        XCTAssertEqual(kl[0], 0, "identical distributions")
        let (x, means, scales) = (try f.doubles("dgll.x"), try f.doubles("dgll.means"), try f.doubles("dgll.log_scales"))
        let logProbs = (0..<x.count).map { Likelihood.discretizedGaussianLogLikelihood(x: x[$0], mean: means[$0], logScale: scales[$0]) }
        // Element [0, 14] is a cancellation case (cdf+ - cdf- ≈ 4e-12): its exact value is
        // -26.1902561 (50-digit mpmath); numpy's float64 gives -26.1902493 and ours -26.1902625,
        // equally far from the truth. Hence the README's 1e-6 for the decoder terms.
        try expect(logProbs, f, "dgll.log_probs", tolerance: 1e-6)
    }
}
