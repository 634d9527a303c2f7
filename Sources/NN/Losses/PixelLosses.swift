import Autograd
import Tensor

/// A loss over per-pixel class scores (logits [N, C, H, W]) against class labels [N, H, W], with
/// void (`ClassLabels.ignore`) excluded, as segmentation users know them from PyTorch,
/// segmentation_models.pytorch and mmsegmentation. Each is composed from differentiable ops.
public enum PixelLoss: Sendable, Equatable {
    /// Softmax cross-entropy: nn.CrossEntropyLoss(weight, ignore_index=255, label_smoothing).
    case crossEntropy(classWeights: [Float]?, labelSmoothing: Float)
    /// Per-class sigmoid BCE against one-hot targets: nn.BCEWithLogitsLoss(pos_weight) averaged
    /// over the non-void elements (the workbench's `onehot` formulation).
    case binaryCrossEntropy(posWeight: [Float]?)
    /// Soft Dice on softmax probabilities per class over the batch, 1 − (I + s)/(½(ΣP + ΣT) + s), as
    /// a mean over classes where classes absent from the batch count 0:
    /// segmentation_models.pytorch's DiceLoss("multiclass", smooth, eps, ignore_index=255).
    case dice(smooth: Float, eps: Float)
    /// Sigmoid focal loss, each class's mean over non-void pixels averaged over classes:
    /// segmentation_models.pytorch's FocalLoss("multiclass", alpha, gamma, ignore_index=255).
    case focal(gamma: Float, alpha: Float?)

    /// Whether predictions come from a softmax over classes (else independent sigmoids).
    public var usesSoftmax: Bool {
        switch self {
        case .crossEntropy, .dice: return true
        case .binaryCrossEntropy, .focal: return false
        }
    }

    public func callAsFunction(_ logits: Variable, _ labels: ClassLabels) -> Variable {
        switch self {
        case .crossEntropy(let weights, let smoothing):
            return PixelLoss.crossEntropy(logits, labels, classWeights: weights, labelSmoothing: smoothing)
        case .binaryCrossEntropy(let posWeight):
            return PixelLoss.binaryCrossEntropy(logits, labels, posWeight: posWeight)
        case .dice(let smooth, let eps):
            return PixelLoss.dice(logits, labels, smooth: smooth, eps: eps)
        case .focal(let gamma, let alpha):
            return PixelLoss.focal(logits, labels, gamma: gamma, alpha: alpha)
        }
    }

    /// Σ x / d over a batch x [N, …] for a constant denominator d; 0 (with a zero gradient) when d is
    /// 0, e.g. a batch that is void everywhere (where PyTorch would give NaN). Sums over the batch are
    /// `batchSum`s, so a data-parallel step computes the loss of the whole batch.
    static func sumOver(_ x: Variable, denominator: Double) -> Variable {
        Functional.scale(Functional.batchSum(x), denominator > 0 ? Float(1 / denominator) : 0)
    }

    public static func crossEntropy(_ logits: Variable, _ labels: ClassLabels, classWeights: [Float]? = nil,
                                    labelSmoothing: Float = 0) -> Variable {
        let classes = logits.shape[1]
        let logProbabilities = Functional.logSoftmaxChannels(logits)
        // Per-pixel weight: w[label] (1 without class weights), 0 on void.
        let pixelWeights = classWeights.map { ClassIndexing.lookup($0, labels) } ?? ClassIndexing.validMask(labels)
        let denominator = Reduction.batchSum(pixelWeights)
        let picked = Functional.gatherChannels(logProbabilities, labels)
        let nll = Functional.negate(sumOver(Functional.multiply(picked, Variable(pixelWeights)), denominator: denominator))
        guard labelSmoothing > 0 else { return nll }
        // PyTorch's smoothing term: −Σ_c w_c·log p_c per non-void pixel, normalised like the NLL.
        let channelWeights = Tensor(shape: [1, classes, 1, 1], scalars: classWeights ?? Array(repeating: 1, count: classes))
        let weighted = Functional.sum(Functional.multiply(logProbabilities, Variable(channelWeights)), axes: [1], keepDims: true)
        let smooth = Functional.negate(sumOver(Functional.multiply(weighted, Variable(ClassIndexing.validMask(labels))), denominator: denominator))
        return Functional.add(Functional.scale(nll, 1 - labelSmoothing), Functional.scale(smooth, labelSmoothing / Float(classes)))
    }

    public static func binaryCrossEntropy(_ logits: Variable, _ labels: ClassLabels, posWeight: [Float]? = nil) -> Variable {
        let classes = logits.shape[1]
        let targets = ClassIndexing.oneHot(labels, classes: classes)
        let valid = Broadcast.zip(Tensor(zeros: logits.shape), ClassIndexing.validMask(labels), +)
        guard let posWeight else {
            // The fused op (one pass, Double sums): what the `onehot` formulation has always run.
            return Functional.binaryCrossEntropyWithLogits(logits, target: targets, weight: valid)
        }
        let elements = Functional.binaryCrossEntropyWithLogitsElements(logits, target: targets, posWeight: posWeight)
        return sumOver(Functional.multiply(elements, Variable(valid)), denominator: Reduction.batchSum(valid))
    }

    public static func dice(_ logits: Variable, _ labels: ClassLabels, smooth: Float = 1, eps: Float = 1e-7) -> Variable {
        let classes = logits.shape[1]
        let valid = Variable(ClassIndexing.validMask(labels))
        let targets = ClassIndexing.oneHot(labels, classes: classes)
        let probabilities = Functional.multiply(Functional.softmaxChannels(logits), valid)
        let axes = [0] + Array(2..<logits.shape.count)
        let intersection = Functional.sum(Functional.multiply(probabilities, Variable(targets)), axes: axes)
        let cardinality = Functional.sum(Functional.add(probabilities, Variable(targets)), axes: axes)
        // smp ≥ 0.5 computes Dice as Tversky with α = β = ½, which places the smoothing term so.
        let score = Functional.divide(Functional.add(intersection, scalar: smooth),
                                      Functional.clampMin(Functional.add(Functional.scale(cardinality, 0.5), scalar: smooth), eps))
        // Classes with no pixel in the batch do not count (their loss is 0 but still averaged).
        let present = Broadcast.sum(targets, to: [1, classes] + Array(repeating: 1, count: logits.shape.count - 2), overImages: true)
        let mask = Tensor(shape: [classes], scalars: present.scalars.map { $0 > 0 ? 1 : 0 })
        let perClass = Functional.multiply(Functional.add(Functional.negate(score), scalar: 1), Variable(mask))
        return Functional.mean(perClass)
    }

    public static func focal(_ logits: Variable, _ labels: ClassLabels, gamma: Float = 2, alpha: Float? = nil) -> Variable {
        let classes = logits.shape[1]
        let targets = ClassIndexing.oneHot(labels, classes: classes)
        let valid = ClassIndexing.validMask(labels)
        let bce = Functional.binaryCrossEntropyWithLogitsElements(logits, target: targets)
        let pt = Functional.exp(Functional.negate(bce))
        var loss = Functional.multiply(Functional.pow(Functional.add(Functional.negate(pt), scalar: 1), gamma), bce)
        if let alpha {
            loss = Functional.multiply(loss, Variable(Elementwise.map(targets) { alpha * $0 + (1 - alpha) * (1 - $0) }))
        }
        // Each class's mean over the same non-void pixels, averaged over classes.
        return sumOver(Functional.multiply(loss, Variable(valid)), denominator: Reduction.batchSum(valid) * Double(classes))
    }
}

/// A weighted sum of pixel losses (e.g. CE 1.0 + Dice 3.0, as mmsegmentation's U-Net configs).
public struct CombinedPixelLoss: Sendable, Equatable {
    public var terms: [(loss: PixelLoss, weight: Double)]

    public init(_ terms: [(loss: PixelLoss, weight: Double)]) { self.terms = terms }

    public static func == (a: CombinedPixelLoss, b: CombinedPixelLoss) -> Bool {
        a.terms.count == b.terms.count && zip(a.terms, b.terms).allSatisfy { $0.loss == $1.loss && $0.weight == $1.weight }
    }

    /// Predictions follow the first term: softmax for cross-entropy and Dice, sigmoids otherwise.
    public var usesSoftmax: Bool { terms.first?.loss.usesSoftmax ?? false }

    public func callAsFunction(_ logits: Variable, _ labels: ClassLabels) -> Variable {
        var total: Variable?
        for (loss, weight) in terms {
            // A single term of weight 1 is the loss itself, unscaled (bit-identical to using it alone).
            let term = weight == 1 ? loss(logits, labels) : Functional.scale(loss(logits, labels), Float(weight))
            total = total.map { Functional.add($0, term) } ?? term
        }
        return total!
    }
}
