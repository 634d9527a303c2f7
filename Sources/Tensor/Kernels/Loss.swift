import Foundation

/// Loss kernels (mean reduction), PyTorch semantics.
public enum LossKernel {
    /// nn.BCELoss: mean of -(y·max(log p, -100) + (1-y)·max(log1p(-p), -100)).
    public static func binaryCrossEntropy(_ p: Tensor, _ y: Tensor) -> Float {
        precondition(p.count == y.count, "BCE of shapes \(p.shape) and \(y.shape)")
        let pp = p.pointer, yp = y.pointer
        let total = Reduction.sum(count: p.count) { i in Double(bceElement(pp[i], yp[i])) }
        return Float(total / Double(p.count))
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
        let scale = gradOutput / Float(p.count)
        return Elementwise.zip(p, y) { p, y in (p - y) / max((1 - p) * p, 1e-12) * scale }
    }

    /// nn.MSELoss: mean((p - t)²).
    public static func meanSquaredError(_ p: Tensor, _ t: Tensor) -> Float {
        precondition(p.count == t.count, "MSE of shapes \(p.shape) and \(t.shape)")
        let pp = p.pointer, tp = t.pointer
        let total = Reduction.sum(count: p.count) { i in let d = Double(pp[i] - tp[i]); return d * d }
        return Float(total / Double(p.count))
    }

    /// d/dp of MSE times g: 2(p - t)/numel·g.
    public static func meanSquaredErrorBackward(_ p: Tensor, _ t: Tensor, gradOutput: Float) -> Tensor {
        let scale = 2 * gradOutput / Float(p.count)
        return Elementwise.zip(p, t) { ($0 - $1) * scale }
    }
}
