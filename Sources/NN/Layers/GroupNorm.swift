import Autograd
import Tensor

/// nn.GroupNorm(groups, channels): statistics per example and group; `weight`, `bias` per channel.
public final class GroupNorm: Layer {
    public let groups: Int
    public let weight: Variable
    public let bias: Variable
    public let eps: Float

    public init(groups: Int, channels: Int, eps: Float = 1e-5) {
        precondition(channels % groups == 0, "GroupNorm: \(channels) channels do not split into \(groups) groups")
        self.groups = groups
        self.eps = eps
        weight = Variable(Tensor(repeating: 1, shape: [channels]), requiresGrad: true)
        bias = Variable(Tensor(zeros: [channels]), requiresGrad: true)
    }

    public var localState: [(name: String, slot: StateSlot)] { [("weight", .parameter(weight)), ("bias", .parameter(bias))] }

    public func resetParameters(generator: RandomGenerator) {
        weight.value = Tensor(repeating: 1, shape: weight.shape)
        bias.value = Tensor(zeros: bias.shape)
    }

    public func callAsFunction(_ x: Variable) -> Variable {
        Functional.groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps)
    }

    /// SiLU(dropout(self(x) + shift)) in one pass (`shift` [N, C] or nil), with `dropout`'s
    /// probability, mode and generator: the same values as the ops in sequence.
    public func shiftDropoutSiLU(_ x: Variable, shift: Variable?, dropout: Dropout) -> Variable {
        Functional.groupNormShiftDropoutSiLU(x, groups: groups, weight: weight, bias: bias, shift: shift, dropout: dropout.p,
                                             training: dropout.isTraining, generator: dropout.generator, eps: eps)
    }
}
