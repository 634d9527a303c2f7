import Foundation

/// Produces batches ahead of use on one background thread. Batch `i` is always `produce(i)`, so
/// the data a step sees never depends on timing; prefetching only hides the decoding time.
public final class PrefetchingLoader<Batch> {
    private let produce: (Int) throws -> Batch
    private let depth: Int
    private let queue = DispatchQueue(label: "workbench.loader", qos: .userInitiated)
    private let condition = NSCondition()
    private var ready: [Int: Result<Batch, Error>] = [:]
    private var scheduled: Set<Int> = []
    private var closed = false

    /// `depth` batches are decoded ahead (0: decode on demand, on the caller's thread).
    public init(depth: Int, produce: @escaping (Int) throws -> Batch) {
        self.depth = depth
        self.produce = produce
    }

    /// Batch `index`, waiting for it if it is still being made; schedules the next ones.
    /// `limit` bounds what is worth prefetching.
    public func batch(_ index: Int, limit: Int) throws -> Batch {
        if depth == 0 { return try produce(index) }
        condition.lock()
        for next in index...(index + depth) where next < limit && !scheduled.contains(next) && !closed {
            scheduled.insert(next)
            queue.async { [weak self] in
                guard let self else { return }
                let result = Result { try self.produce(next) }
                self.condition.lock()
                self.ready[next] = result
                self.condition.broadcast()
                self.condition.unlock()
            }
        }
        if !scheduled.contains(index) {
            condition.unlock()
            return try produce(index)
        }
        while ready[index] == nil { condition.wait() }
        let result = ready.removeValue(forKey: index)!
        scheduled.remove(index)
        // Drop anything older that was never asked for (e.g. after a jump on resume).
        for stale in ready.keys where stale < index {
            ready.removeValue(forKey: stale)
            scheduled.remove(stale)
        }
        condition.unlock()
        return try result.get()
    }

    /// Stops scheduling; waits for work in flight.
    public func close() {
        condition.lock()
        closed = true
        condition.unlock()
        queue.sync {}
    }
}
