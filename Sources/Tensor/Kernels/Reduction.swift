import CKernels
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
            // wb_sum: sixteen float64 lanes (a sequential float64 sum waits on each addition's latency).
            Parallel.forEach(n * c, grain: 4) { plane in partials[plane] = wb_sum(p + plane * inner, inner) }
        }
        return Tensor(shape: [c], scalars: BatchReduction.sumOverImages(partials, width: c).map { Float($0) })
    }

    /// Σ term(i) over the `count` elements of a batch of `images` (image-major): one Double partial
    /// per image, added in image order — across the processes of a data-parallel step too.
    public static func batchSum(count: Int, images: Int, _ term: (Int) -> Double) -> Double {
        guard images > 0 else { return BatchReduction.sumOverImages([], width: 1)[0] }
        let perImage = count / images
        var partials = [Double](repeating: 0, count: images)
        partials.withUnsafeMutableBufferPointer { partials in
            Parallel.forEach(images) { image in
                var total = 0.0
                for i in (image * perImage)..<((image + 1) * perImage) { total += term(i) }
                partials[image] = total
            }
        }
        return BatchReduction.sumOverImages(partials, width: 1)[0]
    }

    /// Σ x over a batch [N, …] (see `batchSum(count:images:_:)`).
    public static func batchSum(_ x: Tensor) -> Double {
        let p = x.pointer
        return batchSum(count: x.count, images: x.shape.first ?? 1) { Double(p[$0]) }
    }

    /// Elements of the whole batch that `x` [N, …] is (part of).
    public static func batchElementCount(_ x: Tensor) -> Int {
        guard let images = x.shape.first, images > 0 else { return x.count }
        return x.count / images * BatchReduction.globalBatch(local: images)
    }
}
