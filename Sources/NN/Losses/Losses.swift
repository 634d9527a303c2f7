import Autograd
import Tensor

/// nn.BCELoss() with mean reduction (log terms clamped at -100, as PyTorch does).
public struct BCELoss {
    public init() {}
    public func callAsFunction(_ prediction: Variable, _ target: Tensor) -> Variable {
        Functional.binaryCrossEntropy(prediction, target: target)
    }
}

/// nn.MSELoss() with mean reduction.
public struct MSELoss {
    public init() {}
    public func callAsFunction(_ prediction: Variable, _ target: Variable) -> Variable {
        Functional.meanSquaredError(prediction, target)
    }
    public func callAsFunction(_ prediction: Variable, _ target: Tensor) -> Variable {
        Functional.meanSquaredError(prediction, Variable(target))
    }
}
