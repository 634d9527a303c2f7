import Autograd
import Foundation
import Tensor

/// Which optimiser, with PyTorch's parameters.
public struct OptimizerSettings: Sendable, Equatable {
    public enum Kind: String, CaseIterable, Sendable { case adam, adamw, sgd }
    public var kind: Kind = .adam
    public var learningRate: Double = 1e-4
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var eps: Double = 1e-8
    /// L2 for Adam and SGD, decoupled for AdamW (whose PyTorch default is 0.01).
    public var weightDecay: Double = 0
    public var momentum: Double = 0
    public var nesterov: Bool = false

    public init() {}

    public func makeOptimizer(for parameters: [(name: String, variable: Variable)]) -> Optimizer {
        switch kind {
        case .adam:
            return Adam(parameters: parameters, learningRate: learningRate, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay)
        case .adamw:
            return Adam(parameters: parameters, learningRate: learningRate, beta1: beta1, beta2: beta2, eps: eps,
                        weightDecay: weightDecay, decoupledWeightDecay: true)
        case .sgd:
            return SGD(parameters: parameters, learningRate: learningRate, momentum: momentum, weightDecay: weightDecay, nesterov: nesterov)
        }
    }
}

/// The budget and cadence of a training run, shared by both heads.
public struct TrainingSettings: Sendable, Equatable {
    public var batchSize = 4
    /// Passes over the training set; nil means "until a step or time budget ends the run".
    public var epochs: Int? = 50
    public var maxSteps: Int?
    public var maxMinutes: Double?
    public var optimizer = OptimizerSettings()
    /// Linear learning-rate warm-up from 0 over this many steps.
    public var warmupSteps = 0
    /// Clip the global gradient norm to this value (nil: no clipping).
    public var gradClipNorm: Double?
    public var checkpointEveryEpochs: Int? = 5
    public var checkpointEverySteps: Int?
    public var evalEveryEpochs: Int? = 1
    public var evalEverySteps: Int?
    public var logEverySteps = 10

    public init() {}

    /// Learning rate at (0-based) `step` after warm-up.
    public func learningRate(atStep step: Int) -> Double {
        guard warmupSteps > 0, step < warmupSteps else { return optimizer.learningRate }
        return optimizer.learningRate * Double(step + 1) / Double(warmupSteps)
    }
}

/// Scales all gradients so that their global L2 norm is at most `maxNorm`
/// (torch.nn.utils.clip_grad_norm_); returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ parameters: [Variable], maxNorm: Double) -> Double {
    var total = 0.0
    for parameter in parameters {
        guard let grad = parameter.grad else { continue }
        total += Reduction.sum(count: grad.count) { i in let g = Double(grad.pointer[i]); return g * g }
    }
    let norm = total.squareRoot()
    let scale = maxNorm / (norm + 1e-6)
    if scale < 1 {
        for parameter in parameters where parameter.grad != nil {
            parameter.grad = Elementwise.scale(parameter.grad!, Float(scale))
        }
    }
    return norm
}
