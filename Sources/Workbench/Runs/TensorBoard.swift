import Foundation
import Tensor

/// Protocol-buffer wire format, enough to write TensorBoard's `Event` messages: varints,
/// length-delimited fields, fixed 32/64-bit numbers (https://protobuf.dev/programming-guides/encoding/).
struct ProtoWriter {
    private(set) var bytes = Data()

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    private mutating func key(_ field: Int, _ wireType: UInt64) { varint(UInt64(field) << 3 | wireType) }

    mutating func int(_ field: Int, _ value: Int64) {
        key(field, 0)
        varint(UInt64(bitPattern: value))
    }

    mutating func double(_ field: Int, _ value: Double) {
        key(field, 1)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func float(_ field: Int, _ value: Float) {
        key(field, 5)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func data(_ field: Int, _ value: Data) {
        key(field, 2)
        varint(UInt64(value.count))
        bytes.append(value)
    }

    mutating func string(_ field: Int, _ value: String) { data(field, Data(value.utf8)) }

    mutating func message(_ field: Int, _ build: (inout ProtoWriter) -> Void) {
        var inner = ProtoWriter()
        build(&inner)
        data(field, inner.bytes)
    }
}

/// CRC-32C (Castagnoli), as TFRecord framing uses it.
enum CRC32C {
    static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    static func checksum(_ data: Data) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    /// TFRecord's masked CRC: rotated right by 15 bits plus a constant.
    static func masked(_ data: Data) -> UInt32 {
        let crc = checksum(data)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }
}

/// A run's TensorBoard log, `tb/events.out.tfevents.<time>.<host>`: TFRecord-framed `Event`
/// messages with scalars (every metric of metrics.jsonl, and images/s), images (the run's output
/// and confusion-matrix PNGs) and the HParams plugin's session summaries (the experiment's keys), so
/// that `tensorboard --logdir runs` shows and compares runs with no conversion.
///
/// The log is derived from what the run folder already holds; on resume it is written afresh from
/// the truncated metrics and the PNGs up to the resumed step, so TensorBoard never sees a step twice.
public final class TensorBoardLog {
    public let folder: URL
    public let url: URL
    private var handle: FileHandle?

    /// Starts a new events file in `folder` (removing earlier ones: the caller replays what they held).
    public init(folder: URL) throws {
        self.folder = folder
        let manager = FileManager.default
        do {
            try manager.createDirectory(at: folder, withIntermediateDirectories: true)
            for name in try manager.contentsOfDirectory(atPath: folder.path) where name.hasPrefix("events.out.tfevents.") {
                try manager.removeItem(at: folder.appendingPathComponent(name))
            }
        } catch {
            throw AtomicFile.WriteError(path: folder.path, reason: "cannot prepare the TensorBoard folder (\(error.localizedDescription))")
        }
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "localhost"
        url = folder.appendingPathComponent("events.out.tfevents.\(Int(Date().timeIntervalSince1970)).\(host)")
        _ = manager.createFile(atPath: url.path, contents: nil)
        handle = try? FileHandle(forWritingTo: url)
        guard handle != nil else { throw AtomicFile.WriteError(path: url.path, reason: "cannot open the events file") }
        try write { $0.string(3, "brain.Event:2") }
    }

    deinit { try? handle?.close() }

    /// One `Event` (wall_time = 1, step = 2, then the given fields), framed as a TFRecord.
    func write(step: Int? = nil, _ fields: (inout ProtoWriter) -> Void) throws {
        var event = ProtoWriter()
        event.double(1, Date().timeIntervalSince1970)
        if let step { event.int(2, Int64(step)) }
        fields(&event)
        var record = Data()
        withUnsafeBytes(of: UInt64(event.bytes.count).littleEndian) { record.append(contentsOf: $0) }
        withUnsafeBytes(of: CRC32C.masked(record).littleEndian) { record.append(contentsOf: $0) }
        record.append(event.bytes)
        withUnsafeBytes(of: CRC32C.masked(event.bytes).littleEndian) { record.append(contentsOf: $0) }
        do {
            try handle?.write(contentsOf: record)
        } catch {
            throw AtomicFile.WriteError(path: url.path, reason: "cannot append (\(error.localizedDescription))")
        }
    }

    /// Scalars `group/name` (Summary.Value.simple_value) at `step`.
    public func scalars(_ values: [(name: String, value: Double)], group: String, step: Int) throws {
        let finite = values.filter { $0.value.isFinite }
        guard !finite.isEmpty else { return }
        try write(step: step) { event in
            event.message(5) { summary in
                for (name, value) in finite {
                    summary.message(1) { entry in
                        entry.string(1, "\(group)/\(name)")
                        entry.float(2, Float(value))
                    }
                }
            }
        }
    }

    /// The metrics of one record: `train/loss`, `eval/mIoU`, `epoch/loss`, `final_eval/…`.
    public func record(_ record: MetricsRecord) throws {
        try scalars(record.values, group: record.kind, step: record.step)
    }

    /// A PNG file as an image summary under `tag` (Summary.Image with the encoded bytes).
    public func image(tag: String, png url: URL, step: Int) throws {
        guard let data = try? Data(contentsOf: url), data.count > 24, data.starts(with: [0x89, 0x50, 0x4E, 0x47]) else { return }
        func word(_ offset: Int) -> Int64 { data[offset..<offset + 4].reduce(0) { $0 << 8 | Int64($1) } }
        let (width, height) = (word(16), word(20))
        let colourSpace: Int64 = [0: 1, 2: 3, 3: 3, 4: 2, 6: 4][Int(data[25])] ?? 3
        try write(step: step) { event in
            event.message(5) { summary in
                summary.message(1) { entry in
                    entry.string(1, tag)
                    entry.message(4) { image in
                        image.int(1, height)
                        image.int(2, width)
                        image.int(3, colourSpace)
                        image.data(4, data)
                    }
                }
            }
        }
    }

    /// The HParams plugin's session start: every key of the resolved experiment as a hyperparameter
    /// (numbers, booleans and strings as google.protobuf.Value), so runs can be filtered and sorted by setting.
    public func sessionStart(hyperparameters: [(key: String, value: String)], group: String) throws {
        try hparams(tag: "_hparams_/session_start_info", field: 3) { start in
            for (key, text) in hyperparameters {
                start.message(1) { entry in
                    entry.string(1, key)
                    entry.message(2) { value in
                        if let number = Double(text), number.isFinite {
                            value.double(2, number)
                        } else if text == "true" || text == "false" {
                            value.int(4, text == "true" ? 1 : 0)
                        } else {
                            value.string(3, text.trimmingCharacters(in: CharacterSet(charactersIn: "\"")))
                        }
                    }
                }
            }
            start.string(4, group)
            start.double(5, Date().timeIntervalSince1970)
        }
    }

    /// The HParams plugin's session end, with status SUCCESS (1) or ABORTED (3).
    public func sessionEnd(completed: Bool) throws {
        try hparams(tag: "_hparams_/session_end_info", field: 4) { end in
            end.int(1, completed ? 1 : 3)
            end.double(2, Date().timeIntervalSince1970)
        }
    }

    /// A summary holding HParamsPluginData with `field` set (3: session start, 4: session end),
    /// tagged as the plugin expects, with the minimal empty float tensor as its value.
    private func hparams(tag: String, field: Int, _ build: @escaping (inout ProtoWriter) -> Void) throws {
        var pluginData = ProtoWriter()
        pluginData.message(field, build)
        try write(step: 0) { event in
            event.message(5) { summary in
                summary.message(1) { entry in
                    entry.string(1, tag)
                    entry.message(8) { tensor in
                        tensor.int(1, 1)  // DT_FLOAT
                        tensor.message(2) { shape in shape.message(2) { dim in dim.int(1, 0) } }
                    }
                    entry.message(9) { metadata in
                        metadata.message(1) { plugin in
                            plugin.string(1, "hparams")
                            plugin.data(2, pluginData.bytes)
                        }
                    }
                }
            }
        }
    }
}
