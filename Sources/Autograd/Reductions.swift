import Tensor

/// Sums and means over chosen axes (torch.sum / torch.mean with `dim` and `keepdim`), in Double.
extension Functional {
    /// The shape with each of `axes` set to 1 (negative axes count from the end).
    static func reducedShape(_ shape: [Int], axes: [Int]) -> [Int] {
        var kept = shape
        for axis in axes {
            let index = axis < 0 ? axis + shape.count : axis
            precondition(index >= 0 && index < shape.count, "axis \(axis) of a rank-\(shape.count) tensor")
            kept[index] = 1
        }
        return kept
    }

    /// Σ over `axes`; with `keepDims` the reduced axes stay as size 1.
    public static func sum(_ x: Variable, axes: [Int], keepDims: Bool = false) -> Variable {
        let kept = reducedShape(x.shape, axes: axes)
        let dropped = keepDims ? kept : kept.enumerated().filter { !axes.map { $0 < 0 ? $0 + x.shape.count : $0 }.contains($0.offset) }.map(\.element)
        let shape = x.shape
        // A sum over axis 0 is a sum over the batch's images: in image order, across data-parallel processes too.
        let overImages = axes.contains { $0 == 0 || $0 == -shape.count }
        let y = Broadcast.sum(x.value, to: kept, overImages: overImages).reshaped(dropped)
        return Tape.record(y, inputs: [x], name: "sum") { g in
            [Broadcast.zip(Tensor(zeros: shape), g.reshaped(kept), +)]
        }
    }

    /// Σ over every element of a batch [N, …] (one partial per image, added in image order, across
    /// data-parallel processes too), as a 0-dim tensor.
    public static func batchSum(_ x: Variable) -> Variable {
        let shape = x.shape
        return Tape.record(Tensor(scalar: Float(Reduction.batchSum(x.value))), inputs: [x], name: "batch sum") { g in
            [Tensor(repeating: g.scalarValue, shape: shape)]
        }
    }

    /// Mean over `axes`.
    public static func mean(_ x: Variable, axes: [Int], keepDims: Bool = false) -> Variable {
        let kept = reducedShape(x.shape, axes: axes)
        let count = x.value.count / max(Tensor.elementCount(kept), 1)
        return scale(sum(x, axes: axes, keepDims: keepDims), 1 / Float(count))
    }
}
