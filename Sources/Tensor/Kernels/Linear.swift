/// Fully connected layer kernels: y = x·Wᵀ + b with x [N, I], W [O, I] (PyTorch layout), b [O].
public enum LinearKernel {
    public static func forward(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        precondition(x.rank == 2 && weight.rank == 2 && x.shape[1] == weight.shape[1],
                     "linear: input \(x.shape) does not fit weight \(weight.shape)")
        let n = x.shape[0], i = x.shape[1], o = weight.shape[0]
        var y = Tensor(uninitializedShape: [n, o])
        let yp = y.mutablePointer()
        if let bias {
            for row in 0..<n { (yp + row * o).update(from: bias.pointer, count: o) }
        }
        BLAS.sgemm(transposeB: true, m: n, n: o, k: i, a: x.pointer, lda: i, b: weight.pointer, ldb: i,
                   beta: bias == nil ? 0 : 1, c: yp, ldc: o)
        return y
    }

    public static func backward(_ x: Tensor, weight: Tensor, gradOutput g: Tensor, needsInputGradient: Bool, hasBias: Bool)
        -> (input: Tensor?, weight: Tensor, bias: Tensor?) {
        let n = x.shape[0], i = x.shape[1], o = weight.shape[0]
        // dW = gᵀ·x per gradient group of rows, the groups added in order (see `BatchReduction`).
        var gradWeight = Tensor(uninitializedShape: weight.shape)
        let groups = BatchReduction.localGroups(localBatch: n)
        let partials = UnsafeMutablePointer<Float>.allocate(capacity: max(1, groups.count) * o * i)
        defer { partials.deallocate() }
        for (index, rows) in groups.enumerated() {
            BLAS.sgemm(transposeA: true, m: o, n: i, k: rows.count, a: g.pointer + rows.lowerBound * o, lda: o,
                       b: x.pointer + rows.lowerBound * i, ldb: i, c: partials + index * o * i, ldc: i)
        }
        BatchReduction.sumOverGroups(partials, localGroups: groups.count, count: o * i, into: gradWeight.mutablePointer())
        var gradInput: Tensor?
        if needsInputGradient {
            var gx = Tensor(uninitializedShape: x.shape)
            BLAS.sgemm(m: n, n: i, k: o, a: g.pointer, lda: o, b: weight.pointer, ldb: i, c: gx.mutablePointer(), ldc: i)
            gradInput = gx
        }
        var gradBias: Tensor?
        if hasBias {
            let rows = (0..<(n * o)).map { Double(g.pointer[$0]) }
            gradBias = Tensor(shape: [o], scalars: BatchReduction.sumOverImages(rows, width: o).map { Float($0) })
        }
        return (gradInput, gradWeight, gradBias)
    }
}
