import Tensor

/// A batch [B, …] of Float64 values: the diffusion math runs in Double (as the reference keeps its
/// schedule), and only the network sees Float32.
public struct DoubleBatch: Equatable, Sendable {
    public var shape: [Int]
    public var values: [Double]

    public init(shape: [Int], values: [Double]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) needs \(shape.reduce(1, *)) values, got \(values.count)")
        self.shape = shape
        self.values = values
    }

    public init(zeros shape: [Int]) { self.init(shape: shape, values: Array(repeating: 0, count: shape.reduce(1, *))) }

    public init(_ tensor: Tensor) {
        self.init(shape: tensor.shape, values: tensor.withUnsafeBufferPointer { $0.map(Double.init) })
    }

    public var batch: Int { shape[0] }
    /// Elements per example.
    public var perExample: Int { values.count / max(shape[0], 1) }

    public var tensor: Tensor { Tensor(shape: shape, scalars: values.map(Float.init)) }

    /// v[b, …] = f(b, i) over every element i of example b.
    @inline(__always)
    public static func make(shape: [Int], _ f: (Int, Int) -> Double) -> DoubleBatch {
        let batch = shape[0], per = shape.reduce(1, *) / max(batch, 1)
        var values = [Double](repeating: 0, count: batch * per)
        values.withUnsafeMutableBufferPointer { out in
            for b in 0..<batch {
                for i in 0..<per { out[b * per + i] = f(b, b * per + i) }
            }
        }
        return DoubleBatch(shape: shape, values: values)
    }

    /// The channel range [from, to) of an NCHW-like batch, as its own batch.
    public func channels(_ range: Range<Int>) -> DoubleBatch {
        let channels = shape[1], inner = perExample / channels
        var out: [Double] = []
        out.reserveCapacity(batch * range.count * inner)
        for b in 0..<batch {
            out += values[(b * perExample + range.lowerBound * inner)..<(b * perExample + range.upperBound * inner)]
        }
        var newShape = shape
        newShape[1] = range.count
        return DoubleBatch(shape: newShape, values: out)
    }

    /// Mean over all but the batch axis (the reference's `meanflat`).
    public func meanFlat() -> [Double] {
        (0..<batch).map { b in values[(b * perExample)..<((b + 1) * perExample)].reduce(0, +) / Double(perExample) }
    }
}
