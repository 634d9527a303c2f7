/// Dropout's keep mask: one byte per element, 1 where the element is kept. Its bytes live in pooled
/// tensor memory (`StoragePool`), so that a training step's masks reuse the pages of the last step's
/// instead of faulting in fresh ones (a third to a half of a mask's cost on the DDPM step).
public final class KeepMask {
    /// Elements (bytes).
    public let count: Int
    private let storage: TensorStorage

    /// Uninitialised bytes; the generator writes every one.
    init(uninitializedCount count: Int) {
        self.count = count
        storage = TensorStorage(uninitializedCount: (count + 3) / 4)
    }

    /// The bytes, for kernels.
    public var pointer: UnsafeMutablePointer<UInt8> {
        UnsafeMutableRawPointer(storage.pointer).assumingMemoryBound(to: UInt8.self)
    }

    public subscript(index: Int) -> UInt8 {
        precondition(index >= 0 && index < count, "keep mask index \(index) outside 0..<\(count)")
        return pointer[index]
    }

    /// A copy of the bytes.
    public var bytes: [UInt8] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}

extension Optional where Wrapped == KeepMask {
    /// The mask's bytes (nil when there is no mask), kept alive for the duration of `body`.
    public func withOptionalBuffer<R>(_ body: (UnsafePointer<UInt8>?) -> R) -> R {
        switch self {
        case .some(let mask): return withExtendedLifetime(mask) { body(mask.pointer) }
        case .none: return body(nil)
        }
    }
}
