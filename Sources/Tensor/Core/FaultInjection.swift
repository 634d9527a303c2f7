import Foundation

/// Deterministic faults for the kill-anywhere and data-parallel tests: with
/// `WORKBENCH_KILL_AT=<point>#<n>` in the environment, the process kills itself with SIGKILL the
/// n-th time it passes `point` (a crash exactly there, with no timing involved); with
/// `WORKBENCH_HANG_AT=<point>#<n>` it stops itself there with SIGSTOP (a rank that hangs). Without
/// the variables a point costs one comparison. Points: `atomic-write.partial` (half a file
/// written), `atomic-write.before-rename`, `metrics.appended`, `trainer.step`, `trainer.state-saved`,
/// `trainer.outputs-written`, and `worker.step` (a data-parallel worker rank after each step).
public enum FaultInjection {
    static func parse(_ variable: String) -> (name: String, count: Int)? {
        guard let value = ProcessInfo.processInfo.environment[variable] else { return nil }
        let parts = value.split(separator: "#")
        guard parts.count == 2, let count = Int(parts[1]), count > 0 else { return nil }
        return (String(parts[0]), count)
    }

    static let target: (name: String, count: Int, signal: Int32)? = {
        if let kill = parse("WORKBENCH_KILL_AT") { return (kill.name, kill.count, SIGKILL) }
        if let hang = parse("WORKBENCH_HANG_AT") { return (hang.name, hang.count, SIGSTOP) }
        return nil
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
        if reached { kill(getpid(), target.signal) }
    }
}
