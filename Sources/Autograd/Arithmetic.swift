import Foundation
import Tensor

/// Element-wise arithmetic with PyTorch's broadcasting, and the unary functions losses are built
/// from. Each backward sums the gradient back to its input's shape.
extension Functional {
    static func broadcastShape(_ a: Variable, _ b: Variable, _ op: String) -> [Int] {
        guard let shape = Broadcast.shape(a.shape, b.shape) else {
            preconditionFailure("\(op): shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        return shape
    }

    public static func add(_ a: Variable, _ b: Variable) -> Variable {
        _ = broadcastShape(a, b, "add")
        return Tape.record(Broadcast.add(a.value, b.value), inputs: [a, b], name: "add") { g in
            [a.requiresGrad ? Broadcast.sum(g, to: a.shape) : nil, b.requiresGrad ? Broadcast.sum(g, to: b.shape) : nil]
        }
    }

    public static func subtract(_ a: Variable, _ b: Variable) -> Variable {
        _ = broadcastShape(a, b, "subtract")
        return Tape.record(Broadcast.subtract(a.value, b.value), inputs: [a, b], name: "subtract") { g in
            [a.requiresGrad ? Broadcast.sum(g, to: a.shape) : nil,
             b.requiresGrad ? Broadcast.sum(Elementwise.scale(g, -1), to: b.shape) : nil]
        }
    }

    public static func multiply(_ a: Variable, _ b: Variable) -> Variable {
        _ = broadcastShape(a, b, "multiply")
        return Tape.record(Broadcast.multiply(a.value, b.value), inputs: [a, b], name: "multiply") { g in
            [a.requiresGrad ? Broadcast.sum(Broadcast.multiply(g, b.value), to: a.shape) : nil,
             b.requiresGrad ? Broadcast.sum(Broadcast.multiply(g, a.value), to: b.shape) : nil]
        }
    }

    public static func divide(_ a: Variable, _ b: Variable) -> Variable {
        _ = broadcastShape(a, b, "divide")
        return Tape.record(Broadcast.zip(a.value, b.value, /), inputs: [a, b], name: "divide") { g in
            // d(a/b)/da = 1/b; d(a/b)/db = −a/b².
            [a.requiresGrad ? Broadcast.sum(Broadcast.zip(g, b.value, /), to: a.shape) : nil,
             b.requiresGrad ? Broadcast.sum(Broadcast.zip(Broadcast.multiply(g, a.value), Broadcast.zip(b.value, b.value, *), /),
                                            to: b.shape).negated() : nil]
        }
    }

    /// x + s.
    public static func add(_ x: Variable, scalar s: Float) -> Variable {
        Tape.record(Elementwise.map(x.value) { $0 + s }, inputs: [x], name: "add scalar") { g in [g] }
    }

    /// −x.
    public static func negate(_ x: Variable) -> Variable { scale(x, -1) }

    public static func exp(_ x: Variable) -> Variable {
        let y = Elementwise.map(x.value) { Foundation.exp($0) }
        return Tape.record(y, inputs: [x], name: "exp") { g in [Elementwise.multiply(g, y)] }
    }

    /// Natural logarithm (−inf at 0, NaN below, as torch.log).
    public static func log(_ x: Variable) -> Variable {
        Tape.record(Elementwise.map(x.value) { Foundation.log($0) }, inputs: [x], name: "log") { g in [Elementwise.zip(g, x.value, /)] }
    }

    /// x^p for a constant exponent p ≥ 0 (torch.pow(x, p)); the gradient p·x^(p−1) is 0 for p = 0.
    public static func pow(_ x: Variable, _ p: Float) -> Variable {
        Tape.record(Elementwise.map(x.value) { Foundation.pow($0, p) }, inputs: [x], name: "pow") { g in
            [Elementwise.zip(g, x.value) { g, x in p == 0 ? 0 : g * p * Foundation.pow(x, p - 1) }]
        }
    }

    /// max(x, m) (torch.clamp_min): the gradient passes where x ≥ m.
    public static func clampMin(_ x: Variable, _ m: Float) -> Variable {
        Tape.record(Elementwise.map(x.value) { Swift.max($0, m) }, inputs: [x], name: "clamp_min") { g in
            [Elementwise.zip(g, x.value) { g, x in x >= m ? g : 0 }]
        }
    }

    /// A constant on the tape (no gradient), for composing with variables.
    public static func constant(_ value: Tensor) -> Variable { Variable(value) }
}

extension Tensor {
    /// −x.
    public func negated() -> Tensor { Elementwise.scale(self, -1) }
}
