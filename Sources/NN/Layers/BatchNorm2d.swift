import Autograd
import Tensor

/// nn.BatchNorm2d (momentum 0.1, eps 1e-5 by default): `weight`, `bias`, `running_mean`,
/// `running_var` and the int64 `num_batches_tracked`.
public final class BatchNorm2d: Layer {
    public let weight: Variable
    public let bias: Variable
    public let runningMean: TensorBuffer
    public let runningVar: TensorBuffer
    public let numBatchesTracked = CounterBuffer()
    public let momentum: Float
    public let eps: Float
    public var isTraining = true

    public init(_ channels: Int, momentum: Float = 0.1, eps: Float = 1e-5) {
        weight = Variable(Tensor(repeating: 1, shape: [channels]), requiresGrad: true)
        bias = Variable(Tensor(zeros: [channels]), requiresGrad: true)
        runningMean = TensorBuffer(Tensor(zeros: [channels]))
        runningVar = TensorBuffer(Tensor(repeating: 1, shape: [channels]))
        self.momentum = momentum
        self.eps = eps
    }

    public var localState: [(name: String, slot: StateSlot)] {
        [("weight", .parameter(weight)), ("bias", .parameter(bias)), ("running_mean", .buffer(runningMean)),
         ("running_var", .buffer(runningVar)), ("num_batches_tracked", .counter(numBatchesTracked))]
    }

    public func setTraining(_ training: Bool) { isTraining = training }

    public func resetParameters(generator: RandomGenerator) {
        let c = weight.shape[0]
        weight.value = Tensor(repeating: 1, shape: [c])
        bias.value = Tensor(zeros: [c])
        runningMean.value = Tensor(zeros: [c])
        runningVar.value = Tensor(repeating: 1, shape: [c])
        numBatchesTracked.value = 0
    }

    public func callAsFunction(_ x: Variable) -> Variable {
        if isTraining { numBatchesTracked.value += 1 }
        return Functional.batchNorm2d(x, weight: weight, bias: bias, runningMean: &runningMean.value,
                                      runningVar: &runningVar.value, training: isTraining, momentum: momentum, eps: eps)
    }
}
