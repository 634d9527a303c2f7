import Autograd
import Tensor

/// The seed's ConvBlock: two [3×3 reflect conv (no bias), BatchNorm, Dropout, LeakyReLU] stages.
/// State keys: `layer.0.weight`, `layer.1.*`, `layer.4.weight`, `layer.5.*`.
public final class ConvBlock: Layer {
    public let layer: Sequential

    public init(_ inChannels: Int, _ outChannels: Int, dropout: Float = 0.3) {
        layer = Sequential([
            Conv2d(inChannels, outChannels, kernelSize: 3, stride: 1, padding: 1, paddingMode: .reflect, bias: false),
            BatchNorm2d(outChannels), Dropout(p: dropout), LeakyReLU(),
            Conv2d(outChannels, outChannels, kernelSize: 3, stride: 1, padding: 1, paddingMode: .reflect, bias: false),
            BatchNorm2d(outChannels), Dropout(p: dropout), LeakyReLU(),
        ])
    }

    public var children: [(name: String, module: Module)] { [("layer", layer)] }

    public func callAsFunction(_ x: Variable) -> Variable { layer(x) }
}

/// The seed's DownSample: 3×3 stride-2 reflect conv (no bias), BatchNorm, LeakyReLU. Halves H and W
/// (ceil for odd sizes).
public final class DownSample: Layer {
    public let layer: Sequential

    public init(_ channels: Int) {
        layer = Sequential([
            Conv2d(channels, channels, kernelSize: 3, stride: 2, padding: 1, paddingMode: .reflect, bias: false),
            BatchNorm2d(channels), LeakyReLU(),
        ])
    }

    public var children: [(name: String, module: Module)] { [("layer", layer)] }

    public func callAsFunction(_ x: Variable) -> Variable { layer(x) }
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
