import Autograd
import Foundation
import Tensor

/// A checkpoint that does not fit the model; lists every mismatch by name.
public struct CheckpointMismatchError: Error, CustomStringConvertible {
    public let path: String
    public var missing: [String] = []
    public var unexpected: [String] = []
    public var wrongShape: [String] = []
    public var wrongType: [String] = []

    public var isEmpty: Bool { missing.isEmpty && unexpected.isEmpty && wrongShape.isEmpty && wrongType.isEmpty }

    public var description: String {
        var lines = ["\(path) does not fit this model (was it written for another experiment or model size?):"]
        if !missing.isEmpty { lines.append("  missing keys: " + missing.joined(separator: ", ")) }
        if !unexpected.isEmpty { lines.append("  unexpected keys: " + unexpected.joined(separator: ", ")) }
        lines += wrongShape.map { "  wrong shape: " + $0 }
        lines += wrongType.map { "  wrong dtype: " + $0 }
        return lines.joined(separator: "\n")
    }
}

extension Module {
    /// The model's `state_dict`: F32 parameters and buffers, I64 counters, under PyTorch's keys.
    public func stateDict(prefix: String = "") -> SafeTensorsFile {
        var file = SafeTensorsFile()
        for (name, slot) in namedState(prefix: prefix) {
            switch slot {
            case .parameter(let variable): file.set(name, variable.value)
            case .buffer(let buffer): file.set(name, buffer.value)
            case .counter(let counter): file[name] = SafeTensorsEntry(int64s: [counter.value], shape: [])
            }
        }
        return file
    }

    /// Loads a `state_dict` after checking every name, shape and dtype; nothing changes unless all fit.
    /// With `strict: false`, keys the model does not have are ignored.
    public func loadStateDict(_ file: SafeTensorsFile, path: String, prefix: String = "", strict: Bool = true) throws {
        var error = CheckpointMismatchError(path: path)
        let state = namedState(prefix: prefix)
        var expected = Set<String>()
        for (name, slot) in state {
            expected.insert(name)
            guard let entry = file[name] else { error.missing.append(name); continue }
            switch slot {
            case .parameter(let variable):
                check(entry, name: name, shape: variable.shape, floating: true, into: &error)
            case .buffer(let buffer):
                check(entry, name: name, shape: buffer.value.shape, floating: true, into: &error)
            case .counter:
                check(entry, name: name, shape: [], floating: false, into: &error)
            }
        }
        if strict {
            error.unexpected = file.keys.filter { $0.hasPrefix(prefix) && !expected.contains($0) }
        }
        guard error.isEmpty else { throw error }
        for (name, slot) in state {
            let entry = file[name]!
            switch slot {
            case .parameter(let variable): variable.value = Tensor(shape: entry.shape, scalars: entry.floats())
            case .buffer(let buffer): buffer.value = Tensor(shape: entry.shape, scalars: entry.floats())
            case .counter(let counter): counter.value = entry.int64s().first ?? 0
            }
        }
    }

    public func loadStateDict(from url: URL, strict: Bool = true) throws {
        try loadStateDict(SafeTensorsFile.read(url), path: url.path, strict: strict)
    }
}

private func check(_ entry: SafeTensorsEntry, name: String, shape: [Int], floating: Bool, into error: inout CheckpointMismatchError) {
    let isFloat = [.F32, .F64, .F16, .BF16].contains(entry.dtype)
    if floating != isFloat {
        error.wrongType.append("\(name) is \(entry.dtype.rawValue), expected \(floating ? "F32" : "I64")")
    } else if entry.shape != shape && !(shape.isEmpty && entry.elementCount == 1) {
        error.wrongShape.append("\(name) is \(entry.shape), the model has \(shape)")
    }
}
