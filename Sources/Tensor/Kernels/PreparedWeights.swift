import Foundation

/// Forms that kernels derive from weight tensors before their products (the GEMM's packing of a
/// convolution's weights, Winograd's transformed and packed weights), kept between calls while the
/// weights do not change. Sampling runs the same weights through a thousand forward passes, and
/// preparing them in every pass took about a tenth of a DDPM sampling step (16 images, 2 threads).
///
/// A kept form is valid while its tensor's storage is the same object at the same write version
/// (`TensorStorage.version`). A form is kept from the second call that sees a version, so training,
/// whose weights change every step, keeps nothing and prepares into the workspace slot as before.
/// Preparing is a deterministic function of the weights: kept or not, the products see the same bytes.
public final class PreparedWeights: @unchecked Sendable {
    public static let shared = PreparedWeights()

    /// Whether forms are kept (the tests turn it off to compare).
    public nonisolated(unsafe) static var enabled = true

    /// Floats kept at most, over all forms; beyond it, forms are prepared per call.
    public var limit = 1 << 28

    private struct Key: Hashable {
        let storage: ObjectIdentifier
        let form: [Int]
    }

    private final class Entry {
        weak var source: TensorStorage?
        let version: UInt64
        var kept: TensorStorage?

        init(source: TensorStorage, version: UInt64) {
            self.source = source
            self.version = version
        }
    }

    private var entries: [Key: Entry] = [:]
    private var keptFloats = 0
    private let lock = NSLock()

    /// The form of `weight` named by `form` (what it is and every size it depends on, including the
    /// GEMM kernel), `count` floats that `prepare` writes: the kept one when still valid, otherwise
    /// prepared now, into a kept buffer when this version of the weights was seen before and into
    /// workspace slot `slot` when not. Valid until the next call with the same slot or form.
    public func form(of weight: Tensor, _ form: [Int], count: Int, slot: Int,
                     prepare: (UnsafeMutablePointer<Float>) -> Void) -> UnsafeMutablePointer<Float> {
        let source = weight.storage, version = source.version
        let key = Key(storage: ObjectIdentifier(source), form: form)
        lock.lock()
        defer { lock.unlock() }
        if PreparedWeights.enabled, let entry = entries[key], entry.source === source, entry.version == version {
            if let kept = entry.kept { return kept.pointer }
            if keptFloats + count <= limit {
                let kept = TensorStorage(uninitializedCount: count)
                prepare(kept.pointer)
                entry.kept = kept
                keptFloats += count
                return kept.pointer
            }
        } else if PreparedWeights.enabled {
            if let stale = entries.updateValue(Entry(source: source, version: version), forKey: key) {
                keptFloats -= stale.kept?.count ?? 0
            } else {
                forgetReleasedWeights()
            }
        }
        let buffer = Workspace.shared.buffer(slot, count: count)
        prepare(buffer)
        return buffer
    }

    /// Drops the forms of weights that no longer exist (called when a new weight appears).
    private func forgetReleasedWeights() {
        for (key, entry) in entries where entry.source == nil {
            keptFloats -= entry.kept?.count ?? 0
            entries[key] = nil
        }
    }

    /// Drops every kept form.
    public func release() {
        lock.lock()
        entries = [:]
        keptFloats = 0
        lock.unlock()
    }

    /// Floats held by kept forms (for tests and reports).
    public var keptCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return keptFloats
    }
}
