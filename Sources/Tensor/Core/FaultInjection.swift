import Foundation

/// Deterministic crash points for the kill-anywhere tests: with `WORKBENCH_KILL_AT=<point>#<n>`
/// in the environment, the process kills itself with SIGKILL the n-th time it passes `point`
/// (a crash exactly there, with no timing involved). Without the variable a point costs one
/// comparison. Points: `atomic-write.partial` (half a file written), `atomic-write.before-rename`,
/// `metrics.appended`, `trainer.step`, `trainer.state-saved`, `trainer.outputs-written`.
public enum FaultInjection {
    static let target: (name: String, count: Int)? = {
        guard let value = ProcessInfo.processInfo.environment["WORKBENCH_KILL_AT"] else { return nil }
        let parts = value.split(separator: "#")
        guard parts.count == 2, let count = Int(parts[1]), count > 0 else { return nil }
        return (String(parts[0]), count)
    }()
    private static let lock = NSLock()
    nonisolated(unsafe) private static var passes = 0

    @inline(__always)
    public static func point(_ name: StaticString) {
        guard let target, target.name == "\(name)" else { return }
        lock.lock()
        passes += 1
        let reached = passes == target.count
        lock.unlock()
        if reached { kill(getpid(), SIGKILL) }
    }
}
