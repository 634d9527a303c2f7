import DataParallel
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
    /// The training seconds at the last states written (see `Trainer.Progress`).
    public var progressURL: URL { checkpoints.appendingPathComponent("progress.json") }
    public var summaryURL: URL { url.appendingPathComponent("summary.json") }
    /// TensorBoard's event files (`tensorboard --logdir runs` shows every run).
    public var tensorBoardURL: URL { url.appendingPathComponent("tb") }

    /// "predictions" of "predictions-step0000042.png": the series a stepped image belongs to.
    public static func imageSeries(_ name: String) -> String {
        steppedImage(name)?.series ?? (name as NSString).deletingPathExtension
    }

    static func steppedImage(_ name: String) -> (series: String, step: Int)? {
        guard name.hasSuffix(".png"), let range = name.range(of: "-step", options: .backwards),
              let step = Int(name[range.upperBound...].dropLast(4)) else { return nil }
        return (String(name[..<range.lowerBound]), step)
    }

    static func steppedImageName(_ series: String, _ step: Int) -> String { String(format: "%@-step%07d.png", series, step) }

    /// The `<series>-stepNNNNNNN.png` files of `folder`, in name order.
    static func steppedImages(in folder: URL) -> [(series: String, step: Int)] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted().compactMap(steppedImage)
    }

    public var lockURL: URL { url.appendingPathComponent(".lock") }
    /// The descriptor holding this process's exclusive lock on the folder (-1: not locked).
    private var lockDescriptor: Int32 = -1

    public init(url: URL) { self.url = url }

    deinit { if lockDescriptor >= 0 { close(lockDescriptor) } }

    /// Takes the folder's exclusive lock (`flock` on `.lock`, released when this process ends,
    /// however it ends), so that one run folder is never written by two processes.
    public func lock() throws {
        guard lockDescriptor < 0 else { return }
        let descriptor = open(lockURL.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw TrainingError("\(lockURL.path): cannot create the run folder's lock file (\(String(cString: strerror(errno)))); check that the folder is writable")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let owner = (try? String(contentsOf: lockURL, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            close(descriptor)
            throw TrainingError("\(url.path) is being written by another workbench process (pid \(owner)); wait for it to finish, stop it, or use another --run-dir")
        }
        lockDescriptor = descriptor
        let pid = Data("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = pid.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
    }

    /// Releases the lock (the process may then open the folder again, e.g. to resume it).
    public func unlock() {
        guard lockDescriptor >= 0 else { return }
        close(lockDescriptor)
        lockDescriptor = -1
    }

    /// Whether the folder already holds a run (a config, metrics or checkpoints).
    public var holdsRun: Bool {
        [configURL, url.appendingPathComponent("metrics.jsonl"), stateURL].contains { FileManager.default.fileExists(atPath: $0.path) }
    }

    /// Whether the folder holds only what a run writes before its config (a lock, empty
    /// subfolders, temporary files): a run killed at its very start, safe to start over.
    public var isUnfinishedStart: Bool {
        let manager = FileManager.default
        guard let names = try? manager.contentsOfDirectory(atPath: url.path), !FileManager.default.fileExists(atPath: configURL.path) else { return false }
        let known: Set<String> = [".lock", "checkpoints", "outputs", "plots", "train.log", "manifest.json"]
        return names.allSatisfy { known.contains($0) || ($0.hasPrefix(".") && $0.contains(".tmp-")) }
            && [checkpoints, outputs, plots].allSatisfy { folder in
                ((try? manager.contentsOfDirectory(atPath: folder.path)) ?? []).allSatisfy { $0.hasPrefix(".") && $0.contains(".tmp-") }
            }
    }

    /// Deletes what a run wrote (keeping the lock file), for `--overwrite` and for a restart of a
    /// run that never reached its first checkpoint.
    public func clear() throws {
        let manager = FileManager.default
        for name in (try? manager.contentsOfDirectory(atPath: url.path)) ?? [] where name != ".lock" {
            try manager.removeItem(at: url.appendingPathComponent(name))
        }
        for folder in [checkpoints, outputs, plots] { try manager.createDirectory(at: folder, withIntermediateDirectories: true) }
    }

    /// Removes temporary files (`.<name>.tmp-<pid>`) that a killed writer left behind.
    public func removeStaleTemporaries() {
        let manager = FileManager.default
        for folder in [url, checkpoints, outputs, plots] {
            for name in (try? manager.contentsOfDirectory(atPath: folder.path)) ?? [] where name.hasPrefix(".") && name.contains(".tmp-") {
                try? manager.removeItem(at: folder.appendingPathComponent(name))
            }
        }
    }

    /// `runs/<name>-<timestamp>/` under `base`, or `explicit`; created with its subfolders and
    /// locked. An explicit folder that already holds a run is an error unless `overwrite`.
    public static func create(name: String, base: URL, explicit: URL?, overwrite: Bool = false) throws -> RunDirectory {
        let url: URL
        if let explicit {
            url = explicit
            let existing = RunDirectory(url: explicit)
            if existing.holdsRun && !overwrite {
                throw TrainingError("\(explicit.path) already holds a run; continue it with --resume \(explicit.path), replace it with --overwrite, or choose another --run-dir")
            }
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
        do {
            try FileManager.default.createDirectory(at: run.url, withIntermediateDirectories: true)
        } catch {
            throw TrainingError("\(run.url.path): cannot create the run folder (\(error.localizedDescription)); check the path and its permissions")
        }
        try run.lock()
        if overwrite { try run.clear() }
        for folder in [run.checkpoints, run.outputs, run.plots] {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        }
        run.removeStaleTemporaries()
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
    public static func make(experiment: Experiment, threads: Int, group: ProcessGroup? = nil) -> [String: Any] {
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
            "precision": BLAS.precision.rawValue,
            "matrix_products": BLAS.instructionPath,
            "os": operatingSystem(),
            "cpu": cpuModel(),
            "cores": ProcessInfo.processInfo.activeProcessorCount,
            "started": ISO8601DateFormatter().string(from: Date()),
            "ranks": group?.size ?? 1,
        ]
        if let group {
            manifest["hosts"] = group.hosts
            manifest["mpi"] = group.library
        }
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
