import Foundation

/// An error reading or writing a safetensors file; the message names the file and what to do.
public struct SafeTensorsError: Error, CustomStringConvertible {
    public let path: String
    public let message: String
    public var description: String { "\(path): \(message)" }
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }
}

/// Element types of the safetensors format that the workbench reads.
public enum SafeTensorsDType: String, Sendable {
    case F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL

    public var byteSize: Int {
        switch self {
        case .F64, .I64: return 8
        case .F32, .I32: return 4
        case .F16, .BF16, .I16: return 2
        case .I8, .U8, .BOOL: return 1
        }
    }
}

/// One named tensor of a safetensors file: its type, shape and little-endian bytes.
public struct SafeTensorsEntry: Sendable {
    public var dtype: SafeTensorsDType
    public var shape: [Int]
    public var bytes: Data

    public var elementCount: Int { shape.reduce(1, *) }

    public init(dtype: SafeTensorsDType, shape: [Int], bytes: Data) {
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    public init(_ tensor: Tensor) {
        self.init(dtype: .F32, shape: tensor.shape,
                  bytes: tensor.withUnsafeBufferPointer { Data(buffer: $0) })
    }

    public init(doubles: [Double], shape: [Int]) {
        self.init(dtype: .F64, shape: shape, bytes: doubles.withUnsafeBufferPointer { Data(buffer: $0) })
    }

    public init(int64s: [Int64], shape: [Int]) {
        self.init(dtype: .I64, shape: shape, bytes: int64s.withUnsafeBufferPointer { Data(buffer: $0) })
    }

    /// The values as Float32 (F32 as stored, F64 and integers converted).
    public func floats() -> [Float] {
        switch dtype {
        case .F32: return load(Float.self)
        case .F64: return load(Double.self).map { Float($0) }
        case .I64: return load(Int64.self).map { Float($0) }
        case .I32: return load(Int32.self).map { Float($0) }
        case .U8, .BOOL: return bytes.map { Float($0) }
        default: return doubles().map { Float($0) }
        }
    }

    /// The values as Float64.
    public func doubles() -> [Double] {
        switch dtype {
        case .F64: return load(Double.self)
        case .F32: return load(Float.self).map { Double($0) }
        case .I64: return load(Int64.self).map { Double($0) }
        case .I32: return load(Int32.self).map { Double($0) }
        case .I16: return load(Int16.self).map { Double($0) }
        case .I8: return load(Int8.self).map { Double($0) }
        case .U8, .BOOL: return bytes.map { Double($0) }
        case .F16:
            return load(UInt16.self).map { Double(Float(halfBits: $0)) }
        case .BF16:
            return load(UInt16.self).map { Double(Float(bitPattern: UInt32($0) << 16)) }
        }
    }

    public func int64s() -> [Int64] {
        switch dtype {
        case .I64: return load(Int64.self)
        default: return doubles().map { Int64($0) }
        }
    }

    private func load<T>(_: T.Type) -> [T] {
        bytes.withUnsafeBytes { raw in
            (0..<elementCount).map { raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self) }
        }
    }
}

extension Float {
    init(halfBits h: UInt16) {
        let sign = UInt32(h >> 15) << 31
        let exponent = Int((h >> 10) & 0x1F), mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            let value = Float(mantissa) * 0x1p-24
            self = sign == 0 ? value : -value
        } else if exponent == 31 {
            self = Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        } else {
            self = Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
        }
    }
}

/// A safetensors file: an 8-byte little-endian header length, a JSON header giving each tensor's
/// dtype, shape and byte range, then the raw data (https://huggingface.co/docs/safetensors).
public struct SafeTensorsFile {
    public var entries: [String: SafeTensorsEntry] = [:]
    public var metadata: [String: String] = [:]

    public init() {}

    public var keys: [String] { entries.keys.sorted() }

    public subscript(key: String) -> SafeTensorsEntry? {
        get { entries[key] }
        set { entries[key] = newValue }
    }

    /// Reads and validates a file; a truncated or malformed file gives an error naming it.
    public static func read(_ url: URL) throws -> SafeTensorsFile {
        let path = url.path
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw SafeTensorsError(path: path, message: "cannot read the file (\(error.localizedDescription)); check the path")
        }
        return try parse(data, path: path)
    }

    public static func parse(_ data: Data, path: String) throws -> SafeTensorsFile {
        func fail(_ message: String) -> SafeTensorsError {
            SafeTensorsError(path: path, message: "not a valid safetensors file: \(message)")
        }
        guard data.count >= 8 else { throw fail("only \(data.count) bytes, the 8-byte header length is missing (truncated?)") }
        let headerLength = data.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard headerLength <= UInt64(data.count - 8) else {
            throw fail("the header claims \(headerLength) bytes but the file has only \(data.count - 8) after the length (truncated?)")
        }
        let headerData = data.subdata(in: 8..<(8 + Int(headerLength)))
        guard let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
            throw fail("the JSON header does not parse")
        }
        let payload = data.subdata(in: (8 + Int(headerLength))..<data.count)
        var file = SafeTensorsFile()
        var ranges: [(begin: Int, end: Int, key: String)] = []
        for (key, value) in header {
            if key == "__metadata__" {
                guard let metadata = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (name, item) in metadata { file.metadata[name] = item as? String ?? "\(item)" }
                continue
            }
            guard let info = value as? [String: Any],
                  let dtypeName = info["dtype"] as? String,
                  let shapeValues = info["shape"] as? [Any],
                  let offsets = info["data_offsets"] as? [Any], offsets.count == 2 else {
                throw fail("entry '\(key)' lacks dtype, shape or data_offsets")
            }
            guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
                throw fail("entry '\(key)' has unsupported dtype \(dtypeName)")
            }
            func integer(_ item: Any) -> Int? {
                guard let number = item as? NSNumber, let value = Int(exactly: number.doubleValue), value >= 0,
                      Double(value) == number.doubleValue else { return nil }
                return value
            }
            let shape = try shapeValues.map { item -> Int in
                guard let number = integer(item) else { throw fail("entry '\(key)' has a bad shape \(shapeValues)") }
                return number
            }
            guard let begin = integer(offsets[0]), let end = integer(offsets[1]), begin <= end else {
                throw fail("entry '\(key)' has bad data_offsets")
            }
            guard end <= payload.count else {
                throw fail("entry '\(key)' ends at byte \(end) of the data but the file holds only \(payload.count) (truncated?)")
            }
            // Checked arithmetic: a shape whose size overflows is refused, not wrapped (the kernels
            // are built -Ounchecked).
            guard let elements = Tensor.checkedElementCount(shape),
                  case let (expected, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize), !overflow else {
                throw fail("entry '\(key)' has shape \(shape), whose size overflows")
            }
            guard end - begin == expected else {
                throw fail("entry '\(key)' has \(end - begin) bytes, its shape \(shape) of \(dtypeName) needs \(expected)")
            }
            ranges.append((begin, end, key))
            file.entries[key] = SafeTensorsEntry(dtype: dtype, shape: shape, bytes: payload.subdata(in: begin..<end))
        }
        // As the reference library: the entries tile the data in order, without overlaps or gaps.
        var position = 0
        for range in ranges.sorted(by: { ($0.begin, $0.end) < ($1.begin, $1.end) }) {
            guard range.begin == position else {
                throw fail(range.begin < position ? "entry '\(range.key)' overlaps the data of another entry (data_offsets from byte \(range.begin))"
                                                  : "the data has a gap before entry '\(range.key)' (bytes \(position)..<\(range.begin) belong to no entry)")
            }
            position = range.end
        }
        guard position == payload.count else {
            throw fail("\(payload.count - position) bytes after the last entry belong to no entry")
        }
        return file
    }

    /// The F32 tensor under `key`; F64 and integer data are converted.
    public func tensor(_ key: String, path: String = "") throws -> Tensor {
        guard let entry = entries[key] else {
            throw SafeTensorsError(path: path, message: "no tensor named '\(key)' (it has: \(keys.prefix(12).joined(separator: ", "))\(keys.count > 12 ? ", …" : ""))")
        }
        return Tensor(shape: entry.shape, scalars: entry.floats())
    }

    public mutating func set(_ key: String, _ tensor: Tensor) { entries[key] = SafeTensorsEntry(tensor) }

    /// The file's bytes: keys sorted, header padded with spaces to a multiple of 8, so the same
    /// content always gives the same bytes.
    public func serialized() -> Data {
        var header = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let items = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            parts.append("\"__metadata__\":{\(items.joined(separator: ","))}")
        }
        var offset = 0
        for key in keys {
            let entry = entries[key]!
            let end = offset + entry.bytes.count
            parts.append("\(jsonString(key)):{\"dtype\":\"\(entry.dtype.rawValue)\",\"shape\":[\(entry.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        header += parts.joined(separator: ",") + "}"
        var headerBytes = Data(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        var data = Data()
        var length = UInt64(headerBytes.count).littleEndian
        withUnsafeBytes(of: &length) { data.append(contentsOf: $0) }
        data.append(headerBytes)
        for key in keys { data.append(entries[key]!.bytes) }
        return data
    }

    /// Writes atomically (temporary file, fsync, rename).
    public func write(to url: URL) throws {
        try AtomicFile.write(serialized(), to: url)
    }

    private func jsonString(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            default:
                if scalar.value < 0x20 { result += String(format: "\\u%04x", scalar.value) } else { result.unicodeScalars.append(scalar) }
            }
        }
        return result + "\""
    }
}
