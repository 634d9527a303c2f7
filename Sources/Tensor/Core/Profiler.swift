import Foundation

/// Timing of kernels for `workbench bench --profile`: named totals when enabled, and convolution
/// FLOPs and time always (they cost two clock reads per convolution).
public enum Profiler {
    public nonisolated(unsafe) static var isEnabled = false
    nonisolated(unsafe) static var totals: [String: (seconds: Double, calls: Int)] = [:]
    nonisolated(unsafe) static var order: [String] = []
    /// FLOPs (2 per multiply-add) of convolution forward and backward passes so far.
    public nonisolated(unsafe) static var convolutionFLOPs: Double = 0
    /// Seconds spent inside convolution kernels so far.
    public nonisolated(unsafe) static var convolutionSeconds: Double = 0

    @inline(__always)
    public static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    /// Runs `body`, adding its time to `name` when profiling is on.
    @inline(__always)
    public static func measure<R>(_ name: @autoclosure () -> String, _ body: () throws -> R) rethrows -> R {
        guard isEnabled else { return try body() }
        let start = now()
        let result = try body()
        add(name(), now() - start)
        return result
    }

    static func add(_ name: String, _ seconds: Double) {
        if let existing = totals[name] {
            totals[name] = (existing.seconds + seconds, existing.calls + 1)
        } else {
            totals[name] = (seconds, 1)
            order.append(name)
        }
    }

    public static func reset() {
        totals = [:]
        order = []
        convolutionFLOPs = 0
        convolutionSeconds = 0
    }

    /// (name, seconds, calls) in first-seen order.
    public static var report: [(name: String, seconds: Double, calls: Int)] {
        order.map { ($0, totals[$0]!.seconds, totals[$0]!.calls) }
    }
}
