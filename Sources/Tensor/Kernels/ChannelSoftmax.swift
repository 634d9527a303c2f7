import Foundation

/// Softmax and log-softmax over the channel axis (axis 1) of [N, C, …] tensors, as
/// `torch.softmax(x, dim=1)`: the maximum is subtracted first and Σ exp is accumulated in Double.
public enum ChannelSoftmax {
    /// Calls body(plane, pixel) for each (image, position), handing the channel stride.
    @inline(__always)
    static func forEachPosition(_ shape: [Int], _ body: (_ base: Int, _ stride: Int, _ channels: Int) -> Void) {
        let n = shape[0], c = shape[1], inner = shape.dropFirst(2).reduce(1, *)
        Parallel.forEach(n) { image in
            for position in 0..<inner { body(image * c * inner + position, inner, c) }
        }
    }

    /// The channel maximum at one position and Σ exp(x − max) in Double (the shared first pass).
    @inline(__always)
    static func maximumAndTotal(_ xp: UnsafePointer<Float>, _ base: Int, _ stride: Int, _ channels: Int) -> (Float, Double) {
        var maximum = -Float.infinity
        for c in 0..<channels { maximum = max(maximum, xp[base + c * stride]) }
        var total = 0.0
        for c in 0..<channels { total += Double(Foundation.exp(xp[base + c * stride] - maximum)) }
        return (maximum, total)
    }

    /// Σ_c f(c) at one position, in Double.
    @inline(__always)
    static func channelSum(_ base: Int, _ stride: Int, _ channels: Int, _ f: (Int) -> Double) -> Float {
        var total = 0.0
        for c in 0..<channels { total += f(base + c * stride) }
        return Float(total)
    }

    /// log softmax(x) along axis 1.
    public static func logSoftmax(_ x: Tensor) -> Tensor {
        var y = Tensor(uninitializedShape: x.shape)
        let yp = y.mutablePointer(), xp = x.pointer
        forEachPosition(x.shape) { base, stride, channels in
            let (maximum, total) = maximumAndTotal(xp, base, stride, channels)
            let logTotal = Float(Foundation.log(total))
            for c in 0..<channels { yp[base + c * stride] = xp[base + c * stride] - maximum - logTotal }
        }
        return y
    }

    /// softmax(x) along axis 1.
    public static func softmax(_ x: Tensor) -> Tensor {
        var y = Tensor(uninitializedShape: x.shape)
        let yp = y.mutablePointer(), xp = x.pointer
        forEachPosition(x.shape) { base, stride, channels in
            let (maximum, total) = maximumAndTotal(xp, base, stride, channels)
            let inverse = 1 / total
            for c in 0..<channels { yp[base + c * stride] = Float(Double(Foundation.exp(xp[base + c * stride] - maximum)) * inverse) }
        }
        return y
    }

    /// Gradient of log-softmax: g − softmax·Σ_c g, with softmax = exp(output).
    public static func logSoftmaxBackward(output y: Tensor, _ g: Tensor) -> Tensor {
        var dx = Tensor(uninitializedShape: y.shape)
        let dp = dx.mutablePointer(), yp = y.pointer, gp = g.pointer
        forEachPosition(y.shape) { base, stride, channels in
            let sum = channelSum(base, stride, channels) { Double(gp[$0]) }
            for c in 0..<channels { dp[base + c * stride] = gp[base + c * stride] - Foundation.exp(yp[base + c * stride]) * sum }
        }
        return dx
    }

    /// Gradient of softmax: y·(g − Σ_c g·y).
    public static func softmaxBackward(output y: Tensor, _ g: Tensor) -> Tensor {
        var dx = Tensor(uninitializedShape: y.shape)
        let dp = dx.mutablePointer(), yp = y.pointer, gp = g.pointer
        forEachPosition(y.shape) { base, stride, channels in
            let dot = channelSum(base, stride, channels) { Double(gp[$0]) * Double(yp[$0]) }
            for c in 0..<channels { dp[base + c * stride] = yp[base + c * stride] * (gp[base + c * stride] - dot) }
        }
        return dx
    }
}
