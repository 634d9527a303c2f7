import Foundation

/// Sums over the images of a training batch, combined in one fixed order whether the batch is
/// in one process or split over several (data parallelism over MPI).
///
/// Every quantity a training step sums over images — BatchNorm statistics and their gradient sums,
/// a loss, the gradient of every parameter — is formed as partial sums that do not depend on which
/// other images are in the process: one partial per image for per-channel vectors, and one per
/// fixed *image group* for weight gradients (`groups` consecutive ranges of the global batch). The
/// partials are then added in image (group) order, starting from the first. A process that holds
/// only some of the images contributes its partials through `PartialSumExchange` and receives
/// everyone's, so N processes compute the same bits as one process with the whole batch.
public enum BatchReduction {
    /// The part of the global batch this process holds during a training step.
    public struct Shard {
        /// Images in the global batch.
        public var globalBatch: Int
        /// The global indices of this process's images; a whole number of gradient groups.
        public var images: Range<Int>
        /// Gradient groups of the global batch (`min(globalBatch, groupLimit)`).
        public var groups: Int
        public var exchange: PartialSumExchange

        public init(globalBatch: Int, images: Range<Int>, groups: Int, exchange: PartialSumExchange) {
            self.globalBatch = globalBatch
            self.images = images
            self.groups = groups
            self.exchange = exchange
        }
    }

    /// How every batch is split over the processes of a data-parallel run: rank r of N holds the
    /// gradient groups [G·r/N, G·(r+1)/N) of a batch with G groups, whole groups only.
    public struct Split: Sendable, Equatable {
        public var rank: Int
        public var ranks: Int
        public static let whole = Split(rank: 0, ranks: 1)

        public init(rank: Int, ranks: Int) {
            self.rank = rank
            self.ranks = ranks
        }

        /// Gradient groups of a global batch of `count` images.
        public static func groups(batch count: Int) -> Int { min(count, BatchReduction.groupLimit) }

        /// The global indices of this process's images in a batch of `count`.
        public func images(batch count: Int) -> Range<Int> {
            let groups = Split.groups(batch: count)
            guard groups > 0 else { return 0..<0 }
            let first = groups * rank / ranks, last = groups * (rank + 1) / ranks
            return (count * first / groups)..<(count * last / groups)
        }

        /// The shard of a batch of `count` images whose partial sums go through `exchange`.
        public func shard(batch count: Int, exchange: PartialSumExchange) -> Shard {
            Shard(globalBatch: count, images: images(batch: count), groups: Split.groups(batch: count), exchange: exchange)
        }
    }

    /// Upper bound on the gradient groups of a batch: each group keeps one partial weight gradient,
    /// and data-parallel ranks hold whole groups, so at most this many ranks share a batch.
    public static let groupLimit = 8

    /// The shard of the step being computed; nil when the whole batch is in this process.
    nonisolated(unsafe) public private(set) static var shard: Shard?

    /// Runs `body` (a forward and backward pass) with `shard` as the process's part of the batch.
    public static func withShard<R>(_ shard: Shard?, _ body: () throws -> R) rethrows -> R {
        let previous = self.shard
        self.shard = shard
        defer { self.shard = previous }
        return try body()
    }

    /// The gradient groups of a batch of `count` images, as ranges of image indices.
    public static func groupRanges(batch count: Int, groups: Int) -> [Range<Int>] {
        (0..<groups).map { (count * $0 / groups)..<(count * ($0 + 1) / groups) }
    }

    /// Images whose sums the kernels form: the global batch when sharded, else `localBatch`.
    public static func globalBatch(local localBatch: Int) -> Int {
        guard let shard else { return localBatch }
        precondition(localBatch == shard.images.count, "a batch-reducing kernel got \(localBatch) images, the shard holds \(shard.images.count)")
        return shard.globalBatch
    }

    /// The gradient groups of this process's `localBatch` images, as local index ranges.
    public static func localGroups(localBatch: Int) -> [Range<Int>] {
        guard let shard else { return groupRanges(batch: localBatch, groups: min(localBatch, groupLimit)) }
        precondition(localBatch == shard.images.count, "a batch-reducing kernel got \(localBatch) images, the shard holds \(shard.images.count)")
        return groupRanges(batch: shard.globalBatch, groups: shard.groups)
            .filter { shard.images.contains($0.lowerBound) }
            .map { ($0.lowerBound - shard.images.lowerBound)..<($0.upperBound - shard.images.lowerBound) }
    }

    /// Σ over images of per-image partials: `partials` holds `width` values per local image (image
    /// after image); the result adds all images of the global batch in order, per position.
    public static func sumOverImages(_ partials: [Double], width: Int) -> [Double] {
        let all = shard.map { $0.exchange.allGather(partials) } ?? partials
        var total = [Double](repeating: 0, count: width)
        let images = width == 0 ? 0 : all.count / width
        for image in 0..<images {
            for i in 0..<width { total[i] += all[image * width + i] }
        }
        return total
    }

    /// Σ over gradient groups: `partials` holds `localGroups` consecutive partial sums of `count`
    /// floats; writes the sum over all groups of the global batch, in group order, to `out`.
    public static func sumOverGroups(_ partials: UnsafePointer<Float>, localGroups: Int, count: Int,
                                     into out: UnsafeMutablePointer<Float>) {
        if let shard {
            let all = shard.exchange.allGather(UnsafeBufferPointer(start: partials, count: localGroups * count))
            all.withUnsafeBufferPointer { addGroups($0.baseAddress!, groups: all.count / max(count, 1), count: count, into: out) }
        } else {
            addGroups(partials, groups: localGroups, count: count, into: out)
        }
    }

    private static func addGroups(_ partials: UnsafePointer<Float>, groups: Int, count: Int, into out: UnsafeMutablePointer<Float>) {
        guard groups > 0 else {
            out.update(repeating: 0, count: count)
            return
        }
        let pieces = max(1, min(count, 64))
        Parallel.forEach(pieces) { piece in
            // Group after group over the piece (contiguous, so vectorised), which adds each element's
            // partials in group order as a sum per element would.
            let range = (count * piece / pieces)..<(count * (piece + 1) / pieces)
            let target = out + range.lowerBound
            target.update(from: partials + range.lowerBound, count: range.count)
            for group in 1..<groups {
                let source = partials + group * count + range.lowerBound
                for i in 0..<range.count { target[i] += source[i] }
            }
        }
    }
}

/// Independent pieces of work (evaluation batches, sample batches) shared by the processes of a
/// data-parallel run: each process does a contiguous part, and the results are gathered in piece
/// order, so every process ends with what one process doing all pieces would have.
public struct WorkSplit {
    public var split: BatchReduction.Split
    public var exchange: PartialSumExchange

    public init(split: BatchReduction.Split, exchange: PartialSumExchange) {
        self.split = split
        self.exchange = exchange
    }

    /// The pieces of `count` that this process does.
    public func mine(_ count: Int) -> Range<Int> {
        (count * split.rank / split.ranks)..<(count * (split.rank + 1) / split.ranks)
    }

    /// Every process's values for its pieces, concatenated in piece order (the same on every process).
    public func gather(_ values: [Double]) -> [Double] { exchange.allGather(values) }

    /// Whether this process writes files (rank 0).
    public var writesFiles: Bool { split.rank == 0 }
}

/// How the processes of a data-parallel run share partial sums (implemented over MPI).
public protocol PartialSumExchange: AnyObject {
    /// Every process's `local` values concatenated in process order (the same on every process).
    func allGather(_ local: [Double]) -> [Double]
    func allGather(_ local: UnsafeBufferPointer<Float>) -> [Float]
}
