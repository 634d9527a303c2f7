import CKernels
import Autograd
import Foundation
import Tensor

/// An optimiser over named parameters whose state (moments, step count) can be saved and
/// restored by name, so a resumed run continues exactly.
public protocol Optimizer: AnyObject {
    var learningRate: Double { get set }
    var parameters: [(name: String, variable: Variable)] { get }
    /// Applies one update from the parameters' accumulated gradients.
    func step()
    /// The optimiser's state as named tensors (`<kind>.<parameter name>`).
    func stateEntries() -> SafeTensorsFile
    /// Restores what `stateEntries` wrote; throws naming what is missing or of the wrong shape.
    func loadState(_ file: SafeTensorsFile, path: String) throws
}

extension Optimizer {
    public func zeroGrad() { for (_, variable) in parameters { variable.zeroGrad() } }
}

/// The error for an optimiser state that does not fit the model.
public struct OptimizerStateError: Error, CustomStringConvertible {
    public let path: String
    public let problems: [String]
    public var description: String {
        "\(path): the optimiser state does not fit this model:\n  " + problems.joined(separator: "\n  ")
    }
}

func loadMoments(_ file: SafeTensorsFile, prefix: String, parameters: [(name: String, variable: Variable)],
                 problems: inout [String]) -> [Tensor] {
    parameters.map { name, variable in
        guard let entry = file[prefix + name] else {
            problems.append("missing \(prefix + name)")
            return Tensor(zeros: variable.shape)
        }
        guard entry.shape == variable.shape else {
            problems.append("\(prefix + name) has shape \(entry.shape), the parameter has \(variable.shape)")
            return Tensor(zeros: variable.shape)
        }
        return Tensor(shape: entry.shape, scalars: entry.floats())
    }
}

/// torch.optim.Adam and, with `decoupledWeightDecay`, torch.optim.AdamW, step for step:
/// m ← m + (1-β1)(g - m); v ← β2·v + (1-β2)g²; p ← p - (lr/(1-β1ᵏ))·m / (√v/√(1-β2ᵏ) + ε).
/// Adam's weight decay adds wd·p to g (L2); AdamW multiplies p by (1 - lr·wd) first.
public final class Adam: Optimizer {
    public let parameters: [(name: String, variable: Variable)]
    public var learningRate: Double
    public let beta1: Double, beta2: Double, eps: Double, weightDecay: Double
    public let decoupledWeightDecay: Bool
    public private(set) var stepCount: Int64 = 0
    var expAvg: [Tensor]
    var expAvgSq: [Tensor]

    public init(parameters: [(name: String, variable: Variable)], learningRate: Double = 1e-3, beta1: Double = 0.9,
                beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0, decoupledWeightDecay: Bool = false) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
        expAvg = parameters.map { Tensor(zeros: $0.variable.shape) }
        expAvgSq = parameters.map { Tensor(zeros: $0.variable.shape) }
    }

    /// AdamW with PyTorch's default weight decay 0.01.
    public static func adamW(parameters: [(name: String, variable: Variable)], learningRate: Double = 1e-3,
                             weightDecay: Double = 0.01, beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8) -> Adam {
        Adam(parameters: parameters, learningRate: learningRate, beta1: beta1, beta2: beta2, eps: eps,
             weightDecay: weightDecay, decoupledWeightDecay: true)
    }

    public func step() {
        stepCount += 1
        let k = Double(stepCount)
        let bias1 = 1 - pow(beta1, k), bias2 = 1 - pow(beta2, k)
        let stepSize = Float(learningRate / bias1)
        let bias2Sqrt = Float(bias2.squareRoot())
        let b1 = Float(1 - beta1), b2 = Float(beta2), oneMinusB2 = Float(1 - beta2), epsilon = Float(eps)
        let decay = Float(weightDecay), shrink = Float(1 - learningRate * weightDecay)
        let decoupled = decoupledWeightDecay
        for (index, (_, parameter)) in parameters.enumerated() {
            guard let grad = parameter.grad else { continue }
            let p = parameter.value.mutablePointer(), g = grad.pointer
            let m = expAvg[index].mutablePointer(), v = expAvgSq[index].mutablePointer()
            Parallel.forRanges(parameter.value.count, grain: 16_384) { range in
                let start = range.lowerBound
                wb_adam_update(p + start, g + start, m + start, v + start, range.count, b1, b2, oneMinusB2, bias2Sqrt,
                               epsilon, stepSize, decoupled ? 0 : decay, decoupled ? shrink : 1)
            }
        }
    }

    public func stateEntries() -> SafeTensorsFile {
        var file = SafeTensorsFile()
        file["step"] = SafeTensorsEntry(int64s: [stepCount], shape: [])
        for (index, (name, _)) in parameters.enumerated() {
            file.set("exp_avg." + name, expAvg[index])
            file.set("exp_avg_sq." + name, expAvgSq[index])
        }
        return file
    }

    public func loadState(_ file: SafeTensorsFile, path: String) throws {
        var problems: [String] = []
        let step = file["step"]?.int64s().first
        if step == nil { problems.append("missing step") }
        let m = loadMoments(file, prefix: "exp_avg.", parameters: parameters, problems: &problems)
        let v = loadMoments(file, prefix: "exp_avg_sq.", parameters: parameters, problems: &problems)
        guard problems.isEmpty else { throw OptimizerStateError(path: path, problems: problems) }
        stepCount = step!
        expAvg = m
        expAvgSq = v
    }
}

/// torch.optim.SGD with momentum, dampening, Nesterov and L2 weight decay.
public final class SGD: Optimizer {
    public let parameters: [(name: String, variable: Variable)]
    public var learningRate: Double
    public let momentum: Double, dampening: Double, weightDecay: Double
    public let nesterov: Bool
    var momentumBuffers: [Tensor?]

    public init(parameters: [(name: String, variable: Variable)], learningRate: Double, momentum: Double = 0,
                dampening: Double = 0, weightDecay: Double = 0, nesterov: Bool = false) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        momentumBuffers = Array(repeating: nil, count: parameters.count)
    }

    public func step() {
        let lr = Float(learningRate), mu = Float(momentum), damp = Float(1 - dampening), decay = Float(weightDecay)
        for (index, (_, parameter)) in parameters.enumerated() {
            guard let grad = parameter.grad else { continue }
            var d = decay == 0 ? grad : Elementwise.zip(grad, parameter.value) { $0 + decay * $1 }
            if mu != 0 {
                if var buffer = momentumBuffers[index] {
                    let bp = buffer.mutablePointer(), dp = d.pointer
                    for i in 0..<buffer.count { bp[i] = mu * bp[i] + damp * dp[i] }
                    momentumBuffers[index] = buffer
                } else {
                    momentumBuffers[index] = d
                }
                let buffer = momentumBuffers[index]!
                d = nesterov ? Elementwise.zip(d, buffer) { $0 + mu * $1 } : buffer
            }
            let p = parameter.value.mutablePointer(), dp = d.pointer
            for i in 0..<parameter.value.count { p[i] -= lr * dp[i] }
        }
    }

    public func stateEntries() -> SafeTensorsFile {
        var file = SafeTensorsFile()
        for (index, (name, _)) in parameters.enumerated() {
            if let buffer = momentumBuffers[index] { file.set("momentum_buffer." + name, buffer) }
        }
        return file
    }

    public func loadState(_ file: SafeTensorsFile, path: String) throws {
        var problems: [String] = []
        var buffers: [Tensor?] = []
        for (name, variable) in parameters {
            guard let entry = file["momentum_buffer." + name] else { buffers.append(nil); continue }
            if entry.shape != variable.shape {
                problems.append("momentum_buffer.\(name) has shape \(entry.shape), the parameter has \(variable.shape)")
            }
            buffers.append(Tensor(shape: entry.shape, scalars: entry.floats()))
        }
        guard problems.isEmpty else { throw OptimizerStateError(path: path, problems: problems) }
        momentumBuffers = buffers
    }
}
