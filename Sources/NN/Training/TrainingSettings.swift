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

/// How the learning rate moves after the linear warm-up (as torch.optim.lr_scheduler's
/// schedulers stepped once per optimiser step).
public enum LearningRateSchedule: Sendable, Equatable {
    /// The base rate throughout.
    case constant
    /// CosineAnnealingLR from the base rate to `minimum` over the steps after warm-up.
    case cosine(minimum: Double)
    /// PolynomialLR (mmseg's PolyLR with `eta_min`): (base − minimum)·(1 − s/S)^power + minimum.
    case poly(power: Double, minimum: Double)
    /// MultiStepLR: the base rate times γ for each milestone (an optimiser step count) reached.
    case step(milestones: [Int], gamma: Double)

    /// Whether the schedule needs the run's length (train.max_steps or train.epochs).
    public var needsTotalSteps: Bool {
        switch self {
        case .cosine, .poly: return true
        case .constant, .step: return false
        }
    }
}

/// The budget and cadence of a training run, shared by both heads.
public struct TrainingSettings: Sendable, Equatable {
    /// Images per micro-batch; a step sees `batchSize × accumulateSteps` images.
    public var batchSize = 4
    /// Micro-batches whose gradients one optimiser step sums (gradient accumulation).
    public var accumulateSteps = 1
    /// Passes over the training set; nil means "until a step or time budget ends the run".
    public var epochs: Int? = 50
    public var maxSteps: Int?
    public var maxMinutes: Double?
    public var optimizer = OptimizerSettings()
    /// Linear learning-rate warm-up from 0 over this many steps.
    public var warmupSteps = 0
    public var schedule = LearningRateSchedule.constant
    /// Clip the global gradient norm to this value (nil: no clipping).
    public var gradClipNorm: Double?
    public var checkpointEveryEpochs: Int? = 5
    public var checkpointEverySteps: Int?
    public var evalEveryEpochs: Int? = 1
    public var evalEverySteps: Int?
    public var logEverySteps = 10
    /// The arithmetic of the step's matrix products and convolutions (bf16: mixed precision).
    public var precision = BLAS.Precision.float32

    public init() {}

    /// Learning rate at (0-based) `step`: linear warm-up to the base rate over `warmupSteps`, then
    /// the schedule over the remaining `totalSteps − warmupSteps` steps.
    public func learningRate(atStep step: Int, totalSteps: Int? = nil) -> Double {
        let base = optimizer.learningRate
        if warmupSteps > 0 && step < warmupSteps { return base * Double(step + 1) / Double(warmupSteps) }
        let since = step - warmupSteps
        switch schedule {
        case .constant:
            return base
        case .cosine(let minimum):
            guard let totalSteps, totalSteps > warmupSteps else { return base }
            let progress = Double(min(since, totalSteps - warmupSteps)) / Double(totalSteps - warmupSteps)
            return minimum + (base - minimum) * (1 + cos(Double.pi * progress)) / 2
        case .poly(let power, let minimum):
            guard let totalSteps, totalSteps > warmupSteps else { return base }
            let progress = Double(min(since, totalSteps - warmupSteps)) / Double(totalSteps - warmupSteps)
            return (base - minimum) * pow(1 - progress, power) + minimum
        case .step(let milestones, let gamma):
            return base * pow(gamma, Double(milestones.filter { $0 <= step }.count))
        }
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
