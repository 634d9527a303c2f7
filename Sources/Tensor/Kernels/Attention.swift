import Foundation

/// Batched matrix products and the softmax of attention.
public enum AttentionKernel {
    /// C[b] = op(A[b])·op(B[b]) for a batch of row-major matrices; op(A) is m×k, op(B) k×n.
    public static func batchedMatmul(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool, alpha: Float = 1) -> Tensor {
        precondition(a.rank == 3 && b.rank == 3 && a.shape[0] == b.shape[0], "batched matmul needs [B, r, c] operands, got \(a.shape) and \(b.shape)")
        let batch = a.shape[0]
        let m = transposeA ? a.shape[2] : a.shape[1], k = transposeA ? a.shape[1] : a.shape[2]
        let n = transposeB ? b.shape[1] : b.shape[2], kb = transposeB ? b.shape[2] : b.shape[1]
        precondition(k == kb, "batched matmul inner sizes differ: \(a.shape) and \(b.shape)")
        var c = Tensor(uninitializedShape: [batch, m, n])
        batchedProducts(batch: batch, m: m, n: n, k: k, alpha: alpha,
                        a: Operand(a.pointer, stride: a.shape[1] * a.shape[2], ld: a.shape[2], transposed: transposeA),
                        b: Operand(b.pointer, stride: b.shape[1] * b.shape[2], ld: b.shape[2], transposed: transposeB),
                        c: c.mutablePointer(), cStride: m * n, ldc: n)
        return c
    }

    /// Matrix `index` of a batch at `pointer + index·stride`, rows `ld` apart, used transposed or not.
    public struct Operand {
        let pointer: UnsafePointer<Float>, stride: Int, ld: Int, transposed: Bool
        public init(_ pointer: UnsafePointer<Float>, stride: Int, ld: Int, transposed: Bool = false) {
            (self.pointer, self.stride, self.ld, self.transposed) = (pointer, stride, ld, transposed)
        }
    }

    /// C[b] = alpha·op(A[b])·op(B[b]) (m×n, rows ldc apart, matrices cStride apart) for b < batch:
    /// the operands may be strided views into larger tensors (q, k and v inside one projection).
    public static func batchedProducts(batch: Int, m: Int, n: Int, k: Int, alpha: Float = 1, a: Operand, b: Operand,
                                       c: UnsafeMutablePointer<Float>, cStride: Int, ldc: Int) {
        func product(_ index: Int, parallel: Bool) {
            let gemm = parallel ? BLAS.sgemm : BLAS.serialSgemm
            gemm(a.transposed, b.transposed, m, n, k, alpha, a.pointer + index * a.stride, a.ld, b.pointer + index * b.stride, b.ld,
                 0, c + index * cStride, ldc)
        }
        // Attention's products are small (64×64×64 at the DDPM's 8×8 level): with a product for every
        // thread, each runs whole on one thread rather than split over all of them. The own kernels'
        // bits do not depend on the split (see BLAS).
        if batch >= Parallel.threadCount {
            Parallel.forEach(batch) { product($0, parallel: false) }
        } else {
            for index in 0..<batch { product(index, parallel: true) }
        }
    }

    /// Softmax over the last axis.
    public static func softmax(_ x: Tensor) -> Tensor {
        let width = x.shape.last!, rows = x.count / width
        var y = Tensor(uninitializedShape: x.shape)
        let xp = x.pointer, yp = y.mutablePointer()
        Parallel.forEach(rows, grain: 16) { row in
            let src = xp + row * width, dst = yp + row * width
            var largest = -Float.infinity
            for i in 0..<width { largest = max(largest, src[i]) }
            var total: Float = 0
            for i in 0..<width { let e = Foundation.exp(src[i] - largest); dst[i] = e; total += e }
            let inverse = 1 / total
            for i in 0..<width { dst[i] *= inverse }
        }
        return y
    }

    /// dx = y ⊙ (g - Σ g⊙y) per row.
    public static func softmaxBackward(output y: Tensor, _ g: Tensor) -> Tensor {
        let width = y.shape.last!, rows = y.count / width
        var dx = Tensor(uninitializedShape: y.shape)
        let yp = y.pointer, gp = g.pointer, dp = dx.mutablePointer()
        Parallel.forEach(rows, grain: 16) { row in
            let base = row * width
            var dot: Float = 0
            for i in 0..<width { dot += gp[base + i] * yp[base + i] }
            for i in 0..<width { dp[base + i] = yp[base + i] * (gp[base + i] - dot) }
        }
        return dx
    }
}
