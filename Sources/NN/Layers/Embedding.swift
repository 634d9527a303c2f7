import Autograd
import Tensor

/// nn.Embedding: a learned table `weight` [count, dimension], initialised N(0, 1) as PyTorch does.
public final class Embedding: Module {
    public let weight: Variable

    public init(_ count: Int, _ dimension: Int) {
        weight = Variable(Tensor(zeros: [count, dimension]), requiresGrad: true)
    }

    public var localState: [(name: String, slot: StateSlot)] { [("weight", .parameter(weight))] }

    public func resetParameters(generator: RandomGenerator) {
        weight.value = generator.child("weight").normal(weight.shape)
    }

    public func callAsFunction(_ indices: [Int]) -> Variable { Functional.embedding(weight, indices: indices) }
}
