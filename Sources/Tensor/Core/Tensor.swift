import Foundation

/// Reference-counted, 64-byte aligned Float32 memory shared by tensors until one of them writes.
public final class TensorStorage {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>
    /// Counts the tensor writes that reached this storage (`Tensor.mutablePointer` and the other
    /// write paths), so that a form derived from its contents (`PreparedWeights`) knows when it is stale.
    public internal(set) var version: UInt64 = 0

    /// Uninitialised storage; callers must write every element before reading.
    init(uninitializedCount count: Int) {
        self.count = count
        pointer = StoragePool.shared.take(count)
    }

    convenience init(zeroedCount count: Int) {
        self.init(uninitializedCount: count)
        pointer.initialize(repeating: 0, count: count)
    }

    deinit { StoragePool.shared.give(pointer, count: count) }
}

/// Keeps freed tensor memory for reuse. A training step allocates the same sizes every time, so
/// after the first step every allocation is served from here: no page faults, no zeroing by the
/// kernel, no calls into malloc for the large buffers.
public final class StoragePool: @unchecked Sendable {
    public static let shared = StoragePool()

    private let lock = NSLock()
    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var pooledBytes = 0
    /// Idle memory kept at most (bytes); beyond it, freed buffers go back to the system.
    public var limit = 3 << 30
    /// Buffers smaller than this go straight to malloc (its own caches serve them well).
    let smallest = 4096

    func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        let size = max(count, 1)
        if size >= smallest {
            lock.lock()
            if var list = free[size], let pointer = list.popLast() {
                free[size] = list
                pooledBytes -= size * MemoryLayout<Float>.stride
                lock.unlock()
                return pointer
            }
            lock.unlock()
        }
        var raw: UnsafeMutableRawPointer?
        let bytes = size * MemoryLayout<Float>.stride
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else {
            fatalError("out of memory allocating \(bytes) bytes for a tensor")
        }
        return raw.bindMemory(to: Float.self, capacity: size)
    }

    func give(_ pointer: UnsafeMutablePointer<Float>, count: Int) {
        let size = max(count, 1), bytes = size * MemoryLayout<Float>.stride
        if size >= smallest {
            lock.lock()
            if pooledBytes + bytes <= limit {
                free[size, default: []].append(pointer)
                pooledBytes += bytes
                lock.unlock()
                return
            }
            lock.unlock()
        }
        Foundation.free(pointer)
    }

    /// Returns every idle buffer to the system.
    public func drain() {
        lock.lock()
        for list in free.values { for pointer in list { Foundation.free(pointer) } }
        free = [:]
        pooledBytes = 0
        lock.unlock()
    }
}

/// A contiguous, row-major Float32 tensor (NCHW for images). A value type: copies share memory
/// until one of them is written (copy on write).
public struct Tensor: CustomStringConvertible {
    public private(set) var shape: [Int]
    public private(set) var storage: TensorStorage

    public var count: Int { storage.count }
    public var rank: Int { shape.count }

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        self.shape = shape
        storage = TensorStorage(zeroedCount: Tensor.elementCount(shape))
    }

    /// A tensor whose elements are all `value`.
    public init(repeating value: Float, shape: [Int]) {
        self.shape = shape
        storage = TensorStorage(uninitializedCount: Tensor.elementCount(shape))
        storage.pointer.initialize(repeating: value, count: storage.count)
    }

    /// A tensor holding `scalars` in row-major order.
    public init(shape: [Int], scalars: [Float]) {
        precondition(Tensor.elementCount(shape) == scalars.count,
                     "shape \(shape) needs \(Tensor.elementCount(shape)) elements, got \(scalars.count)")
        self.shape = shape
        storage = TensorStorage(uninitializedCount: scalars.count)
        scalars.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: scalars.count) }
    }

    /// A 0-dimensional tensor (shape `[]`) holding one value.
    public init(scalar: Float) { self.init(shape: [], scalars: [scalar]) }

    /// Uninitialised memory for kernels that write every element.
    public init(uninitializedShape shape: [Int]) {
        self.shape = shape
        storage = TensorStorage(uninitializedCount: Tensor.elementCount(shape))
    }

    /// The number of elements of `shape`, or nil when a dimension is negative or the product
    /// overflows (checked even in -Ounchecked builds).
    public static func checkedElementCount(_ shape: [Int]) -> Int? {
        var count = 1
        for dimension in shape {
            guard dimension >= 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            if overflow { return nil }
            count = product
        }
        return count
    }

    public static func elementCount(_ shape: [Int]) -> Int {
        shape.reduce(1) { precondition($1 >= 0, "negative dimension in \(shape)"); return $0 * $1 }
    }

    public var scalars: [Float] { Array(UnsafeBufferPointer(start: storage.pointer, count: count)) }

    /// The single value of a one-element tensor.
    public var scalarValue: Float {
        precondition(count == 1, "scalarValue needs one element, shape is \(shape)")
        return storage.pointer[0]
    }

    /// Read-only access to the elements.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer, count: count))
    }

    /// Write access; copies the memory first if another tensor shares it.
    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        makeUnique()
        return try body(UnsafeMutableBufferPointer(start: storage.pointer, count: count))
    }

    /// Read pointer for kernels.
    public var pointer: UnsafePointer<Float> { UnsafePointer(storage.pointer) }

    /// Write pointer for kernels; copies first if shared.
    public mutating func mutablePointer() -> UnsafeMutablePointer<Float> {
        makeUnique()
        return storage.pointer
    }

    private mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) {
            let copy = TensorStorage(uninitializedCount: count)
            copy.pointer.update(from: storage.pointer, count: count)
            storage = copy
        }
        storage.version &+= 1
    }

    /// The same elements under another shape of equal element count (shares memory).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var result = self
        let total = Tensor.elementCount(newShape)
        precondition(total == count, "cannot reshape \(shape) to \(newShape)")
        result.shape = newShape
        return result
    }

    public subscript(flat index: Int) -> Float {
        get { storage.pointer[index] }
        set { mutablePointer()[index] = newValue }
    }

    public var description: String {
        let preview = scalars.prefix(8).map { String(format: "%.5g", $0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(preview)\(count > 8 ? ", …" : "")])"
    }
}

extension Tensor {
    /// Dimensions of an NCHW tensor.
    public var nchw: (n: Int, c: Int, h: Int, w: Int) {
        precondition(rank == 4, "expected an NCHW tensor, shape is \(shape)")
        return (shape[0], shape[1], shape[2], shape[3])
    }

    /// Largest absolute element (0 for an empty tensor).
    public var maxAbs: Float {
        withUnsafeBufferPointer { $0.reduce(0) { max($0, abs($1)) } }
    }

    /// True when every element is finite.
    public var isFinite: Bool {
        withUnsafeBufferPointer { $0.allSatisfy { $0.isFinite } }
    }
}
