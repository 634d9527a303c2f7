import Autograd
import Tensor

/// Single-head self-attention over pixels (the DDPM U-Net's AttnBlock): x + proj(softmax(qᵀk/√C)·v).
public final class AttentionBlock: Module {
    public let norm: GroupNorm
    public let qkv: Conv2d
    public let projection: Conv2d

    public init(_ channels: Int, groups: Int) {
        norm = GroupNorm(groups: groups, channels: channels)
        qkv = Conv2d(channels, 3 * channels, kernelSize: 1)
        projection = Conv2d(channels, channels, kernelSize: 1)
    }

    public var children: [(name: String, module: Module)] { [("norm", norm), ("qkv", qkv), ("proj", projection)] }

    public func callAsFunction(_ x: Variable) -> Variable {
        let (n, c, h, w) = x.value.nchw
        let attended = Functional.scaledDotProductAttention(qkv: qkv(norm(x)))
        return Functional.add(x, projection(Functional.reshape(attended, [n, c, h, w])))
    }
}
