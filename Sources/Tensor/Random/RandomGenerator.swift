import CKernels
import Foundation

/// A seeded stream of random numbers for one purpose ("init", "shuffle", "dropout", …).
///
/// The Philox key is the seed; the counter is (block offset, purpose id). Every draw consumes
/// whole blocks from `offset`, and element `i` of a tensor fill always comes from block
/// `offset + i/4`, so fills run in parallel and the results never depend on the thread count.
/// Streams for different purposes never overlap, so adding a draw in one place does not shift
/// another. The whole state is `(seed, purpose, offset)`, which checkpoints store.
public final class RandomGenerator {
    public let seed: UInt64
    public let purpose: String
    public let streamID: UInt64
    /// Number of Philox blocks consumed so far.
    public var offset: UInt64

    public init(seed: UInt64, purpose: String, offset: UInt64 = 0) {
        self.seed = seed
        self.purpose = purpose
        self.streamID = RandomGenerator.stableHash(purpose)
        self.offset = offset
    }

    /// An independent stream for a sub-purpose, e.g. `generator.child("c1.layer.0.weight")`.
    public func child(_ name: String) -> RandomGenerator {
        RandomGenerator(seed: seed, purpose: purpose + "/" + name)
    }

    /// 64-bit FNV-1a: stable across runs and platforms (Swift's `Hasher` is randomly seeded).
    public static func stableHash(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return hash
    }

    @inline(__always)
    func block(_ index: UInt64) -> Philox4x32.Block {
        Philox4x32.block(
            counter: (UInt32(truncatingIfNeeded: index), UInt32(truncatingIfNeeded: index >> 32),
                      UInt32(truncatingIfNeeded: streamID), UInt32(truncatingIfNeeded: streamID >> 32)),
            key: (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32)))
    }

    @inline(__always)
    static func lane(_ b: Philox4x32.Block, _ i: Int) -> UInt32 {
        switch i & 3 {
        case 0: return b.0
        case 1: return b.1
        case 2: return b.2
        default: return b.3
        }
    }

    /// Float in [0, 1) with 24 random bits, as PyTorch forms it.
    @inline(__always)
    static func unitFloat(_ x: UInt32) -> Float { Float(x >> 8) * (1.0 / 16_777_216.0) }

    /// Double in (0, 1], safe for a logarithm.
    @inline(__always)
    static func openUnitDouble(_ x: UInt32) -> Double { (Double(x) + 1.0) * (1.0 / 4_294_967_296.0) }

    /// Fills `count` floats, calling `make(blockValues, laneIndex)`; advances the offset.
    private func fill(_ pointer: UnsafeMutablePointer<Float>, count: Int, grain: Int = 4096,
                      _ make: @escaping (Philox4x32.Block, Int) -> Float) {
        fill(pointer, window: 0..<count, of: count, grain: grain, make)
    }

    /// Fills elements `window` of a draw of `total` elements (element i from block offset + i/4,
    /// as a whole draw would), then advances the offset past the whole draw. `grain`: the least
    /// blocks worth a thread (normal draws, at a logarithm and a cosine each, are worth one sooner).
    private func fill(_ pointer: UnsafeMutablePointer<Float>, window: Range<Int>, of total: Int, grain: Int = 4096,
                      _ make: @escaping (Philox4x32.Block, Int) -> Float) {
        let firstBlock = window.lowerBound / 4, lastBlock = (window.upperBound + 3) / 4
        let base = offset
        Parallel.forRanges(lastBlock - firstBlock, grain: grain) { range in
            for b in range {
                let block = firstBlock + b
                let values = self.block(base &+ UInt64(block))
                for lane in 0..<4 where window.contains(block * 4 + lane) {
                    pointer[block * 4 + lane - window.lowerBound] = make(values, lane)
                }
            }
        }
        offset &+= UInt64((total + 3) / 4)
    }

    /// The images of `shape` ([N, …]) this process holds of a draw for the whole batch: the global
    /// batch's draw when a data-parallel step holds only part of it (`BatchReduction.shard`).
    private func batchWindow(_ shape: [Int]) -> (window: Range<Int>, total: Int) {
        let count = Tensor.elementCount(shape)
        guard let shard = BatchReduction.shard, let images = shape.first, images > 0 else { return (0..<count, count) }
        precondition(images == shard.images.count, "a batch draw of \(images) images; the shard holds \(shard.images.count)")
        let perImage = count / images
        return (shard.images.lowerBound * perImage..<shard.images.upperBound * perImage, shard.globalBatch * perImage)
    }

    /// Normal draws for a batch [N, …]: this process's images of the draw for the whole batch, so
    /// that an image's noise does not depend on how the batch is split over processes.
    public func batchNormal(_ shape: [Int]) -> Tensor {
        let (window, total) = batchWindow(shape)
        var result = Tensor(uninitializedShape: shape)
        fill(result.mutablePointer(), window: window, of: total, grain: RandomGenerator.normalGrain, RandomGenerator.normalValue)
        return result
    }

    /// Dropout's keep mask for a batch [N, …], windowed as `batchNormal`.
    public func batchKeepMask(shape: [Int], keep: Float) -> KeepMask {
        let (window, total) = batchWindow(shape)
        if window == 0..<total { return keepMask(count: total, keep: keep) }
        let first = window.lowerBound / 8, last = (window.upperBound + 7) / 8
        let saved = offset
        offset = saved &+ UInt64(first)
        let blocks = keepMask(count: (last - first) * 8, keep: keep)
        offset = saved &+ UInt64((total + 7) / 8)
        let mask = KeepMask(uninitializedCount: window.count)
        mask.pointer.update(from: blocks.pointer + (window.lowerBound - first * 8), count: window.count)
        return mask
    }

    /// A tensor of uniform draws in [low, high).
    public func uniform(_ shape: [Int], low: Float = 0, high: Float = 1) -> Tensor {
        var result = Tensor(uninitializedShape: shape)
        let scale = high - low
        fill(result.mutablePointer(), count: result.count) { block, lane in
            low + scale * RandomGenerator.unitFloat(RandomGenerator.lane(block, lane))
        }
        return result
    }

    /// A tensor of normal draws (Box-Muller on lane pairs (0,1) and (2,3) of each block).
    public func normal(_ shape: [Int], mean: Float = 0, std: Float = 1) -> Tensor {
        var result = Tensor(uninitializedShape: shape)
        fill(result.mutablePointer(), count: result.count, grain: RandomGenerator.normalGrain) { block, lane in
            mean + std * RandomGenerator.normalValue(block, lane)
        }
        return result
    }

    /// Blocks of normal draws worth a thread.
    private static let normalGrain = 256

    /// Box-Muller on lane pairs (0,1) and (2,3) of a block.
    @inline(__always)
    static func normalValue(_ block: Philox4x32.Block, _ lane: Int) -> Float {
        let pair = lane & 2
        let u1 = RandomGenerator.openUnitDouble(RandomGenerator.lane(block, pair))
        let u2 = Double(RandomGenerator.lane(block, pair + 1)) * (1.0 / 4_294_967_296.0)
        let radius = (-2.0 * Foundation.log(u1)).squareRoot()
        let angle = 2.0 * Double.pi * u2
        let z = (lane & 1) == 0 ? radius * Foundation.cos(angle) : radius * Foundation.sin(angle)
        return Float(z)
    }

    /// A tensor of Bernoulli draws: 1 with probability `p`, else 0.
    public func bernoulli(_ shape: [Int], p: Float) -> Tensor {
        var result = Tensor(uninitializedShape: shape)
        fill(result.mutablePointer(), count: result.count) { block, lane in
            RandomGenerator.unitFloat(RandomGenerator.lane(block, lane)) < p ? 1 : 0
        }
        return result
    }

    /// Dropout's keep mask: 1 with probability `keep`, else 0, one byte per element. Each element
    /// uses 16 random bits (eight per Philox block), so the threshold is keep rounded to 1/65536.
    public func keepMask(count: Int, keep: Float) -> KeepMask {
        let threshold = UInt32((Double(keep) * 65536).rounded())
        let blocks = (count + 7) / 8
        let base = offset
        // Every byte is written by the generator (no zero fill first).
        let mask = KeepMask(uninitializedCount: count), out = mask.pointer
        // Ranges of whole 16-block groups, so that the vector path covers all but the last.
        let groups = (blocks + 15) / 16
        Parallel.forRanges(groups, grain: 128) { range in
            let first = range.lowerBound * 16, last = min(blocks, range.upperBound * 16)
            wb_philox_keep_mask(seed, streamID, base &+ UInt64(first), last - first, count - first * 8,
                                threshold, out + first * 8)
        }
        offset &+= UInt64(blocks)
        return mask
    }

    /// `keepMask` one block at a time in Swift: the reference the vectorised generator is tested against.
    public func keepMaskReference(count: Int, keep: Float) -> [UInt8] {
        var mask = [UInt8](repeating: 0, count: count)
        let threshold = UInt32((Double(keep) * 65536).rounded())
        let blocks = (count + 7) / 8
        for b in 0..<blocks {
            let values = block(offset &+ UInt64(b))
            for lane in 0..<min(8, count - b * 8) {
                let bits = (RandomGenerator.lane(values, lane >> 1) >> (16 * UInt32(lane & 1))) & 0xFFFF
                mask[b * 8 + lane] = bits < threshold ? 1 : 0
            }
        }
        offset &+= UInt64(blocks)
        return mask
    }

    /// A uniformly random 64-bit value (consumes one block).
    public func nextUInt64() -> UInt64 {
        let values = block(offset)
        offset &+= 1
        return UInt64(values.0) | (UInt64(values.1) << 32)
    }

    /// A uniform integer in `0..<bound` (Lemire's multiply-shift; bias below 2^-32 for any bound used here).
    public func nextInt(below bound: Int) -> Int {
        precondition(bound > 0, "nextInt(below:) needs a positive bound")
        return Int(nextUInt64().multipliedFullWidth(by: UInt64(bound)).high)
    }

    /// A uniform Double in [0, 1) with 53 random bits.
    public func nextDouble() -> Double {
        Double(nextUInt64() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// A random permutation of `0..<count` (Fisher-Yates).
    public func permutation(_ count: Int) -> [Int] {
        var order = Array(0..<count)
        if count < 2 { return order }
        for i in stride(from: count - 1, to: 0, by: -1) {
            order.swapAt(i, nextInt(below: i + 1))
        }
        return order
    }
}
