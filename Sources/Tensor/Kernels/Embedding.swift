/// Table lookups (nn.Embedding): rows of a table [K, D] by index, and the table's gradient.
public enum EmbeddingKernel {
    /// y[b] = table[indices[b]] → [B, D].
    public static func forward(table: Tensor, indices: [Int]) -> Tensor {
        let (rows, width) = (table.shape[0], table.shape[1])
        var y = Tensor(uninitializedShape: [indices.count, width])
        let yp = y.mutablePointer()
        for (b, index) in indices.enumerated() {
            precondition(index >= 0 && index < rows, "embedding index \(index) outside the table's \(rows) rows")
            (yp + b * width).update(from: table.pointer + index * width, count: width)
        }
        return y
    }

    /// dtable[k] = Σ_{b: indices[b] = k} g[b]: each image's row is its partial, added image after
    /// image (across data-parallel processes too, see `BatchReduction`).
    public static func backward(gradOutput g: Tensor, indices: [Int], rows: Int) -> Tensor {
        let width = g.shape[1], size = rows * width
        var partials = [Double](repeating: 0, count: indices.count * size)
        for (b, index) in indices.enumerated() {
            for j in 0..<width { partials[b * size + index * width + j] = Double(g.pointer[b * width + j]) }
        }
        return Tensor(shape: [rows, width], scalars: BatchReduction.sumOverImages(partials, width: size).map(Float.init))
    }
}
