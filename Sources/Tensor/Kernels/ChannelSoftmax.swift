import Foundation

/// Softmax and log-softmax over the channel axis (axis 1) of [N, C, …] tensors, as
/// `torch.softmax(x, dim=1)`: the maximum is subtracted first and Σ exp is accumulated in Double.
/// Loops run over whole channel planes (contiguous memory) with per-position accumulators, one
/// image per task, so the order of every sum is fixed.
public enum ChannelSoftmax {
    /// Calls body(x offset of the image, positions per plane, channels) for each image.
    static func forEachImage(_ shape: [Int], _ body: (_ base: Int, _ inner: Int, _ channels: Int) -> Void) {
        let n = shape[0], c = shape[1], inner = shape.dropFirst(2).reduce(1, *)
        Parallel.forEach(n) { image in body(image * c * inner, inner, c) }
    }

    /// Per position of one image: the channel maximum, and Σ exp(x − max) in Double.
    static func maximumAndTotal(_ xp: UnsafePointer<Float>, _ base: Int, _ inner: Int, _ channels: Int) -> ([Float], [Double]) {
        var maximum = [Float](repeating: -.infinity, count: inner)
        var total = [Double](repeating: 0, count: inner)
        for c in 0..<channels {
            let plane = xp + base + c * inner
            for p in 0..<inner { maximum[p] = max(maximum[p], plane[p]) }
        }
        for c in 0..<channels {
            let plane = xp + base + c * inner
            for p in 0..<inner { total[p] += Double(Foundation.exp(plane[p] - maximum[p])) }
        }
        return (maximum, total)
    }

    /// log softmax(x) along axis 1.
    public static func logSoftmax(_ x: Tensor) -> Tensor {
        var y = Tensor(uninitializedShape: x.shape)
        let yp = y.mutablePointer(), xp = x.pointer
        forEachImage(x.shape) { base, inner, channels in
            let (maximum, total) = maximumAndTotal(xp, base, inner, channels)
            let logTotal = total.map { Float(Foundation.log($0)) }
            for c in 0..<channels {
                let input = xp + base + c * inner, output = yp + base + c * inner
                for p in 0..<inner { output[p] = input[p] - maximum[p] - logTotal[p] }
            }
        }
        return y
    }

    /// softmax(x) along axis 1.
    public static func softmax(_ x: Tensor) -> Tensor {
        var y = Tensor(uninitializedShape: x.shape)
        let yp = y.mutablePointer(), xp = x.pointer
        forEachImage(x.shape) { base, inner, channels in
            let (maximum, total) = maximumAndTotal(xp, base, inner, channels)
            let inverse = total.map { 1 / $0 }
            for c in 0..<channels {
                let input = xp + base + c * inner, output = yp + base + c * inner
                for p in 0..<inner { output[p] = Float(Double(Foundation.exp(input[p] - maximum[p])) * inverse[p]) }
            }
        }
        return y
    }

    /// Σ_c f(c, p) per position p of one image, in Double, channels in order.
    @inline(__always)
    static func channelSums(_ inner: Int, _ channels: Int, _ term: (_ c: Int, _ p: Int) -> Double) -> [Float] {
        var total = [Double](repeating: 0, count: inner)
        for c in 0..<channels {
            for p in 0..<inner { total[p] += term(c, p) }
        }
        return total.map(Float.init)
    }

    /// Gradient of log-softmax: g − softmax·Σ_c g, with softmax = exp(output).
    public static func logSoftmaxBackward(output y: Tensor, _ g: Tensor) -> Tensor {
        var dx = Tensor(uninitializedShape: y.shape)
        let dp = dx.mutablePointer(), yp = y.pointer, gp = g.pointer
        forEachImage(y.shape) { base, inner, channels in
            let sums = channelSums(inner, channels) { c, p in Double(gp[base + c * inner + p]) }
            for c in 0..<channels {
                let offset = base + c * inner
                for p in 0..<inner { dp[offset + p] = gp[offset + p] - Foundation.exp(yp[offset + p]) * sums[p] }
            }
        }
        return dx
    }

    /// Gradient of softmax: y·(g − Σ_c g·y).
    public static func softmaxBackward(output y: Tensor, _ g: Tensor) -> Tensor {
        var dx = Tensor(uninitializedShape: y.shape)
        let dp = dx.mutablePointer(), yp = y.pointer, gp = g.pointer
        forEachImage(y.shape) { base, inner, channels in
            let dots = channelSums(inner, channels) { c, p in Double(gp[base + c * inner + p]) * Double(yp[base + c * inner + p]) }
            for c in 0..<channels {
                let offset = base + c * inner
                for p in 0..<inner { dp[offset + p] = yp[offset + p] * (gp[offset + p] - dots[p]) }
            }
        }
        return dx
    }
}
