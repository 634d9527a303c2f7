import Foundation

/// Scratch memory reused across kernel calls, so that steady-state training allocates nothing
/// for im2col columns. Kernels run on one thread at a time (their inner loops are parallel).
public final class Workspace {
    private var buffers: [Int: TensorStorage] = [:]
    private let lock = NSLock()

    public nonisolated(unsafe) static let shared = Workspace()

    /// The slot of an operand packed once per kernel call (`BLAS.share`); per-thread slots are small numbers.
    public static let sharedOperandSlot = 1 << 20

    /// A buffer of at least `count` floats in `slot`; contents are unspecified. Threads working
    /// at the same time must use different slots.
    public func buffer(_ slot: Int, count: Int) -> UnsafeMutablePointer<Float> {
        lock.lock()
        defer { lock.unlock() }
        if let existing = buffers[slot], existing.count >= count { return existing.pointer }
        let storage = TensorStorage(uninitializedCount: count)
        buffers[slot] = storage
        return storage.pointer
    }

    /// Frees every buffer (for example after a large benchmark).
    public func release() {
        lock.lock()
        buffers = [:]
        lock.unlock()
    }
}
