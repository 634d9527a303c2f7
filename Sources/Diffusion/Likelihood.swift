import Autograd
import Foundation
import Tensor

/// The variational bound of Ho et al. (eq. 5) in bits/dim, with the reference's primitives, and
/// the gradients of the training losses with respect to the model output.
public enum Likelihood {
    /// KL(N(m1, e^lv1) ‖ N(m2, e^lv2)) elementwise, in nats.
    @inline(__always)
    public static func normalKL(mean1: Double, logVariance1: Double, mean2: Double, logVariance2: Double) -> Double {
        let d = mean1 - mean2
        return 0.5 * (-1 + logVariance2 - logVariance1 + exp(logVariance1 - logVariance2) + d * d * exp(-logVariance2))
    }

    static let cdfScale = (2 / Double.pi).squareRoot()

    /// The reference's tanh approximation of the standard normal CDF.
    @inline(__always)
    public static func approxStandardNormalCDF(_ x: Double) -> Double {
        0.5 * (1 + tanh(cdfScale * (x + 0.044715 * pow(x, 3))))
    }

    /// d/dx of `approxStandardNormalCDF`.
    @inline(__always)
    static func approxStandardNormalPDF(_ x: Double) -> Double {
        let th = tanh(cdfScale * (x + 0.044715 * pow(x, 3)))
        return 0.5 * (1 - th * th) * cdfScale * (1 + 3 * 0.044715 * x * x)
    }

    /// log P(x) of data on the 8-bit grid (bin width 2/255) under N(mean, e^(2·logScale)), with the
    /// edge bins open-ended; values clamp at log(1e-12).
    @inline(__always)
    public static func discretizedGaussianLogLikelihood(x: Double, mean: Double, logScale: Double) -> Double {
        discretizedTerms(x: x, mean: mean, logScale: logScale).logProbability
    }

    /// log P and its derivatives with respect to the mean and the log-scale.
    @inline(__always)
    static func discretizedTerms(x: Double, mean: Double, logScale: Double) -> (logProbability: Double, dMean: Double, dLogScale: Double) {
        let centred = x - mean, inverse = exp(-logScale)
        let plus = inverse * (centred + 1.0 / 255.0), minus = inverse * (centred - 1.0 / 255.0)
        let cdfPlus = approxStandardNormalCDF(plus), cdfMinus = approxStandardNormalCDF(minus)
        // d(plus)/d(mean) = -inverse, d(plus)/d(logScale) = -plus (and the same for minus).
        if x < -0.999 {
            guard cdfPlus > 1e-12 else { return (log(1e-12), 0, 0) }
            let g = approxStandardNormalPDF(plus) / cdfPlus
            return (log(cdfPlus), -g * inverse, -g * plus)
        }
        if x > 0.999 {
            let tail = 1 - cdfMinus
            guard tail > 1e-12 else { return (log(1e-12), 0, 0) }
            let g = -approxStandardNormalPDF(minus) / tail
            return (log(tail), -g * inverse, -g * minus)
        }
        let delta = cdfPlus - cdfMinus
        guard delta > 1e-12 else { return (log(1e-12), 0, 0) }
        let pdfPlus = approxStandardNormalPDF(plus), pdfMinus = approxStandardNormalPDF(minus)
        return (log(delta), (-pdfPlus * inverse + pdfMinus * inverse) / delta, (-pdfPlus * plus + pdfMinus * minus) / delta)
    }
}

extension GaussianDiffusion {
    /// L_T: KL(q(x_T | x_0) ‖ N(0, I)) per example, bits/dim.
    public func priorBitsPerDim(_ x0: DoubleBatch) -> [Double] {
        let last = timesteps - 1
        let (mean, _, logVariance) = qMeanVariance(x0, t: Array(repeating: last, count: x0.batch))
        let kl = DoubleBatch.make(shape: x0.shape) { b, i in
            Likelihood.normalKL(mean1: mean.values[i], logVariance1: logVariance[b], mean2: 0, logVariance2: 0)
        }
        return kl.meanFlat().map { $0 / log(2.0) }
    }

    /// The bound's term at each example's t in bits/dim: the decoder NLL at t = 0, the KL
    /// between posterior and model otherwise.
    public func variationalBoundTerms(_ output: DoubleBatch, x0: DoubleBatch, xt: DoubleBatch, t: [Int], clipDenoised: Bool)
        -> (output: [Double], kl: [Double], decoderNLL: [Double]) {
        let posterior = qPosterior(x0: x0, xt: xt, t: t)
        let model = pMeanVariance(output, xt: xt, t: t, clipDenoised: clipDenoised)
        let kl = DoubleBatch.make(shape: xt.shape) { b, i in
            Likelihood.normalKL(mean1: posterior.mean.values[i], logVariance1: posterior.logVarianceClipped[b],
                                mean2: model.mean.values[i], logVariance2: model.logVariance.values[i])
        }.meanFlat().map { $0 / log(2.0) }
        let nll = DoubleBatch.make(shape: xt.shape) { _, i in
            -Likelihood.discretizedGaussianLogLikelihood(x: x0.values[i], mean: model.mean.values[i], logScale: 0.5 * model.logVariance.values[i])
        }.meanFlat().map { $0 / log(2.0) }
        return ((0..<t.count).map { t[$0] == 0 ? nll[$0] : kl[$0] }, kl, nll)
    }

    /// The training target of the mean type (ε, x_0 or the posterior mean).
    public func mseTarget(x0: DoubleBatch, xt: DoubleBatch, t: [Int], noise: DoubleBatch) -> DoubleBatch {
        switch meanType {
        case .eps: return noise
        case .xstart: return x0
        case .xprev: return qPosterior(x0: x0, xt: xt, t: t).mean
        case .v: return DoubleBatch.make(shape: x0.shape) { b, i in
            sqrtAlphasCumprod[t[b]] * noise.values[i] - sqrtOneMinusAlphasCumprod[t[b]] * x0.values[i]
        }
        }
    }

    /// The min-SNR-γ weight of the MSE term at t (Hang et al. 2023), with SNR = ᾱ/(1−ᾱ): min(SNR, γ)/SNR
    /// for ε-prediction, min(SNR, γ)/(SNR + 1) for v, min(SNR, γ) for x₀ (as diffusers' training scripts).
    public func minSNRWeight(_ t: Int, gamma: Double) -> Double {
        let snr = alphasCumprod[t] / (1 - alphasCumprod[t])
        switch meanType {
        case .eps, .xprev: return min(snr, gamma) / snr
        case .v: return min(snr, gamma) / (snr + 1)
        case .xstart: return min(snr, gamma)
        }
    }

    /// The training loss per example (the reference's `training_losses`, plus `hybrid`) and its
    /// gradient with respect to the model output, for the loss averaged over the batch.
    /// `hybridWeight` is λ of Improved DDPM (the bound term is weighted λ·T, i.e. T/1000 at λ = 0.001).
    public func trainingLoss(_ output: DoubleBatch, x0: DoubleBatch, t: [Int], noise: DoubleBatch, hybridWeight: Double = 0.001)
        -> (losses: [Double], gradient: DoubleBatch) {
        let xt = qSample(x0, t: t, noise: noise)
        let batch = x0.batch, channels = x0.shape[1], per = x0.perExample
        // The mean over the global batch when a data-parallel step holds part of it.
        let meanOver = Double(BatchReduction.globalBatch(local: batch))
        var losses = [Double](repeating: 0, count: batch)
        var gradient = DoubleBatch(zeros: output.shape)
        let outPer = output.perExample
        let (meanPart, _) = split(output, channels: channels)
        if lossType == .mse || lossType == .hybrid {
            let target = mseTarget(x0: x0, xt: xt, t: t, noise: noise)
            for b in 0..<batch {
                var total = 0.0
                let weight = minSNRGamma.map { minSNRWeight(t[b], gamma: $0) }
                for i in 0..<per {
                    let d = meanPart.values[b * per + i] - target.values[b * per + i]
                    total += d * d
                    let slope = 2 * d / (Double(per) * meanOver)
                    gradient.values[b * outPer + i] += weight.map { slope * $0 } ?? slope
                }
                losses[b] = weight.map { total / Double(per) * $0 } ?? total / Double(per)
            }
        }
        if lossType == .kl || lossType == .hybrid {
            let weight = lossType == .hybrid ? hybridWeight * Double(timesteps) : 1
            let stopMean = lossType == .hybrid
            let posterior = qPosterior(x0: x0, xt: xt, t: t)
            let model = pMeanVariance(output, xt: xt, t: t, clipDenoised: false)
            let (_, variancePart) = split(output, channels: channels)
            let scale = weight / (Double(per) * log(2.0))
            for b in 0..<batch {
                let tb = t[b]
                // d(model mean)/d(mean part of the output), without clipping (training never clips).
                let meanSlope: Double
                switch meanType {
                case .eps: meanSlope = -posteriorMeanCoef1[tb] * sqrtRecipm1AlphasCumprod[tb]
                case .xstart: meanSlope = posteriorMeanCoef1[tb]
                case .xprev: meanSlope = 1
                case .v: meanSlope = -posteriorMeanCoef1[tb] * sqrtOneMinusAlphasCumprod[tb]
                }
                let varianceSlope: Double
                switch varianceType {
                case .learned: varianceSlope = 1
                case .learnedRange: varianceSlope = (log(betas[tb]) - posteriorLogVarianceClipped[tb]) / 2
                default: varianceSlope = 0
                }
                var total = 0.0
                for i in 0..<per {
                    let index = b * per + i
                    let m = model.mean.values[index], lv = model.logVariance.values[index]
                    var dMean = 0.0, dLogVariance = 0.0
                    if tb == 0 {
                        let terms = Likelihood.discretizedTerms(x: x0.values[index], mean: m, logScale: 0.5 * lv)
                        total -= terms.logProbability
                        dMean = -terms.dMean
                        dLogVariance = -0.5 * terms.dLogScale
                    } else {
                        let m1 = posterior.mean.values[index], lv1 = posterior.logVarianceClipped[b]
                        total += Likelihood.normalKL(mean1: m1, logVariance1: lv1, mean2: m, logVariance2: lv)
                        let inverse = exp(-lv)
                        dMean = -(m1 - m) * inverse
                        dLogVariance = 0.5 * (1 - exp(lv1 - lv) - (m1 - m) * (m1 - m) * inverse)
                    }
                    if !stopMean { gradient.values[b * outPer + i] += scale * dMean * meanSlope / meanOver }
                    if variancePart != nil {
                        gradient.values[b * outPer + per + i] += scale * dLogVariance * varianceSlope / meanOver
                    }
                }
                losses[b] += weight * total / (Double(per) * log(2.0))
            }
        }
        return (losses, gradient)
    }

    /// The training loss averaged over the batch as a differentiable op on the tape, whose backward
    /// is the analytic gradient of `trainingLoss`; `value` is the same mean in Double.
    public func trainingLoss(_ output: Variable, x0: DoubleBatch, t: [Int], noise: DoubleBatch, hybridWeight: Double = 0.001)
        -> (loss: Variable, value: Double) {
        let (losses, gradient) = trainingLoss(DoubleBatch(output.value), x0: x0, t: t, noise: noise, hybridWeight: hybridWeight)
        let value = BatchReduction.sumOverImages(losses, width: 1)[0] / Double(BatchReduction.globalBatch(local: x0.batch))
        let loss = Tape.record(Tensor(scalar: Float(value)), inputs: [output], name: "diffusion loss") { g in
            [Elementwise.scale(gradient.tensor, g.scalarValue)]
        }
        return (loss, value)
    }
}
