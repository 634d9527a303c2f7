import Tensor

/// Which images make training batch `index` (counted from the start of training): each epoch
/// shuffles the data set with its own permutation, batches take consecutive slices of it, a
/// data-parallel process takes its `split` of each batch, and a flip is drawn per (epoch, image) —
/// all pure functions of the seed, so a resumed run sees the same data as an uninterrupted one.
public struct BatchOrder: Sendable {
    public var seed: UInt64
    public var count: Int
    public var batchSize: Int
    public var split: BatchReduction.Split
    public var flip: Bool

    public init(seed: UInt64, count: Int, batchSize: Int, split: BatchReduction.Split = .whole, flip: Bool = false) {
        self.seed = seed
        self.count = count
        self.batchSize = batchSize
        self.split = split
        self.flip = flip
    }

    public var batchesPerEpoch: Int { (count + batchSize - 1) / batchSize }

    /// The epoch's shuffled order of the data set.
    public func order(epoch: Int) -> [Int] { RandomGenerator(seed: seed, purpose: "shuffle/epoch\(epoch)").permutation(count) }

    /// Images in batch `index` (all processes together).
    public func imagesInBatch(_ index: Int) -> Int { min(batchSize, count - (index % batchesPerEpoch) * batchSize) }

    /// This process's images of batch `index`, with their flips when flipping is on.
    public func batch(_ index: Int) -> (epoch: Int, indices: [Int], flips: [Bool]?) {
        let epoch = index / batchesPerEpoch, batch = index % batchesPerEpoch
        let order = order(epoch: epoch)
        let whole = order[(batch * batchSize)..<min((batch + 1) * batchSize, order.count)]
        let mine = split.images(batch: whole.count)
        let indices = Array(whole.dropFirst(mine.lowerBound).prefix(mine.count))
        let flips = flip ? indices.map { RandomGenerator(seed: seed, purpose: "augment/epoch\(epoch)/sample\($0)").nextDouble() < 0.5 } : nil
        return (epoch, indices, flips)
    }
}
