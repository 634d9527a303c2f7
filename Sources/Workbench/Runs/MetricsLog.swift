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

    /// Parses a line this type wrote. Numbers are read with `Double(String)`, which rounds
    /// correctly (JSONSerialization does not always), so a rewritten file keeps every bit.
    init?(jsonLine: String) {
        guard jsonLine.hasPrefix("{"), jsonLine.hasSuffix("}") else { return nil }
        var fields: [(String, String)] = []
        for part in jsonLine.dropFirst().dropLast().split(separator: ",") {
            guard let colon = part.firstIndex(of: ":") else { return nil }
            let name = part[..<colon].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            let value = part[part.index(after: colon)...].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            fields.append((name, value))
        }
        guard let kind = fields.first(where: { $0.0 == "kind" })?.1,
              let step = fields.first(where: { $0.0 == "step" }).flatMap({ Int($0.1) }),
              let epoch = fields.first(where: { $0.0 == "epoch" }).flatMap({ Int($0.1) }) else { return nil }
        self.kind = kind
        self.step = step
        self.epoch = epoch
        values = fields.filter { !["kind", "step", "epoch"].contains($0.0) }.map { ($0.0, Double($0.1) ?? .nan) }
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
