import Autograd
import Tensor

/// An input size the U-Net cannot take, with the reason.
public struct ShapeError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The seed U-Net (PyTorch module names kept exactly, so `state_dict` keys match):
/// c1 d1 c2 d2 c3 d3 c4 d4 c5, u1 c6 u2 c7 u3 c8 u4 c9, out (3×3 zero-padded conv with bias), sigmoid.
public final class UNet: Module {
    public let base: Int
    public let inChannels: Int
    public let outChannels: Int
    public let c1, c2, c3, c4, c5, c6, c7, c8, c9: ConvBlock
    public let d1, d2, d3, d4: DownSample
    public let u1, u2, u3, u4: UpSample
    public let out: Conv2d

    /// `base` is the seed's 64; `dropout` the seed's 0.3.
    public init(base: Int = 64, inChannels: Int = 3, outChannels: Int = 3, dropout: Float = 0.3) {
        self.base = base
        self.inChannels = inChannels
        self.outChannels = outChannels
        let b = base
        c1 = ConvBlock(inChannels, b, dropout: dropout); d1 = DownSample(b)
        c2 = ConvBlock(b, 2 * b, dropout: dropout); d2 = DownSample(2 * b)
        c3 = ConvBlock(2 * b, 4 * b, dropout: dropout); d3 = DownSample(4 * b)
        c4 = ConvBlock(4 * b, 8 * b, dropout: dropout); d4 = DownSample(8 * b)
        c5 = ConvBlock(8 * b, 16 * b, dropout: dropout)
        u1 = UpSample(16 * b); c6 = ConvBlock(16 * b, 8 * b, dropout: dropout)
        u2 = UpSample(8 * b); c7 = ConvBlock(8 * b, 4 * b, dropout: dropout)
        u3 = UpSample(4 * b); c8 = ConvBlock(4 * b, 2 * b, dropout: dropout)
        u4 = UpSample(2 * b); c9 = ConvBlock(2 * b, b, dropout: dropout)
        out = Conv2d(b, outChannels, kernelSize: 3, stride: 1, padding: 1, paddingMode: .zeros, bias: true)
    }

    public var children: [(name: String, module: Module)] {
        [("c1", c1), ("d1", d1), ("c2", c2), ("d2", d2), ("c3", c3), ("d3", d3), ("c4", c4), ("d4", d4), ("c5", c5),
         ("u1", u1), ("c6", c6), ("u2", u2), ("c7", c7), ("u3", u3), ("c8", c8), ("u4", u4), ("c9", c9), ("out", out)]
    }

    /// Throws unless the input is [N, inChannels, H, W] with H and W multiples of 16 and at least 32:
    /// four stride-2 levels must halve exactly to match the skips, and the bottom level's reflect
    /// padding needs at least 2 pixels.
    public func validate(inputShape shape: [Int]) throws {
        guard shape.count == 4 else { throw ShapeError("the U-Net takes an NCHW tensor, got shape \(shape)") }
        guard shape[1] == inChannels else {
            throw ShapeError("the U-Net expects \(inChannels) input channels, got \(shape[1]) (shape \(shape))")
        }
        for (axis, size) in [("height", shape[2]), ("width", shape[3])] where size % 16 != 0 || size < 32 {
            throw ShapeError("input \(axis) \(size) must be a multiple of 16 and at least 32 (four 2× levels, reflect padding at the bottom)")
        }
    }

    /// Probabilities in (0, 1) (the seed's `Th(out(o4))`).
    public func callAsFunction(_ x: Variable) -> Variable {
        Functional.sigmoid(logits(x))
    }

    /// The output before the sigmoid. `observe`, when given, sees each module's output under its
    /// name (c1, d1, …, u1, …, out), for checking a port layer by layer.
    public func logits(_ x: Variable, observe: ((String, Variable) -> Void)? = nil) -> Variable {
        func run(_ name: String, _ value: Variable) -> Variable {
            observe?(name, value)
            return value
        }
        let r1 = run("c1", c1(x))
        let r2 = run("c2", c2(run("d1", d1(r1))))
        let r3 = run("c3", c3(run("d2", d2(r2))))
        let r4 = run("c4", c4(run("d3", d3(r3))))
        let r5 = run("c5", c5(run("d4", d4(r4))))
        let o1 = run("c6", c6(run("u1", u1(r5, skip: r4))))
        let o2 = run("c7", c7(run("u2", u2(o1, skip: r3))))
        let o3 = run("c8", c8(run("u3", u3(o2, skip: r2))))
        let o4 = run("c9", c9(run("u4", u4(o3, skip: r1))))
        return run("out", out(o4))
    }
}
