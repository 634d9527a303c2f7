import Autograd
import Foundation
import Tensor

/// An exponential moving average of a model's parameters, kept in a second instance of the same
/// architecture (`shadow`), which is what sampling and evaluation use.
///
/// Decay warms up as min(maxDecay, (1 + n)/(10 + n)) so that a short run does not keep most of
/// the random initial weights. Buffers (BatchNorm running statistics) are not averaged: they are
/// copied from the live model after every update, so the shadow's statistics stay meaningful.
public final class ExponentialMovingAverage {
    public let shadow: Module
    public let maxDecay: Double
    public let warmup: Bool
    public private(set) var updates: Int64 = 0
    private let pairs: [(live: StateSlot, shadow: StateSlot)]

    /// `shadow` must have the same architecture as `model`; it starts as a copy of `model`.
    public init(model: Module, shadow: Module, maxDecay: Double = 0.999, warmup: Bool = true) {
        self.shadow = shadow
        self.maxDecay = maxDecay
        self.warmup = warmup
        let live = model.namedState(), copy = shadow.namedState()
        precondition(live.map(\.name) == copy.map(\.name), "the EMA shadow must have the model's architecture")
        pairs = zip(live, copy).map { ($0.slot, $1.slot) }
        copyAll()
    }

    /// The decay the next update uses.
    public var decay: Double {
        warmup ? min(maxDecay, (1 + Double(updates)) / (10 + Double(updates))) : maxDecay
    }

    private func copyAll() {
        for (live, copy) in pairs {
            switch (live, copy) {
            case (.parameter(let a), .parameter(let b)): b.value = a.value
            case (.buffer(let a), .buffer(let b)): b.value = a.value
            case (.counter(let a), .counter(let b)): b.value = a.value
            default: break
            }
        }
    }

    /// shadow ← d·shadow + (1 - d)·live for parameters; buffers copied.
    public func update() {
        let d = Float(decay), keep = 1 - d
        for (live, copy) in pairs {
            switch (live, copy) {
            case (.parameter(let a), .parameter(let b)):
                let ap = a.value.pointer, bp = b.value.mutablePointer()
                Parallel.forRanges(a.value.count, grain: 16_384) { range in
                    for i in range { bp[i] = d * bp[i] + keep * ap[i] }
                }
            case (.buffer(let a), .buffer(let b)): b.value = a.value
            case (.counter(let a), .counter(let b)): b.value = a.value
            default: break
            }
        }
        updates += 1
    }

    public func stateEntries() -> SafeTensorsFile {
        var file = shadow.stateDict(prefix: "")
        file["updates"] = SafeTensorsEntry(int64s: [updates], shape: [])
        return file
    }

    public func loadState(_ file: SafeTensorsFile, path: String) throws {
        var weights = file
        weights.entries.removeValue(forKey: "updates")
        try shadow.loadStateDict(weights, path: path)
        updates = file["updates"]?.int64s().first ?? 0
    }
}
