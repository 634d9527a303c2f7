import Foundation
import Tensor

/// A run's folder: `config.yaml` (resolved), `manifest.json`, `metrics.jsonl`/`.csv`, `plots/`,
/// `checkpoints/`, `outputs/` and `train.log`.
public final class RunDirectory {
    public let url: URL

    public var configURL: URL { url.appendingPathComponent("config.yaml") }
    public var manifestURL: URL { url.appendingPathComponent("manifest.json") }
    public var checkpoints: URL { url.appendingPathComponent("checkpoints") }
    public var outputs: URL { url.appendingPathComponent("outputs") }
    public var plots: URL { url.appendingPathComponent("plots") }
    public var logURL: URL { url.appendingPathComponent("train.log") }
    /// The latest full training state (model, optimiser, extra state, step), for resuming.
    public var stateURL: URL { checkpoints.appendingPathComponent("state.safetensors") }
    public var summaryURL: URL { url.appendingPathComponent("summary.json") }

    public init(url: URL) { self.url = url }

    /// `runs/<name>-<timestamp>/` under `base`, or `explicit`; created with its subfolders.
    public static func create(name: String, base: URL, explicit: URL?) throws -> RunDirectory {
        let url: URL
        if let explicit {
            url = explicit
        } else {
            let formatter = DateFormatter()
            formatter.dateFormat = "yyyyMMdd-HHmmss"
            formatter.locale = Locale(identifier: "en_US_POSIX")
            var candidate = base.appendingPathComponent("\(name)-\(formatter.string(from: Date()))")
            var suffix = 2
            while FileManager.default.fileExists(atPath: candidate.path) {
                candidate = base.appendingPathComponent("\(name)-\(formatter.string(from: Date()))-\(suffix)")
                suffix += 1
            }
            url = candidate
        }
        let run = RunDirectory(url: url)
        for folder in [run.url, run.checkpoints, run.outputs, run.plots] {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        }
        return run
    }

    /// Appends a time-stamped line to train.log.
    public func log(_ message: String) {
        let formatter = ISO8601DateFormatter()
        let line = "\(formatter.string(from: Date())) \(message)\n"
        if !FileManager.default.fileExists(atPath: logURL.path) { _ = FileManager.default.createFile(atPath: logURL.path, contents: nil) }
        if let handle = try? FileHandle(forWritingTo: logURL) {
            _ = try? handle.seekToEnd()
            try? handle.write(contentsOf: Data(line.utf8))
            try? handle.close()
        }
    }

    public func writeJSON(_ object: Any, to url: URL) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(data + Data("\n".utf8), to: url)
    }

    public func readJSON(_ url: URL) -> [String: Any]? {
        guard let data = try? Data(contentsOf: url) else { return nil }
        return try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    }
}

/// What a run ran on: enough to explain a difference between two runs.
public enum Manifest {
    public static func make(experiment: Experiment, threads: Int) -> [String: Any] {
        var manifest: [String: Any] = [
            "experiment": experiment.source.path,
            "name": experiment.name,
            "task": experiment.task.rawValue,
            "config_hash": experiment.configHash,
            "seed": experiment.seed,
            "threads": threads,
            "workbench_version": WorkbenchVersion.string,
            "openblas": BLAS.configuration,
            "openblas_core": BLAS.coreName,
            "gemm_backend": BLAS.backend.rawValue,
            "os": operatingSystem(),
            "cpu": cpuModel(),
            "cores": ProcessInfo.processInfo.activeProcessorCount,
            "started": ISO8601DateFormatter().string(from: Date()),
        ]
        if let commit = shell(["git", "rev-parse", "HEAD"]) {
            manifest["git_commit"] = commit
            manifest["git_dirty"] = !(shell(["git", "status", "--porcelain", "--untracked-files=no"]) ?? "").isEmpty
        }
        return manifest
    }

    static func operatingSystem() -> String {
        var info = utsname()
        uname(&info)
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        let pretty = (try? String(contentsOfFile: "/etc/os-release", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("PRETTY_NAME=") }
            .map { $0.dropFirst("PRETTY_NAME=".count).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        return "\(pretty ?? field(info.sysname)) (\(field(info.sysname)) \(field(info.release)) \(field(info.machine)))"
    }

    public static func cpuModel() -> String {
        let text = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            return line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
        }
        return "unknown"
    }

    static func shell(_ arguments: [String]) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
