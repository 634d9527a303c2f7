/// Kernels between class-index maps and [N, C, …] class scores: one-hot, gather, masks and
/// per-class lookups. Positions labelled `ClassLabels.ignore` give zeros everywhere.
public enum ClassIndexing {
    /// The shape [N, k, …] of per-position values with `k` channels for `labels` [N, …].
    public static func channelShape(_ labels: ClassLabels, channels k: Int) -> [Int] {
        [labels.shape[0], k] + labels.shape.dropFirst()
    }

    /// Positions per image.
    static func inner(_ labels: ClassLabels) -> Int { labels.shape.dropFirst().reduce(1, *) }

    /// [N, C, …] with 1 at each position's class and 0 elsewhere (all 0 where ignored).
    public static func oneHot(_ labels: ClassLabels, classes: Int) -> Tensor {
        var y = Tensor(zeros: channelShape(labels, channels: classes))
        let yp = y.mutablePointer(), inner = inner(labels)
        for (i, value) in labels.values.enumerated() where Int(value) < classes && value != ClassLabels.ignore {
            let image = i / inner, position = i % inner
            yp[(image * classes + Int(value)) * inner + position] = 1
        }
        return y
    }

    /// [N, 1, …]: 1 where the label counts, 0 where it is `ignore`.
    public static func validMask(_ labels: ClassLabels) -> Tensor {
        Tensor(shape: channelShape(labels, channels: 1), scalars: labels.values.map { $0 == ClassLabels.ignore ? 0 : 1 })
    }

    /// [N, 1, …]: `table[label]` at each position (0 where ignored), e.g. class weights.
    public static func lookup(_ table: [Float], _ labels: ClassLabels) -> Tensor {
        precondition(labels.largestClass.map { $0 < table.count } ?? true, "a label exceeds the \(table.count) classes")
        return Tensor(shape: channelShape(labels, channels: 1), scalars: labels.values.map { $0 == ClassLabels.ignore ? 0 : table[Int($0)] })
    }

    /// [N, 1, …]: x[n, label, …] at each position (0 where ignored).
    public static func gather(_ x: Tensor, _ labels: ClassLabels) -> Tensor {
        let classes = x.shape[1], inner = inner(labels)
        precondition(labels.largestClass.map { $0 < classes } ?? true, "a label exceeds the \(classes) classes")
        var y = Tensor(zeros: channelShape(labels, channels: 1))
        let yp = y.mutablePointer(), xp = x.pointer
        for (i, value) in labels.values.enumerated() where value != ClassLabels.ignore {
            yp[i] = xp[((i / inner) * classes + Int(value)) * inner + i % inner]
        }
        return y
    }

    /// The adjoint of `gather`: g [N, 1, …] placed at each position's class of an [N, C, …] zero tensor.
    public static func scatter(_ g: Tensor, _ labels: ClassLabels, classes: Int) -> Tensor {
        let inner = inner(labels)
        precondition(labels.largestClass.map { $0 < classes } ?? true, "a label exceeds the \(classes) classes")
        var x = Tensor(zeros: channelShape(labels, channels: classes))
        let xp = x.mutablePointer(), gp = g.pointer
        for (i, value) in labels.values.enumerated() where value != ClassLabels.ignore {
            xp[((i / inner) * classes + Int(value)) * inner + i % inner] = gp[i]
        }
        return x
    }
}
