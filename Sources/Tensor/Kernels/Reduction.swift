/// Deterministic reductions: each parallel chunk is fixed by the problem size and summed in Double,
/// and the chunk sums are combined in order, so results do not depend on scheduling.
public enum Reduction {
    /// Number of fixed chunks for a full reduction (independent of the thread count, so sums are
    /// identical whatever `Parallel.threadCount` is).
    static let chunkCount = 64

    /// Σ x over all elements, accumulated in Double.
    public static func sum(_ x: Tensor) -> Double {
        sum(count: x.count) { i in Double(x.pointer[i]) }
    }

    /// Σ term(i) for i in 0..<count, in Double, in fixed chunks.
    public static func sum(count: Int, _ term: (Int) -> Double) -> Double {
        let chunks = min(chunkCount, max(1, count / 4096))
        if chunks == 1 {
            var total = 0.0
            for i in 0..<count { total += term(i) }
            return total
        }
        var partials = [Double](repeating: 0, count: chunks)
        partials.withUnsafeMutableBufferPointer { partials in
            Parallel.forEach(chunks) { chunk in
                var total = 0.0
                for i in (count * chunk / chunks)..<(count * (chunk + 1) / chunks) { total += term(i) }
                partials[chunk] = total
            }
        }
        return partials.reduce(0, +)
    }

    /// Per-channel sums of an [N, C, …] tensor over its images → [C]: one Double partial per image
    /// and channel, added image after image (across processes too, see `BatchReduction`).
    public static func sumPerChannel(_ x: Tensor) -> Tensor {
        let n = x.shape[0], c = x.shape[1]
        let inner = x.count / max(n * c, 1)
        var partials = [Double](repeating: 0, count: n * c)
        let p = x.pointer
        partials.withUnsafeMutableBufferPointer { partials in
            Parallel.forEach(n * c, grain: 4) { plane in
                var total = 0.0
                for i in 0..<inner { total += Double(p[plane * inner + i]) }
                partials[plane] = total
            }
        }
        return Tensor(shape: [c], scalars: BatchReduction.sumOverImages(partials, width: c).map { Float($0) })
    }
}
