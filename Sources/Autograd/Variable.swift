import Tensor

/// A tensor in the autograd graph: its value, and the gradient that `backward()` accumulates.
///
/// Leaves are parameters and inputs (`requiresGrad` set by the user); every other variable is
/// the output of an op recorded on the tape. As in PyTorch, gradients accumulate in leaves until
/// zeroed, and intermediate gradients are freed once they have been propagated.
public final class Variable {
    public var value: Tensor
    public var grad: Tensor?
    /// Whether gradients flow to this variable.
    public let requiresGrad: Bool
    /// True for variables the user created; false for op outputs.
    public let isLeaf: Bool

    public init(_ value: Tensor, requiresGrad: Bool = false) {
        self.value = value
        self.requiresGrad = requiresGrad
        self.isLeaf = true
    }

    init(result value: Tensor, requiresGrad: Bool) {
        self.value = value
        self.requiresGrad = requiresGrad
        self.isLeaf = !requiresGrad
    }

    public var shape: [Int] { value.shape }

    /// The same value, cut from the graph.
    public func detached() -> Variable { Variable(value) }

    public func zeroGrad() { grad = nil }

    /// Adds `gradient` into `grad`.
    public func accumulateGrad(_ gradient: Tensor) {
        precondition(gradient.count == value.count, "gradient \(gradient.shape) does not match value \(value.shape)")
        if grad == nil {
            grad = gradient.reshaped(value.shape)
        } else {
            Elementwise.accumulate(&grad!, gradient)
        }
    }

    /// Reverse-mode pass from this variable (a scalar unless `gradient` is given) over the tape,
    /// then clears the tape.
    public func backward(_ gradient: Tensor? = nil) {
        precondition(requiresGrad, "backward() on a variable that does not require grad")
        let seed: Tensor
        if let gradient {
            seed = gradient
        } else {
            precondition(value.count == 1, "backward() without a gradient needs a scalar, shape is \(value.shape)")
            seed = Tensor(repeating: 1, shape: value.shape)
        }
        Tape.current.backward(from: self, seed: seed)
    }
}

/// The ordered record of differentiable ops since the last backward pass.
public final class Tape {
    struct Record {
        let output: Variable
        let inputs: [Variable]
        let backward: (Tensor) -> [Tensor?]
        let name: String
    }

    public nonisolated(unsafe) static var current = Tape()
    /// When false (inside `withNoGrad`), ops record nothing.
    public nonisolated(unsafe) static var isGradEnabled = true

    var records: [Record] = []

    public var count: Int { records.count }

    /// Drops every record (for example after a forward pass whose backward is not wanted).
    public func reset() { records.removeAll(keepingCapacity: true) }

    func backward(from root: Variable, seed: Tensor) {
        root.accumulateGrad(seed)
        for record in records.reversed() {
            guard let gradOutput = record.output.grad else { continue }
            let gradients = Profiler.measure(record.name + " ◂ backward") { record.backward(gradOutput) }
            if !record.output.isLeaf { record.output.grad = nil }
            for (input, gradient) in zip(record.inputs, gradients) where input.requiresGrad {
                if let gradient { input.accumulateGrad(gradient) }
            }
        }
        if !root.isLeaf { root.grad = nil }
        reset()
    }

    /// Wraps an op's result; records `backward` when gradients are wanted. `backward` receives
    /// dL/d(output) and returns dL/d(input) for each input (nil where not required).
    public static func record(_ value: Tensor, inputs: [Variable], name: @autoclosure () -> String = "op",
                              backward: @escaping (Tensor) -> [Tensor?]) -> Variable {
        let needsGrad = isGradEnabled && inputs.contains { $0.requiresGrad }
        let output = Variable(result: value, requiresGrad: needsGrad)
        if needsGrad {
            current.records.append(Record(output: output, inputs: inputs, backward: backward, name: Profiler.isEnabled ? name() : ""))
        }
        return output
    }
}

/// Runs `body` without recording ops (inference, evaluation, EMA updates).
public func withNoGrad<R>(_ body: () throws -> R) rethrows -> R {
    let previous = Tape.isGradEnabled
    Tape.isGradEnabled = false
    defer { Tape.isGradEnabled = previous }
    return try body()
}
