import Diffusion
import Foundation
import Tensor
import TestSupport
import XCTest

/// DPM-Solver++ (2M), the timestep spacings and respaced ancestral sampling against diffusers'
/// schedulers (Fixtures/samplers.safetensors, made by scripts/fixtures/gen_samplers.py, a copy of which
/// is in ../shared/fixtures/tools)
/// driven by the same stand-in network. diffusers computes its schedule in float32, the workbench
/// in float64, so the results agree to float32 accuracy.
final class FewStepSamplerTests: XCTestCase {
    let diffusion = GaussianDiffusion(betas: GaussianDiffusion.betas(.linear, timesteps: 1000), varianceType: .fixedsmall)

    /// The stand-in network of the fixture generator: 0.6·tanh(x)·(1 − t/1000) + 0.05·sin(0.01·t).
    let model: DenoiseFunction = { x, t in
        let per = x.count / t.count
        var y = Tensor(uninitializedShape: x.shape)
        let yp = y.mutablePointer()
        for i in 0..<x.count {
            let step = Double(t[i / per])
            yp[i] = Float(0.6 * tanh(Double(x[flat: i])) * (1 - step / 1000) + 0.05 * sin(0.01 * step))
        }
        return y
    }

    func testTimestepSpacingsMatchDiffusers() throws {
        let f = try Fixture("samplers.safetensors")
        for spacing in TimestepSpacing.allCases {
            for n in [10, 20] {
                XCTAssertEqual(spacing.timesteps(n, of: 1000), f.file["dpmpp_2m.\(spacing.rawValue).\(n).timesteps"]!.int64s().map(Int.init),
                               "\(spacing) \(n)")
            }
        }
    }

    func testDPMSolverPlusPlusMatchesDiffusers() throws {
        let f = try Fixture("samplers.safetensors")
        let start = DoubleBatch(try f.tensor("x_T"))
        for spacing in TimestepSpacing.allCases {
            for n in [10, 20] {
                let x = DPMSolverPlusPlusSampler(steps: n, spacing: spacing).solve(diffusion, from: start, model: model)
                let expected = try f.tensor("dpmpp_2m.\(spacing.rawValue).\(n).final")
                if let problem = mismatch(x.values, expected.scalars.map(Double.init), rtol: 1e-4, atol: 1e-5) {
                    XCTFail("dpm-solver++ \(spacing) \(n): \(problem)")
                }
            }
        }
    }

    func testRespacedAncestralStepsMatchDiffusers() throws {
        let f = try Fixture("samplers.safetensors")
        for n in [10, 25] {
            let sampler = RespacedAncestralSampler(steps: n, spacing: .linspace)
            let (spaced, kept) = sampler.respaced(diffusion)
            XCTAssertEqual(kept.reversed(), f.file["ddpm_respaced.\(n).timesteps"]!.int64s().map(Int.init))
            // The sampler's loop with the fixture's noise in place of its own draws.
            let noise = try f.tensor("ddpm_respaced.\(n).noise").scalars.map(Double.init)
            var x = DoubleBatch(try f.tensor("x_T"))
            let per = x.values.count
            for (draw, index) in (0..<n).reversed().enumerated() {
                let t = Array(repeating: index, count: x.batch)
                let output = DoubleBatch(model(x.tensor, t.map { kept[$0] }))
                let z = DoubleBatch(shape: x.shape, values: Array(noise[(draw * per)..<((draw + 1) * per)]))
                x = spaced.pSample(output, xt: x, t: t, noise: index > 0 ? z : DoubleBatch(zeros: x.shape), clipDenoised: true).sample
            }
            if let problem = mismatch(x.values, try f.tensor("ddpm_respaced.\(n).final").scalars.map(Double.init), rtol: 1e-4, atol: 1e-5) {
                XCTFail("respaced ddpm \(n): \(problem)")
            }
        }
    }

    /// The samplers run end to end with their own noise, and the same seed gives the same samples.
    func testSamplersAreReproducible() {
        for sampler in [DPMSolverPlusPlusSampler(steps: 5, spacing: .trailing), RespacedAncestralSampler(steps: 5)] as [Sampler] {
            let a = sampler.sample(diffusion, shape: [2, 1, 4, 4], seed: 3, model: model, progress: nil)
            let b = sampler.sample(diffusion, shape: [2, 1, 4, 4], seed: 3, model: model, progress: nil)
            XCTAssertEqual(a, b, sampler.name)
            XCTAssertTrue(a.values.allSatisfy(\.isFinite), sampler.name)
        }
    }

    /// v-prediction's target and an ancestral step with a v-predicting network, and the min-SNR
    /// weights, against diffusers (DDPMScheduler with prediction_type v_prediction; compute_snr).
    func testVPredictionAndMinSNRMatchDiffusers() throws {
        let f = try Fixture("samplers.safetensors")
        let v = GaussianDiffusion(betas: GaussianDiffusion.betas(.linear, timesteps: 1000), meanType: .v, varianceType: .fixedsmall)
        let t = f.file["v.t"]!.int64s().map(Int.init)
        let x0 = DoubleBatch(try f.tensor("v.x0")), noise = DoubleBatch(try f.tensor("v.noise"))
        let xt = v.qSample(x0, t: t, noise: noise)
        if let problem = mismatch(xt.values, try f.tensor("v.x_t").scalars.map(Double.init), rtol: 1e-5, atol: 1e-6) { XCTFail("x_t: \(problem)") }
        let target = v.mseTarget(x0: x0, xt: xt, t: t, noise: noise)
        if let problem = mismatch(target.values, try f.tensor("v.target").scalars.map(Double.init), rtol: 1e-5, atol: 1e-6) {
            XCTFail("v target: \(problem)")
        }
        let step = v.pSample(DoubleBatch(try f.tensor("v.output")), xt: DoubleBatch(try f.tensor("v.x_t")), t: t,
                             noise: DoubleBatch(try f.tensor("v.step_noise")), clipDenoised: true).sample
        if let problem = mismatch(step.values, try f.tensor("v.prev_sample").scalars.map(Double.init), rtol: 1e-4, atol: 1e-5) {
            XCTFail("v step: \(problem)")
        }
        let steps = f.file["min_snr.t"]!.int64s().map(Int.init)
        for (meanType, key) in [(ModelMeanType.eps, "min_snr.eps"), (.v, "min_snr.v")] {
            let weighted = GaussianDiffusion(betas: GaussianDiffusion.betas(.linear, timesteps: 1000), meanType: meanType)
            // diffusers computes 1 − ᾱ in float32: at t = 0 that cancellation costs it 4 digits.
            if let problem = mismatch(steps.map { weighted.minSNRWeight($0, gamma: 5) }, try f.doubles(key), rtol: 1e-3, atol: 1e-9) {
                XCTFail("\(key): \(problem)")
            }
        }
    }

    /// The MSE term's analytic gradient with min-SNR weights and v-prediction, against finite differences.
    func testWeightedAndVLossGradients() {
        let random = RandomGenerator(seed: 9, purpose: "v")
        let x0 = DoubleBatch(random.uniform([2, 1, 3, 3], low: -1, high: 1)), noise = DoubleBatch(random.normal([2, 1, 3, 3]))
        let t = [5, 700]
        for meanType in [ModelMeanType.v, .eps] {
            let diffusion = GaussianDiffusion(betas: GaussianDiffusion.betas(.linear, timesteps: 1000), meanType: meanType, minSNRGamma: 5)
            let output = DoubleBatch(random.normal([2, 1, 3, 3]))
            let (_, gradient) = diffusion.trainingLoss(output, x0: x0, t: t, noise: noise)
            let numeric = finiteDifferenceGradient(at: output.values, step: 1e-5) { values in
                diffusion.trainingLoss(DoubleBatch(shape: output.shape, values: values), x0: x0, t: t, noise: noise).losses.reduce(0, +) / 2
            }
            XCTAssertNil(mismatch(gradient.values, numeric, rtol: 1e-5, atol: 1e-8), "\(meanType)")
        }
    }
}
