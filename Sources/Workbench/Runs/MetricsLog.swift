import Foundation
import ImageIO
import Tensor

/// One line of metrics: a kind ("train", "epoch", "eval", "final_eval") and ordered values.
/// Nothing time-dependent goes in here, so equal runs give byte-identical files.
public struct MetricsRecord: Equatable {
    public var kind: String
    public var step: Int
    public var epoch: Int
    public var values: [(name: String, value: Double)]

    public init(kind: String, step: Int, epoch: Int, values: [(name: String, value: Double)]) {
        self.kind = kind
        self.step = step
        self.epoch = epoch
        self.values = values
    }

    public static func == (a: MetricsRecord, b: MetricsRecord) -> Bool {
        a.kind == b.kind && a.step == b.step && a.epoch == b.epoch && a.values.map(\.name) == b.values.map(\.name)
            && a.values.map(\.value) == b.values.map(\.value)
    }

    /// Shortest round-tripping decimal; JSON has no NaN, so non-finite values are strings.
    static func number(_ value: Double) -> String {
        value.isFinite ? "\(value)" : "\"\(value)\""
    }

    var jsonLine: String {
        var parts = ["\"kind\":\"\(kind)\"", "\"step\":\(step)", "\"epoch\":\(epoch)"]
        parts += values.map { "\"\($0.name)\":\(MetricsRecord.number($0.value))" }
        return "{" + parts.joined(separator: ",") + "}"
    }

    var csvLines: [String] { values.map { "\(kind),\(step),\(epoch),\($0.name),\($0.value)" } }

    /// Parses a line this type wrote, with Foundation's JSONDecoder (which rounds numbers
    /// correctly, so a rewritten file keeps every bit; JSONSerialization misreads about 40 % of
    /// random doubles). Values keep the order of the line; non-finite values are strings.
    init?(jsonLine: String) {
        guard let decoded = try? JSONDecoder().decode(DecodedLine.self, from: Data(jsonLine.utf8)) else { return nil }
        kind = decoded.kind
        step = decoded.step
        epoch = decoded.epoch
        // A JSON object is unordered to the decoder; the line's own order is the order of its keys.
        values = decoded.values.sorted {
            (jsonLine.range(of: "\"\($0.name)\":")?.lowerBound ?? jsonLine.endIndex) < (jsonLine.range(of: "\"\($1.name)\":")?.lowerBound ?? jsonLine.endIndex)
        }
    }

    private struct DecodedLine: Decodable {
        var kind: String
        var step: Int
        var epoch: Int
        var values: [(name: String, value: Double)] = []

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: Key.self)
            kind = try container.decode(String.self, forKey: Key(stringValue: "kind"))
            step = try container.decode(Int.self, forKey: Key(stringValue: "step"))
            epoch = try container.decode(Int.self, forKey: Key(stringValue: "epoch"))
            for key in container.allKeys where !["kind", "step", "epoch"].contains(key.stringValue) {
                if let number = try? container.decode(Double.self, forKey: key) {
                    values.append((key.stringValue, number))
                } else {
                    values.append((key.stringValue, Double(try container.decode(String.self, forKey: key)) ?? .nan))
                }
            }
        }
    }
}

/// metrics.jsonl and metrics.csv of a run.
public final class MetricsLog {
    public let jsonURL: URL
    public let csvURL: URL
    public private(set) var records: [MetricsRecord] = []

    public init(folder: URL) throws {
        jsonURL = folder.appendingPathComponent("metrics.jsonl")
        csvURL = folder.appendingPathComponent("metrics.csv")
        if let text = try? String(contentsOf: jsonURL, encoding: .utf8) {
            records = text.split(separator: "\n").compactMap { MetricsRecord(jsonLine: String($0)) }
        }
    }

    /// Keeps only what a checkpoint at `step` had seen: records up to `step`, minus end-of-run ones.
    public func truncate(toStep step: Int) throws {
        records = records.filter { $0.step <= step && !$0.kind.hasPrefix("final") }
        try rewrite()
    }

    public func append(_ record: MetricsRecord) throws {
        records.append(record)
        try appendLine(record.jsonLine + "\n", to: jsonURL)
        if !FileManager.default.fileExists(atPath: csvURL.path) { try appendLine("kind,step,epoch,name,value\n", to: csvURL) }
        try appendLine(record.csvLines.map { $0 + "\n" }.joined(), to: csvURL)
        FaultInjection.point("metrics.appended")
    }

    func rewrite() throws {
        try AtomicFile.write(Data(records.map { $0.jsonLine + "\n" }.joined().utf8), to: jsonURL)
        let csv = "kind,step,epoch,name,value\n" + records.flatMap(\.csvLines).map { $0 + "\n" }.joined()
        try AtomicFile.write(Data(csv.utf8), to: csvURL)
    }

    private func appendLine(_ text: String, to url: URL) throws {
        do {
            if !FileManager.default.fileExists(atPath: url.path) { _ = FileManager.default.createFile(atPath: url.path, contents: nil) }
            let handle = try FileHandle(forWritingTo: url)
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(text.utf8))
        } catch {
            throw AtomicFile.WriteError(path: url.path, reason: "cannot append (\(error.localizedDescription))")
        }
    }

    /// The last value of `name` in records of `kind`.
    public func last(_ name: String, kind: String? = nil) -> Double? {
        for record in records.reversed() where kind == nil || record.kind == kind {
            if let value = record.values.first(where: { $0.name == name })?.value { return value }
        }
        return nil
    }

    /// (step, value) points of `name` in records of `kind`.
    public func series(_ name: String, kind: String) -> [(x: Double, y: Double)] {
        records.filter { $0.kind == kind }.compactMap { record in
            record.values.first { $0.name == name }.map { (Double(record.step), $0.value) }
        }
    }

    /// PNG plots of the loss, learning rate and validation metrics into `folder`.
    public func writePlots(to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var loss = [LinePlot.Series(name: "train loss", points: series("loss", kind: "train"))]
        let epochLoss = series("loss", kind: "epoch")
        if !epochLoss.isEmpty { loss.append(LinePlot.Series(name: "epoch mean", points: epochLoss)) }
        try PNG.write(LinePlot(title: "loss (log scale)", xLabel: "step", series: loss, logY: true).render(), to: folder.appendingPathComponent("loss.png"))
        try PNG.write(LinePlot(title: "learning rate", xLabel: "step", series: [.init(name: "lr", points: series("lr", kind: "train"))]).render(),
                      to: folder.appendingPathComponent("lr.png"))
        let evalNames = Array(Set(records.filter { $0.kind.hasSuffix("eval") }.flatMap { $0.values.map(\.name) })).sorted()
        if !evalNames.isEmpty {
            let evalSeries = evalNames.map { name in
                LinePlot.Series(name: name, points: records.filter { $0.kind.hasSuffix("eval") }.compactMap { record in
                    record.values.first { $0.name == name }.map { (Double(record.step), $0.value) }
                })
            }
            try PNG.write(LinePlot(title: "validation", xLabel: "step", series: evalSeries).render(),
                          to: folder.appendingPathComponent("validation.png"))
        }
    }
}
