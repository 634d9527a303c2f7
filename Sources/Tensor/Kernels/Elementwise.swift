import CKernels
import Foundation

/// Element-wise kernels, parallel over fixed chunks (the results do not depend on scheduling).
public enum Elementwise {
    @usableFromInline static let grain = 16_384

    /// y[i] = f(x[i])
    @inlinable @inline(__always)
    public static func map(_ x: Tensor, _ f: (Float) -> Float) -> Tensor {
        var y = Tensor(uninitializedShape: x.shape)
        let yp = y.mutablePointer(), xp = x.pointer
        Parallel.forRanges(x.count, grain: grain) { range in
            for i in range { yp[i] = f(xp[i]) }
        }
        return y
    }

    /// z[i] = f(a[i], b[i]) for equal shapes.
    @inlinable @inline(__always)
    public static func zip(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        precondition(a.count == b.count, "element-wise op on shapes \(a.shape) and \(b.shape)")
        var z = Tensor(uninitializedShape: a.shape)
        let zp = z.mutablePointer(), ap = a.pointer, bp = b.pointer
        Parallel.forRanges(a.count, grain: grain) { range in
            for i in range { zp[i] = f(ap[i], bp[i]) }
        }
        return z
    }

    /// w[i] = f(a[i], b[i], c[i]) for equal shapes.
    @inlinable @inline(__always)
    public static func zip3(_ a: Tensor, _ b: Tensor, _ c: Tensor, _ f: (Float, Float, Float) -> Float) -> Tensor {
        precondition(a.count == b.count && a.count == c.count, "element-wise op on shapes \(a.shape), \(b.shape), \(c.shape)")
        var z = Tensor(uninitializedShape: a.shape)
        let zp = z.mutablePointer(), ap = a.pointer, bp = b.pointer, cp = c.pointer
        Parallel.forRanges(a.count, grain: grain) { range in
            for i in range { zp[i] = f(ap[i], bp[i], cp[i]) }
        }
        return z
    }

    /// y = kernel(x) for a C kernel over contiguous ranges (vectorised activations).
    static func map(_ x: Tensor, kernel: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
        var y = Tensor(uninitializedShape: x.shape)
        let yp = y.mutablePointer(), xp = x.pointer
        Parallel.forRanges(x.count, grain: grain) { range in kernel(xp + range.lowerBound, yp + range.lowerBound, range.count) }
        return y
    }

    /// z = kernel(a, b) for a C kernel over contiguous ranges.
    static func zip(_ a: Tensor, _ b: Tensor,
                    kernel: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
        precondition(a.count == b.count, "element-wise op on shapes \(a.shape) and \(b.shape)")
        var z = Tensor(uninitializedShape: a.shape)
        let zp = z.mutablePointer(), ap = a.pointer, bp = b.pointer
        Parallel.forRanges(a.count, grain: grain) { range in
            kernel(ap + range.lowerBound, bp + range.lowerBound, zp + range.lowerBound, range.count)
        }
        return z
    }

    /// a += b in place (gradient accumulation).
    public static func accumulate(_ a: inout Tensor, _ b: Tensor) {
        precondition(a.count == b.count, "accumulating \(b.shape) into \(a.shape)")
        let ap = a.mutablePointer(), bp = b.pointer
        Parallel.forRanges(a.count, grain: grain) { range in
            for i in range { ap[i] += bp[i] }
        }
    }

    // Loops over pointer ranges with the operator written out, so that they vectorise: an operator
    // passed as a closure into a parallel region is called once per element (seen in profiles of
    // the DDPM's residual additions).
    public static func add(_ a: Tensor, _ b: Tensor) -> Tensor {
        zip(a, b) { a, b, z, n in for i in 0..<n { z[i] = a[i] + b[i] } }
    }
    public static func subtract(_ a: Tensor, _ b: Tensor) -> Tensor {
        zip(a, b) { a, b, z, n in for i in 0..<n { z[i] = a[i] - b[i] } }
    }
    public static func multiply(_ a: Tensor, _ b: Tensor) -> Tensor {
        zip(a, b) { a, b, z, n in for i in 0..<n { z[i] = a[i] * b[i] } }
    }
    public static func scale(_ a: Tensor, _ s: Float) -> Tensor { map(a) { $0 * s } }

    /// x [N, C, …] + v broadcast per channel, where v is [C] or [N, C].
    public static func addPerChannel(_ x: Tensor, _ v: Tensor) -> Tensor {
        let n = x.shape[0], c = x.shape[1]
        let inner = x.count / max(n * c, 1)
        precondition(v.count == c || v.count == n * c, "cannot broadcast \(v.shape) over the channels of \(x.shape)")
        let perImage = v.count == n * c
        var y = Tensor(uninitializedShape: x.shape)
        let yp = y.mutablePointer(), xp = x.pointer, vp = v.pointer
        Parallel.forEach(n * c, grain: 4) { plane in
            let value = vp[perImage ? plane : plane % c]
            for i in 0..<inner { yp[plane * inner + i] = xp[plane * inner + i] + value }
        }
        return y
    }

    /// Gradient of `addPerChannel` for v: sums over the broadcast axes.
    public static func sumForPerChannel(_ g: Tensor, perImage: Bool) -> Tensor {
        if !perImage { return Reduction.sumPerChannel(g) }
        let n = g.shape[0], c = g.shape[1]
        let inner = g.count / max(n * c, 1)
        var r = Tensor(uninitializedShape: [n, c])
        let rp = r.mutablePointer(), gp = g.pointer
        Parallel.forEach(n * c) { plane in
            var total = 0.0
            for i in 0..<inner { total += Double(gp[plane * inner + i]) }
            rp[plane] = Float(total)
        }
        return r
    }
}

/// Activation functions, forward and backward side by side (PyTorch semantics).
public enum Activation {
    /// y = x > 0 ? x : slope·x
    public static func leakyReLU(_ x: Tensor, slope: Float = 0.01) -> Tensor {
        Elementwise.map(x) { $0 > 0 ? $0 : $0 * slope }
    }

    /// The slope at exactly 0 is `slope`, as in PyTorch (which tests x > 0).
    public static func leakyReLUBackward(_ x: Tensor, _ g: Tensor, slope: Float = 0.01) -> Tensor {
        Elementwise.zip(x, g) { $0 > 0 ? $1 : $1 * slope }
    }

    public static func relu(_ x: Tensor) -> Tensor { Elementwise.map(x) { $0 > 0 ? $0 : 0 } }
    public static func reluBackward(_ x: Tensor, _ g: Tensor) -> Tensor { Elementwise.zip(x, g) { $0 > 0 ? $1 : 0 } }

    @inline(__always)
    public static func sigmoid(_ v: Float) -> Float { 1 / (1 + Foundation.exp(-v)) }

    public static func sigmoid(_ x: Tensor) -> Tensor { Elementwise.map(x) { wb_sigmoid($0, $1, $2) } }

    /// Uses the output: dx = g·y·(1-y), exactly 0 where y saturated to 0 or 1.
    public static func sigmoidBackward(output y: Tensor, _ g: Tensor) -> Tensor {
        Elementwise.zip(y, g) { y, g in g * (y * (1 - y)) }
    }

    /// SiLU (swish): x·sigmoid(x), computed as x / (1 + exp(-x)) like PyTorch.
    public static func silu(_ x: Tensor) -> Tensor { Elementwise.map(x) { wb_silu($0, $1, $2) } }

    /// dx = g·s·(1 + x·(1 − s)), s = sigmoid(x).
    public static func siluBackward(_ x: Tensor, _ g: Tensor) -> Tensor { Elementwise.zip(x, g) { wb_silu_backward($0, $1, $2, $3) } }
}
