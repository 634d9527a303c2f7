/// Scratch memory reused across kernel calls, so that steady-state training allocates nothing
/// for im2col columns. Kernels run on one thread at a time (their inner loops are parallel).
public final class Workspace {
    private var buffers: [TensorStorage?]

    public nonisolated(unsafe) static let shared = Workspace(slots: 4)

    init(slots: Int) { buffers = Array(repeating: nil, count: slots) }

    /// A buffer of at least `count` floats in `slot`; contents are unspecified.
    public func buffer(_ slot: Int, count: Int) -> UnsafeMutablePointer<Float> {
        if let existing = buffers[slot], existing.count >= count { return existing.pointer }
        let storage = TensorStorage(uninitializedCount: count)
        buffers[slot] = storage
        return storage.pointer
    }

    /// Frees every buffer (for example after a large benchmark).
    public func release() { buffers = Array(repeating: nil, count: buffers.count) }
}
