/// NumPy/PyTorch broadcasting: shapes are aligned at their trailing axes, and an axis of size 1
/// (or a missing leading axis) repeats to match the other operand.
public enum Broadcast {
    /// The broadcast shape of `a` and `b`, or nil when an axis differs and neither is 1.
    public static func shape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        var result = [Int](repeating: 1, count: rank)
        for axis in 0..<rank {
            let x = axis - (rank - a.count) >= 0 ? a[axis - (rank - a.count)] : 1
            let y = axis - (rank - b.count) >= 0 ? b[axis - (rank - b.count)] : 1
            guard x == y || x == 1 || y == 1 else { return nil }
            result[axis] = x == 1 ? y : x
        }
        return result
    }

    /// Element strides of a tensor of `shape` read as `target` (0 along repeated axes).
    static func strides(of shape: [Int], in target: [Int]) -> [Int] {
        var strides = [Int](repeating: 0, count: target.count)
        var step = 1
        for axis in (0..<shape.count).reversed() {
            let targetAxis = axis + target.count - shape.count
            strides[targetAxis] = shape[axis] == 1 ? 0 : step
            step *= shape[axis]
        }
        return strides
    }

    /// The element offset of each row (all axes but the last) of `target`, read through `strides`.
    static func rowOffsets(_ target: [Int], strides: [Int]) -> [Int] {
        let outer = target.dropLast().reduce(1, *)
        var offsets = [Int](repeating: 0, count: outer)
        var index = [Int](repeating: 0, count: max(target.count - 1, 0))
        var offset = 0
        for row in 0..<outer {
            offsets[row] = offset
            // Odometer increment over the leading axes.
            var axis = index.count - 1
            while axis >= 0 {
                index[axis] += 1
                offset += strides[axis]
                if index[axis] < target[axis] { break }
                offset -= strides[axis] * target[axis]
                index[axis] = 0
                axis -= 1
            }
        }
        return offsets
    }

    /// z = f(a, b) over the broadcast shape (which the caller has checked exists).
    @inlinable
    public static func zip(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        // Inlined where it is called, so that f is inlined into the loop of equal shapes.
        if a.shape == b.shape { return Elementwise.zip(a, b, f) }
        return broadcastingZip(a, b, f)
    }

    /// a + b, a − b and a · b over the broadcast shape, by the vectorised loops where the shapes are equal.
    public static func add(_ a: Tensor, _ b: Tensor) -> Tensor { a.shape == b.shape ? Elementwise.add(a, b) : broadcastingZip(a, b, +) }
    public static func subtract(_ a: Tensor, _ b: Tensor) -> Tensor {
        a.shape == b.shape ? Elementwise.subtract(a, b) : broadcastingZip(a, b, -)
    }
    public static func multiply(_ a: Tensor, _ b: Tensor) -> Tensor {
        a.shape == b.shape ? Elementwise.multiply(a, b) : broadcastingZip(a, b, *)
    }

    @usableFromInline
    static func broadcastingZip(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        guard let target = shape(a.shape, b.shape) else {
            preconditionFailure("shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        var z = Tensor(uninitializedShape: target)
        guard z.count > 0 else { return z }
        let sa = strides(of: a.shape, in: target), sb = strides(of: b.shape, in: target)
        let rowsA = rowOffsets(target, strides: sa), rowsB = rowOffsets(target, strides: sb)
        let inner = target.last ?? 1, stepA = sa.last ?? 0, stepB = sb.last ?? 0
        let zp = z.mutablePointer(), ap = a.pointer, bp = b.pointer
        Parallel.forRanges(rowsA.count, grain: max(1, 16_384 / max(inner, 1))) { rows in
            for row in rows {
                let out = zp + row * inner, x = ap + rowsA[row], y = bp + rowsB[row]
                for i in 0..<inner { out[i] = f(x[i * stepA], y[i * stepB]) }
            }
        }
        return z
    }

    /// Sums `x` down to `shape` (a shape that broadcasts to x's): the adjoint of broadcasting, and a
    /// sum over the axes where `shape` has 1. Accumulated in Double in element order.
    public static func sum(_ x: Tensor, to shape: [Int], overImages: Bool = false) -> Tensor {
        if x.shape == shape { return x }
        if overImages, let images = x.shape.first, shape.first == 1, images > 0 {
            // One partial per image, added in image order (across data-parallel processes too).
            let imageShape = [1] + x.shape.dropFirst()
            let width = Tensor.elementCount(shape), perImage = x.count / images
            var partials = [Double](repeating: 0, count: images * width)
            for image in 0..<images {
                let part = Tensor(shape: imageShape, scalars: Array(UnsafeBufferPointer(start: x.pointer + image * perImage, count: perImage)))
                let totals = sumInDouble(part, to: shape)
                for i in 0..<width { partials[image * width + i] = totals[i] }
            }
            return Tensor(shape: shape, scalars: BatchReduction.sumOverImages(partials, width: width).map(Float.init))
        }
        return Tensor(shape: shape, scalars: sumInDouble(x, to: shape).map(Float.init))
    }

    private static func sumInDouble(_ x: Tensor, to shape: [Int]) -> [Double] {
        let target = x.shape
        let s = strides(of: shape, in: target)
        let rows = rowOffsets(target, strides: s)
        let inner = target.last ?? 1, step = s.last ?? 0
        var totals = [Double](repeating: 0, count: Tensor.elementCount(shape))
        let xp = x.pointer
        totals.withUnsafeMutableBufferPointer { totals in
            for (row, offset) in rows.enumerated() {
                let input = xp + row * inner
                for i in 0..<inner { totals[offset + i * step] += Double(input[i]) }
            }
        }
        return totals
    }
}
