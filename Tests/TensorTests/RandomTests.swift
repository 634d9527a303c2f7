import Tensor
import XCTest

final class RandomTests: XCTestCase {
    /// Known-answer vectors of the Random123 reference implementation (kat_vectors, philox4x32 10 rounds).
    func testPhiloxKnownAnswers() {
        let zero = Philox4x32.block(counter: (0, 0, 0, 0), key: (0, 0))
        XCTAssertEqual([zero.0, zero.1, zero.2, zero.3], [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8])
        let ones = Philox4x32.block(counter: (.max, .max, .max, .max), key: (.max, .max))
        XCTAssertEqual([ones.0, ones.1, ones.2, ones.3], [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd])
        let pi = Philox4x32.block(counter: (0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344), key: (0xa409_3822, 0x299f_31d0))
        XCTAssertEqual([pi.0, pi.1, pi.2, pi.3], [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1])
    }

    func testStreamsDoNotDependOnThreadCount() {
        let saved = Parallel.threadCount
        defer { Parallel.threadCount = saved }
        Parallel.threadCount = 1
        let serial = RandomGenerator(seed: 42, purpose: "test").normal([100_003])
        Parallel.threadCount = 4
        let parallel = RandomGenerator(seed: 42, purpose: "test").normal([100_003])
        XCTAssertEqual(serial.scalars, parallel.scalars)
    }

    func testOffsetsMakeStreamsResumable() {
        let a = RandomGenerator(seed: 1, purpose: "x")
        _ = a.uniform([10])
        let resumed = RandomGenerator(seed: 1, purpose: "x", offset: a.offset)
        XCTAssertEqual(a.uniform([7]).scalars, resumed.uniform([7]).scalars)
        XCTAssertNotEqual(RandomGenerator(seed: 1, purpose: "x").uniform([4]).scalars,
                          RandomGenerator(seed: 1, purpose: "y").uniform([4]).scalars, "purposes are separate streams")
    }

    func testDistributions() {
        let g = RandomGenerator(seed: 9, purpose: "stats")
        let n = 200_000
        let normal = g.normal([n], mean: 1, std: 2).scalars.map(Double.init)
        let mean = normal.reduce(0, +) / Double(n)
        let variance = normal.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n)
        XCTAssertEqual(mean, 1, accuracy: 0.02)
        XCTAssertEqual(variance, 4, accuracy: 0.06)
        let uniform = g.uniform([n], low: -1, high: 3).scalars
        XCTAssertGreaterThanOrEqual(uniform.min()!, -1)
        XCTAssertLessThan(uniform.max()!, 3)
        XCTAssertEqual(uniform.map(Double.init).reduce(0, +) / Double(n), 1, accuracy: 0.02)
        let bernoulli = g.bernoulli([n], p: 0.3).scalars
        XCTAssertTrue(bernoulli.allSatisfy { $0 == 0 || $0 == 1 })
        XCTAssertEqual(Double(bernoulli.reduce(0, +)) / Double(n), 0.3, accuracy: 0.005)
        let permutation = g.permutation(1000)
        XCTAssertEqual(permutation.sorted(), Array(0..<1000))
        XCTAssertNotEqual(permutation, Array(0..<1000))
    }

    /// A freed mask's memory serves the next mask of its size (the pool), and a batch mask's window
    /// holds the bytes of the whole batch's mask at that window.
    func testKeepMasksReuseFreedMemoryAndWindowsMatch() {
        let generator = RandomGenerator(seed: 5, purpose: "dropout")
        var freed: UnsafeMutablePointer<UInt8>?
        do { freed = generator.keepMask(count: 1 << 20, keep: 0.9).pointer }
        XCTAssertEqual(generator.keepMask(count: 1 << 20, keep: 0.9).pointer, freed)
        let whole = RandomGenerator(seed: 6, purpose: "dropout").batchKeepMask(shape: [4, 3, 5, 7], keep: 0.7)
        let exchange = TwoProcessExchange()
        let second = BatchReduction.withShard(BatchReduction.Split(rank: 1, ranks: 2).shard(batch: 4, exchange: exchange)) {
            RandomGenerator(seed: 6, purpose: "dropout").batchKeepMask(shape: [2, 3, 5, 7], keep: 0.7)
        }
        XCTAssertEqual(second.bytes, Array(whole.bytes[210..<420]))
    }

    /// The vectorised mask generator (16 Philox blocks per step) gives the bytes of the one-block-at-a-time
    /// reference, for lengths that end inside a vector group and a block, from a non-zero offset,
    /// across a 2^32 block-counter carry, and at the edge keep probabilities.
    func testVectorisedKeepMaskEqualsReference() {
        for (count, keep, start) in [(1, Float(0.9), UInt64(0)), (127, 0.5, 3), (128, 0.5, 0), (100_003, 0.8, 77),
                                     (5000, 0.8, (1 << 32) - 40), (999, 1.0, 5), (999, 0.0, 5), (1001, 0.99999, 1)] {
            let fast = RandomGenerator(seed: 0x1234_5678_9ABC, purpose: "dropout", offset: start)
            let slow = RandomGenerator(seed: 0x1234_5678_9ABC, purpose: "dropout", offset: start)
            let mask = fast.keepMask(count: count, keep: keep)
            let reference = slow.keepMaskReference(count: count, keep: keep)
            let mismatch = (0..<min(mask.count, reference.count)).first { mask[$0] != reference[$0] }
            XCTAssertTrue(mask.count == count && mismatch == nil, "count \(count) keep \(keep) offset \(start): first difference at \(mismatch ?? -1)")
            XCTAssertEqual(fast.offset, slow.offset)
            if count > 10_000 {
                let kept = Double(mask.bytes.reduce(0) { $0 + Int($1) }) / Double(count)
                XCTAssertEqual(kept, Double(keep), accuracy: 0.01)
            }
        }
    }
}
