import Dispatch
import Foundation

/// Parallel loops for the non-BLAS kernels. Work is split into a fixed number of contiguous chunks
/// that depends only on the problem size and `threadCount`, never on scheduling, so a kernel that
/// reduces within a chunk and combines chunks in order is deterministic.
public enum Parallel {
    /// Threads used by kernels (and by OpenBLAS, see `BLAS.setThreadCount`).
    public nonisolated(unsafe) static var threadCount: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Calls `body` on disjoint ranges covering `0..<count`. Runs serially when the work is small:
    /// `grain` is the least number of items worth a thread.
    @inlinable @inline(__always)
    public static func forRanges(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        let chunks = min(threadCount, max(1, count / max(grain, 1)))
        if chunks <= 1 || count <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let start = count * chunk / chunks
            let end = count * (chunk + 1) / chunks
            if start < end { body(start..<end) }
        }
    }

    /// Calls `body(i)` for every i in `0..<count`, in parallel chunks.
    @inlinable @inline(__always)
    public static func forEach(_ count: Int, grain: Int = 1, _ body: (Int) -> Void) {
        forRanges(count, grain: grain) { range in
            for i in range { body(i) }
        }
    }
}
