import Autograd
import Tensor

/// nn.LeakyReLU (default slope 0.01).
public final class LeakyReLU: Layer {
    public let negativeSlope: Float
    public init(negativeSlope: Float = 0.01) { self.negativeSlope = negativeSlope }
    public func callAsFunction(_ x: Variable) -> Variable { Functional.leakyReLU(x, slope: negativeSlope) }
}

public final class ReLU: Layer {
    public init() {}
    public func callAsFunction(_ x: Variable) -> Variable { Functional.relu(x) }
}

public final class SiLU: Layer {
    public init() {}
    public func callAsFunction(_ x: Variable) -> Variable { Functional.silu(x) }
}

public final class Sigmoid: Layer {
    public init() {}
    public func callAsFunction(_ x: Variable) -> Variable { Functional.sigmoid(x) }
}

/// nn.Dropout: in training, zeroes with probability p and scales the rest by 1/(1-p);
/// the identity in evaluation.
public final class Dropout: Layer {
    public let p: Float
    public var isTraining = true
    /// Where masks come from; `Module.setDropoutGenerator` points all of a model's dropouts at one stream.
    public var generator = RandomGenerator(seed: 0, purpose: "dropout")

    public init(p: Float = 0.5) {
        precondition(p >= 0 && p <= 1, "dropout probability must be in [0, 1], got \(p)")
        self.p = p
    }

    public func setTraining(_ training: Bool) { isTraining = training }

    public func callAsFunction(_ x: Variable) -> Variable {
        Functional.dropout(x, p: p, training: isTraining, generator: generator)
    }
}

/// nn.Upsample(scale_factor=2, mode='nearest').
public final class UpsampleNearest2x: Layer {
    public init() {}
    public func callAsFunction(_ x: Variable) -> Variable { Functional.upsampleNearest2x(x) }
}
