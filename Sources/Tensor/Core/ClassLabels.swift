/// A map of class indices, [N, H, W] (or any [N, …]), one byte per position; `ignore` (255, VOC's
/// void) marks positions that no loss or metric counts.
public struct ClassLabels: Sendable, Equatable {
    public static let ignore: UInt8 = 255
    public var shape: [Int]
    public var values: [UInt8]

    public init(shape: [Int], values: [UInt8]) {
        precondition(Tensor.elementCount(shape) == values.count, "labels of shape \(shape) need \(Tensor.elementCount(shape)) values")
        self.shape = shape
        self.values = values
    }

    public var count: Int { values.count }
    /// The largest index that is not `ignore`, or nil when every position is ignored.
    public var largestClass: Int? { values.lazy.filter { $0 != ClassLabels.ignore }.max().map(Int.init) }
}
