import Autograd
import Tensor

/// A non-trainable tensor that belongs to a module's state (BatchNorm's running statistics).
public final class TensorBuffer {
    public var value: Tensor
    public init(_ value: Tensor) { self.value = value }
}

/// An int64 counter in a module's state (BatchNorm's `num_batches_tracked`).
public final class CounterBuffer {
    public var value: Int64
    public init(_ value: Int64 = 0) { self.value = value }
}

/// One entry of a module's state, under its PyTorch `state_dict` key.
public enum StateSlot {
    case parameter(Variable)
    case buffer(TensorBuffer)
    case counter(CounterBuffer)
}

/// A layer or a network, as in PyTorch's `nn.Module`: parameters and buffers are named
/// properties, and the names of children and state give the `state_dict` keys.
public protocol Module: AnyObject {
    /// Sub-modules under the names PyTorch gives them ("c1", "layer.0", …).
    var children: [(name: String, module: Module)] { get }
    /// This module's own parameters and buffers (not its children's).
    var localState: [(name: String, slot: StateSlot)] { get }
    /// Switches training/evaluation behaviour (BatchNorm statistics, dropout) here and below.
    func setTraining(_ training: Bool)
    /// Draws this module's own parameters (PyTorch's default initialisation) from `generator`.
    func resetParameters(generator: RandomGenerator)
}

/// A module that maps one variable to one variable, so it can sit in a `Sequential`.
public protocol Layer: Module {
    func callAsFunction(_ x: Variable) -> Variable
}

extension Module {
    public var children: [(name: String, module: Module)] { [] }
    public var localState: [(name: String, slot: StateSlot)] { [] }
    public func resetParameters(generator: RandomGenerator) {}

    public func setTraining(_ training: Bool) {
        for child in children { child.module.setTraining(training) }
    }

    public func train() { setTraining(true) }
    public func eval() { setTraining(false) }

    /// Every state entry, depth first, keyed as PyTorch's `state_dict()` would key it.
    public func namedState(prefix: String = "") -> [(name: String, slot: StateSlot)] {
        var result = localState.map { (prefix + $0.name, $0.slot) }
        for child in children {
            result += child.module.namedState(prefix: prefix + child.name + ".")
        }
        return result
    }

    /// Trainable parameters with their names.
    public func namedParameters() -> [(name: String, variable: Variable)] {
        namedState().compactMap { entry in
            if case .parameter(let variable) = entry.slot { return (entry.name, variable) }
            return nil
        }
    }

    public var parameters: [Variable] { namedParameters().map(\.variable) }

    /// Number of trainable scalars.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    public func zeroGrad() { for parameter in parameters { parameter.zeroGrad() } }

    /// Initialises every parameter; each module draws from a stream named by its path, so the
    /// values of one layer do not depend on which layers come before it.
    public func initialize(generator: RandomGenerator) {
        resetParameters(generator: generator)
        for child in children { child.module.initialize(generator: generator.child(child.name)) }
    }

    /// Every module in the tree, depth first, with its path.
    public func namedModules(prefix: String = "") -> [(name: String, module: Module)] {
        var result: [(name: String, module: Module)] = [(prefix, self)]
        for child in children {
            result += child.module.namedModules(prefix: prefix.isEmpty ? child.name : prefix + "." + child.name)
        }
        return result
    }

    /// Makes every Dropout in the tree draw its masks from `generator` (one stream for the model,
    /// consumed in forward order, so a run's masks are reproducible and resumable).
    public func setDropoutGenerator(_ generator: RandomGenerator) {
        for (_, module) in namedModules() {
            (module as? Dropout)?.generator = generator
        }
    }
}

/// Layers applied in order; children are named "0", "1", … as in `nn.Sequential`.
public final class Sequential: Layer {
    public let layers: [Layer]

    public init(_ layers: [Layer]) { self.layers = layers }

    public var children: [(name: String, module: Module)] {
        layers.enumerated().map { (String($0.offset), $0.element as Module) }
    }

    public func callAsFunction(_ x: Variable) -> Variable {
        layers.reduce(x) { $1($0) }
    }
}
