import Tensor

/// Ops over the class (channel) axis of [N, C, …] scores, for classification losses.
extension Functional {
    /// log softmax over axis 1 (F.log_softmax(x, dim=1)).
    public static func logSoftmaxChannels(_ x: Variable) -> Variable {
        let y = ChannelSoftmax.logSoftmax(x.value)
        return Tape.record(y, inputs: [x], name: "log_softmax") { g in [ChannelSoftmax.logSoftmaxBackward(output: y, g)] }
    }

    /// softmax over axis 1 (F.softmax(x, dim=1)).
    public static func softmaxChannels(_ x: Variable) -> Variable {
        let y = ChannelSoftmax.softmax(x.value)
        return Tape.record(y, inputs: [x], name: "softmax") { g in [ChannelSoftmax.softmaxBackward(output: y, g)] }
    }

    /// [N, 1, …]: x[n, label, …] per position, 0 where the label is ignored (torch.gather on dim 1).
    public static func gatherChannels(_ x: Variable, _ labels: ClassLabels) -> Variable {
        let classes = x.shape[1]
        return Tape.record(ClassIndexing.gather(x.value, labels), inputs: [x], name: "gather") { g in
            [ClassIndexing.scatter(g, labels, classes: classes)]
        }
    }

    /// Element-wise BCE on logits, no reduction (F.binary_cross_entropy_with_logits(reduction='none')),
    /// with an optional per-channel `posWeight` [C] for the positive term.
    public static func binaryCrossEntropyWithLogitsElements(_ z: Variable, target: Tensor, posWeight: [Float]? = nil) -> Variable {
        let y = LossKernel.bceWithLogitsElements(z.value, target, posWeight: posWeight)
        return Tape.record(y, inputs: [z], name: "bce_with_logits") { g in
            [LossKernel.bceWithLogitsElementsBackward(z.value, target, posWeight: posWeight, gradOutput: g)]
        }
    }
}
