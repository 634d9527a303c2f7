import Autograd
import Tensor

/// The seed's ConvBlock: two [3×3 reflect conv (no bias), BatchNorm, Dropout, LeakyReLU] stages.
/// State keys: `layer.0.weight`, `layer.1.*`, `layer.4.weight`, `layer.5.*`.
public final class ConvBlock: Layer {
    public let conv1: Conv2d, norm1: BatchNorm2d, dropout1: Dropout, activation1: LeakyReLU
    public let conv2: Conv2d, norm2: BatchNorm2d, dropout2: Dropout, activation2: LeakyReLU
    /// The same layers as PyTorch's `nn.Sequential`, which gives the state keys (and runs them
    /// one op at a time, as a reference for the fused path).
    public let layer: Sequential

    public init(_ inChannels: Int, _ outChannels: Int, dropout: Float = 0.3) {
        conv1 = Conv2d(inChannels, outChannels, kernelSize: 3, stride: 1, padding: 1, paddingMode: .reflect, bias: false)
        norm1 = BatchNorm2d(outChannels)
        dropout1 = Dropout(p: dropout)
        activation1 = LeakyReLU()
        conv2 = Conv2d(outChannels, outChannels, kernelSize: 3, stride: 1, padding: 1, paddingMode: .reflect, bias: false)
        norm2 = BatchNorm2d(outChannels)
        dropout2 = Dropout(p: dropout)
        activation2 = LeakyReLU()
        layer = Sequential([conv1, norm1, dropout1, activation1, conv2, norm2, dropout2, activation2])
    }

    public var children: [(name: String, module: Module)] { [("layer", layer)] }

    /// Each [BatchNorm, Dropout, LeakyReLU] runs as one fused kernel.
    public func callAsFunction(_ x: Variable) -> Variable {
        let h = normDropoutActivation(conv1(x), norm1, dropout1, activation1)
        return normDropoutActivation(conv2(h), norm2, dropout2, activation2)
    }
}

/// BatchNorm → (Dropout) → LeakyReLU through the fused kernel, with each layer's own settings.
func normDropoutActivation(_ x: Variable, _ norm: BatchNorm2d, _ dropout: Dropout?, _ activation: LeakyReLU) -> Variable {
    if norm.isTraining { norm.numBatchesTracked.value += 1 }
    let p = dropout.map { $0.isTraining ? $0.p : 0 } ?? 0
    return Functional.batchNormDropoutLeakyReLU(x, weight: norm.weight, bias: norm.bias, runningMean: &norm.runningMean.value,
                                                runningVar: &norm.runningVar.value, training: norm.isTraining, momentum: norm.momentum,
                                                eps: norm.eps, dropout: p, generator: dropout?.generator, slope: activation.negativeSlope)
}

/// The seed's DownSample: 3×3 stride-2 reflect conv (no bias), BatchNorm, LeakyReLU. Halves H and W
/// (ceil for odd sizes).
public final class DownSample: Layer {
    public let conv: Conv2d
    public let norm: BatchNorm2d
    public let activation: LeakyReLU
    public let layer: Sequential

    public init(_ channels: Int) {
        conv = Conv2d(channels, channels, kernelSize: 3, stride: 2, padding: 1, paddingMode: .reflect, bias: false)
        norm = BatchNorm2d(channels)
        activation = LeakyReLU()
        layer = Sequential([conv, norm, activation])
    }

    public var children: [(name: String, module: Module)] { [("layer", layer)] }

    public func callAsFunction(_ x: Variable) -> Variable { normDropoutActivation(conv(x), norm, nil, activation) }
}

/// The seed's UpSample: nearest ×2, a 1×1 conv with bias halving the channels, then
/// concatenation with the skip feature map (upsampled part first). State key: `layer.*`.
public final class UpSample: Module {
    public let layer: Conv2d

    public init(_ channels: Int) {
        layer = Conv2d(channels, channels / 2, kernelSize: 1, stride: 1, bias: true)
    }

    public var children: [(name: String, module: Module)] { [("layer", layer)] }

    public func callAsFunction(_ x: Variable, skip: Variable) -> Variable {
        Functional.concatChannels([layer(Functional.upsampleNearest2x(x)), skip])
    }
}
