import Autograd
import Foundation
import Tensor

/// nn.Conv2d: square kernel, `weight` [out, in, k, k], optional `bias` [out].
public final class Conv2d: Layer {
    public let weight: Variable
    public let bias: Variable?
    public let stride: Int
    public let padding: Int
    public let paddingMode: PaddingMode

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                paddingMode: PaddingMode = .zeros, bias: Bool = true) {
        weight = Variable(Tensor(zeros: [outChannels, inChannels, kernelSize, kernelSize]), requiresGrad: true)
        self.bias = bias ? Variable(Tensor(zeros: [outChannels]), requiresGrad: true) : nil
        self.stride = stride
        self.padding = padding
        self.paddingMode = paddingMode
    }

    public var localState: [(name: String, slot: StateSlot)] {
        var state: [(name: String, slot: StateSlot)] = [("weight", .parameter(weight))]
        if let bias { state.append(("bias", .parameter(bias))) }
        return state
    }

    /// PyTorch's default: kaiming_uniform(a=√5) for the weight, i.e. U(±1/√fan_in), and U(±1/√fan_in) for the bias.
    public func resetParameters(generator: RandomGenerator) {
        let fanIn = weight.shape[1] * weight.shape[2] * weight.shape[3]
        let bound = Float(1 / Double(fanIn).squareRoot())
        weight.value = generator.child("weight").uniform(weight.shape, low: -bound, high: bound)
        if let bias { bias.value = generator.child("bias").uniform(bias.shape, low: -bound, high: bound) }
    }

    public func callAsFunction(_ x: Variable) -> Variable {
        Functional.conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, paddingMode: paddingMode)
    }
}

/// nn.Linear: `weight` [out, in], `bias` [out].
public final class Linear: Layer {
    public let weight: Variable
    public let bias: Variable?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true) {
        weight = Variable(Tensor(zeros: [outFeatures, inFeatures]), requiresGrad: true)
        self.bias = bias ? Variable(Tensor(zeros: [outFeatures]), requiresGrad: true) : nil
    }

    public var localState: [(name: String, slot: StateSlot)] {
        var state: [(name: String, slot: StateSlot)] = [("weight", .parameter(weight))]
        if let bias { state.append(("bias", .parameter(bias))) }
        return state
    }

    public func resetParameters(generator: RandomGenerator) {
        let bound = Float(1 / Double(weight.shape[1]).squareRoot())
        weight.value = generator.child("weight").uniform(weight.shape, low: -bound, high: bound)
        if let bias { bias.value = generator.child("bias").uniform(bias.shape, low: -bound, high: bound) }
    }

    public func callAsFunction(_ x: Variable) -> Variable { Functional.linear(x, weight: weight, bias: bias) }
}
