/// Fully connected layer kernels: y = x·Wᵀ + b with x [N, I], W [O, I] (PyTorch layout), b [O].
public enum LinearKernel {
    public static func forward(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        precondition(x.rank == 2 && weight.rank == 2 && x.shape[1] == weight.shape[1],
                     "linear: input \(x.shape) does not fit weight \(weight.shape)")
        let n = x.shape[0], i = x.shape[1], o = weight.shape[0]
        var y = Tensor(uninitializedShape: [n, o])
        let yp = y.mutablePointer()
        if n > 4 && o > 4 && BLAS.packedCount(m: o, k: i) > 0 {
            // yᵀ = W·xᵀ with W as the shared operand, whose packing is kept while W does not change
            // (`PreparedWeights`; sampling runs the same weights a thousand times): every element is
            // the same sum in the same order as in x·Wᵀ, so the bytes are those of the product below.
            let shared = BLAS.share(weight: weight, transposeA: false, m: o, k: i, slot: Workspace.sharedOperandSlot)
            let transposed = Workspace.shared.buffer(Workspace.sharedOperandSlot + 1, count: o * n)
            if let bias {
                for row in 0..<o { (transposed + row * n).update(repeating: bias[flat: row], count: n) }
            }
            BLAS.sgemm(shared: shared, transposeB: true, n: n, b: x.pointer, ldb: i, beta: bias == nil ? 0 : 1,
                       c: transposed, ldc: n, parallel: true)
            for row in 0..<n {
                for column in 0..<o { yp[row * o + column] = transposed[column * n + row] }
            }
            return y
        }
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
