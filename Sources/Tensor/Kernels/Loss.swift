import Foundation

/// Loss kernels (mean reduction), PyTorch semantics. Inputs are batches [N, …]: the sums and the
/// element counts are those of the whole batch when a data-parallel step holds part of it.
public enum LossKernel {
    /// nn.BCELoss: mean of -(y·max(log p, -100) + (1-y)·max(log1p(-p), -100)).
    public static func binaryCrossEntropy(_ p: Tensor, _ y: Tensor) -> Float {
        precondition(p.count == y.count, "BCE of shapes \(p.shape) and \(y.shape)")
        let pp = p.pointer, yp = y.pointer
        let total = Reduction.batchSum(count: p.count, images: p.shape.first ?? 1) { i in Double(bceElement(pp[i], yp[i])) }
        return Float(total / Double(Reduction.batchElementCount(p)))
    }

    @inline(__always)
    public static func bceElement(_ p: Float, _ y: Float) -> Float {
        let logP = max(Foundation.log(p), -100)
        let log1mP = max(Foundation.log1p(-p), -100)
        return -(y * logP + (1 - y) * log1mP)
    }

    /// PyTorch's own backward (not the derivative of the clamped forward):
    /// g·(p - y) / max(p·(1-p), 1e-12) / numel.
    public static func binaryCrossEntropyBackward(_ p: Tensor, _ y: Tensor, gradOutput: Float) -> Tensor {
        let scale = gradOutput / Float(Reduction.batchElementCount(p))
        return Elementwise.zip(p, y) { p, y in (p - y) / max((1 - p) * p, 1e-12) * scale }
    }

    /// nn.MSELoss: mean((p - t)²).
    public static func meanSquaredError(_ p: Tensor, _ t: Tensor) -> Float {
        precondition(p.count == t.count, "MSE of shapes \(p.shape) and \(t.shape)")
        let pp = p.pointer, tp = t.pointer
        let total = Reduction.batchSum(count: p.count, images: p.shape.first ?? 1) { i in let d = Double(pp[i] - tp[i]); return d * d }
        return Float(total / Double(Reduction.batchElementCount(p)))
    }

    /// d/dp of MSE times g: 2(p - t)/numel·g.
    public static func meanSquaredErrorBackward(_ p: Tensor, _ t: Tensor, gradOutput: Float) -> Tensor {
        let scale = 2 * gradOutput / Float(Reduction.batchElementCount(p))
        return Elementwise.zip(p, t) { ($0 - $1) * scale }
    }

    /// Sigmoid + BCE on logits z in one stable expression, averaged over the elements whose
    /// `weight` is non-zero (weights are 0 or 1: void pixels carry 0):
    /// l = max(z, 0) - z·y + log(1 + exp(-|z|)).
    public static func bceWithLogits(_ z: Tensor, _ y: Tensor, weight: Tensor?) -> (loss: Float, count: Double) {
        precondition(z.count == y.count && (weight == nil || weight!.count == z.count), "BCE-with-logits shapes differ")
        let zp = z.pointer, yp = y.pointer, wp = weight?.pointer
        let images = z.shape.first ?? 1
        let total = Reduction.batchSum(count: z.count, images: images) { i in
            let w = wp.map { Double($0[i]) } ?? 1
            if w == 0 { return 0 }
            let v = zp[i]
            return w * Double(max(v, 0) - v * yp[i] + Foundation.log1p(Foundation.exp(-abs(v))))
        }
        let count = wp == nil ? Double(Reduction.batchElementCount(z)) : Reduction.batchSum(count: z.count, images: images) { Double(wp![$0]) }
        return (count > 0 ? Float(total / count) : 0, count)
    }

    /// d/dz of `bceWithLogits` times g: (sigmoid(z) - y)·w·g / count.
    public static func bceWithLogitsBackward(_ z: Tensor, _ y: Tensor, weight: Tensor?, count: Double, gradOutput: Float) -> Tensor {
        let scale = count > 0 ? gradOutput / Float(count) : 0
        if let weight {
            return Elementwise.zip3(z, y, weight) { z, y, w in (Activation.sigmoid(z) - y) * w * scale }
        }
        return Elementwise.zip(z, y) { z, y in (Activation.sigmoid(z) - y) * scale }
    }

    /// Element-wise BCE on logits z [N, C, …] (no reduction), with an optional per-channel weight
    /// of the positive term (nn.BCEWithLogitsLoss's `pos_weight`): with lw = 1 + (p_c − 1)·y,
    /// l = (1 − y)·z + lw·(log(1 + exp(−|z|)) + max(−z, 0)).
    public static func bceWithLogitsElements(_ z: Tensor, _ y: Tensor, posWeight: [Float]?) -> Tensor {
        precondition(z.count == y.count, "BCE-with-logits of shapes \(z.shape) and \(y.shape)")
        guard let posWeight else {
            return Elementwise.zip(z, y) { v, t in max(v, 0) - v * t + Foundation.log1p(Foundation.exp(-abs(v))) }
        }
        let weights = perElementChannelValues(z.shape, posWeight)
        return Elementwise.zip3(z, y, weights) { v, t, p in
            let lw = 1 + (p - 1) * t
            return (1 - t) * v + lw * (Foundation.log1p(Foundation.exp(-abs(v))) + max(-v, 0))
        }
    }

    /// d/dz of `bceWithLogitsElements` times g: (1 − y) − lw·(1 − σ(z)), i.e. σ(z) − y without `posWeight`.
    public static func bceWithLogitsElementsBackward(_ z: Tensor, _ y: Tensor, posWeight: [Float]?, gradOutput g: Tensor) -> Tensor {
        guard let posWeight else {
            return Elementwise.zip3(z, y, g) { v, t, g in (Activation.sigmoid(v) - t) * g }
        }
        let weights = perElementChannelValues(z.shape, posWeight)
        let slope = Elementwise.zip3(z, y, weights) { v, t, p in
            let lw = 1 + (p - 1) * t
            return (1 - t) - lw * (1 - Activation.sigmoid(v))
        }
        return Elementwise.multiply(slope, g)
    }

    /// values[c] broadcast over an [N, C, …] tensor.
    static func perElementChannelValues(_ shape: [Int], _ values: [Float]) -> Tensor {
        precondition(shape.count >= 2 && shape[1] == values.count, "\(values.count) per-channel values for shape \(shape)")
        return Broadcast.zip(Tensor(zeros: shape), Tensor(shape: [values.count] + Array(repeating: 1, count: shape.count - 2), scalars: values), +)
    }
}
