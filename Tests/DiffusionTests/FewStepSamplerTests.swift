import Diffusion
import Foundation
import Tensor
import TestSupport
import XCTest

/// DPM-Solver++ (2M), the timestep spacings and respaced ancestral sampling against diffusers'
/// schedulers (Fixtures/samplers.safetensors, made by ../shared/fixtures/tools/gen_samplers.py)
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
}
