import Foundation
import ImageIO
import Tensor

/// `workbench sweep`: the product of a grid of settings (and seeds), each trained as a normal run
/// folder inside one sweep folder by a `workbench train` process of its own, `parallel` at a time
/// (the experiment's threads divided between them). `sweep.csv` and `sweep.md` tabulate every
/// setting's final metrics as mean ± standard deviation over seeds, and `validation.png` overlays
/// the runs' headline validation curves. A sweep that was stopped continues where it stopped.
public enum SweepJob {
    public struct Options {
        /// (key path, values) pairs; the sweep runs their product.
        public var grid: [(key: String, values: [String])] = []
        public var seeds: [UInt64]?
        public var parallel = 1
        public var overrides: [String] = []
        public var folder: URL?
        public var resume = false
        /// The `workbench` binary that trains each run.
        public var executable: URL
        public var verbose = true
        public init(executable: URL) { self.executable = executable }
    }

    /// One run of the sweep: its setting (grid values), seed and folder name.
    public struct Point {
        public var setting: [(key: String, value: String)]
        public var seed: UInt64?
        public var name: String {
            let parts = setting.map { "\($0.key.split(separator: ".").last!)=\($0.value)" } + (seed.map { ["seed=\($0)"] } ?? [])
            return parts.joined(separator: "_").replacingOccurrences(of: "/", with: "-").replacingOccurrences(of: " ", with: "")
        }
        var overrides: [String] { setting.map { "\($0.key)=\($0.value)" } + (seed.map { ["seed=\($0)"] } ?? []) }
    }

    /// Every point of the grid, in order (the last key varies fastest, then the seed).
    public static func points(_ options: Options) -> [Point] {
        var settings: [[(key: String, value: String)]] = [[]]
        for (key, values) in options.grid {
            settings = settings.flatMap { prefix in values.map { prefix + [(key, $0)] } }
        }
        let seeds: [UInt64?] = options.seeds.map { $0.map { Optional($0) } } ?? [nil]
        return settings.flatMap { setting in seeds.map { Point(setting: setting, seed: $0) } }
    }

    /// Checks every point's experiment before any run starts: an unknown key, an empty value list or
    /// a value of the wrong type is an error naming the key and the value.
    public static func validate(_ experiment: URL, options: Options) throws -> Experiment {
        guard !options.grid.isEmpty || options.seeds != nil else { throw TrainingError("a sweep needs at least one --grid key=v1,v2 or --seeds") }
        for (key, values) in options.grid where values.isEmpty || values.contains(where: \.isEmpty) {
            throw TrainingError("--grid \(key): the value list is empty; give values such as --grid \(key)=a,b")
        }
        let keys = options.grid.map(\.key)
        if let duplicate = keys.first(where: { key in keys.filter { $0 == key }.count > 1 }) {
            throw TrainingError("--grid \(duplicate) is given twice; list all its values in one --grid")
        }
        guard options.parallel >= 1 else { throw TrainingError("--parallel must be at least 1") }
        var first: Experiment?
        for point in points(options) {
            do {
                let loaded = try Experiment.load(experiment, overrides: options.overrides + point.overrides)
                first = first ?? loaded
            } catch let error as ConfigError {
                let value = point.setting.first { $0.key == error.keyPath }?.value
                throw TrainingError("--grid \(error.keyPath)\(value.map { "=\($0)" } ?? ""): \(error.message)")
            }
        }
        return first!
    }

    /// Runs the sweep and writes its tables; returns the sweep folder.
    @discardableResult
    public static func run(_ experimentURL: URL, options: Options) throws -> URL {
        let experiment = try validate(experimentURL, options: options)
        let folder: URL
        if let given = options.folder {
            folder = given
        } else {
            let formatter = DateFormatter()
            formatter.dateFormat = "yyyyMMdd-HHmmss"
            formatter.locale = Locale(identifier: "en_US_POSIX")
            folder = URL(fileURLWithPath: "runs").appendingPathComponent("sweep-\(experiment.name)-\(formatter.string(from: Date()))")
        }
        let manager = FileManager.default
        let plan = folder.appendingPathComponent("sweep.json")
        let planObject: [String: Any] = ["experiment": experimentURL.path, "overrides": options.overrides,
                                         "grid": options.grid.map { ["key": $0.key, "values": $0.values] },
                                         "seeds": options.seeds.map { $0.map { Int($0) } } ?? NSNull()]
        let planData = try JSONSerialization.data(withJSONObject: planObject, options: [.prettyPrinted, .sortedKeys])
        if manager.fileExists(atPath: plan.path) {
            guard options.resume else {
                throw TrainingError("\(folder.path) already holds a sweep; continue it with --resume, or choose another --dir")
            }
            guard (try? Data(contentsOf: plan)) == planData else {
                throw TrainingError("\(folder.path) holds a sweep with another experiment, grid or seeds (see its sweep.json); resume it with the same arguments")
            }
        } else {
            try AtomicFile.write(planData, to: plan)
        }

        let points = points(options)
        let total = experiment.threads > 0 ? experiment.threads : ProcessInfo.processInfo.activeProcessorCount
        let threads = max(1, total / options.parallel)
        var failures: [String] = []
        let lock = NSLock()
        var next = 0
        let bar = options.verbose ? ProgressBar(label: "sweep", total: points.count, unit: "run") : nil
        var finished = 0
        DispatchQueue.concurrentPerform(iterations: min(options.parallel, points.count)) { _ in
            while true {
                lock.lock()
                let index = next
                next += 1
                let stop = !failures.isEmpty
                lock.unlock()
                guard index < points.count, !stop else { return }
                let point = points[index]
                let run = folder.appendingPathComponent(point.name)
                if manager.fileExists(atPath: run.appendingPathComponent("summary.json").path) {
                    lock.lock(); finished += 1; bar?.update(finished); lock.unlock()
                    continue
                }
                // A folder left by a stopped sweep continues from its last checkpoint.
                let target = manager.fileExists(atPath: run.path) ? ["--resume", run.path] : ["--run-dir", run.path]
                let arguments = ["train", experimentURL.path, "--quiet"] + target
                    + (options.overrides + point.overrides + ["threads=\(threads)"]).flatMap { ["--set", $0] }
                let status = launch(options.executable, arguments, log: folder.appendingPathComponent("\(point.name).log"))
                lock.lock()
                if status != 0 { failures.append("\(point.name) (exit \(status); see \(folder.appendingPathComponent("\(point.name).log").path))") }
                finished += 1
                bar?.update(finished)
                lock.unlock()
            }
        }
        guard failures.isEmpty else {
            throw TrainingError("the sweep stopped: \(failures.joined(separator: ", ")) failed; continue it with --resume \(folder.path)")
        }
        try writeTables(folder: folder, points: points, grid: options.grid.map(\.key))
        return folder
    }

    static func launch(_ executable: URL, _ arguments: [String], log: URL) -> Int32 {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try? FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        do { try process.run() } catch { return -1 }
        process.waitUntilExit()
        try? handle?.close()
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }

    /// sweep.csv, sweep.md (mean ± std over seeds per setting) and validation.png.
    static func writeTables(folder: URL, points: [Point], grid: [String]) throws {
        var settings: [(setting: [(key: String, value: String)], runs: [RunJobs.RunInfo])] = []
        for point in points {
            let info = try RunJobs.info(folder.appendingPathComponent(point.name))
            if let index = settings.firstIndex(where: { $0.setting.map(\.value) == point.setting.map(\.value) }) {
                settings[index].runs.append(info)
            } else {
                settings.append((point.setting, [info]))
            }
        }
        let metrics = settings.flatMap { $0.runs.flatMap { $0.metrics.map(\.name) } }.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        func statistics(_ values: [Double]) -> (mean: Double, std: Double) {
            let mean = values.reduce(0, +) / Double(max(values.count, 1))
            let variance = values.count > 1 ? values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1) : 0
            return (mean, variance.squareRoot())
        }
        var csv = (grid + ["runs"] + metrics.flatMap { ["\($0)_mean", "\($0)_std"] }).joined(separator: ",") + "\n"
        var markdown = "| " + (grid + ["runs"] + metrics).joined(separator: " | ") + " |\n|" + String(repeating: "---|", count: grid.count + 1 + metrics.count) + "\n"
        for (setting, runs) in settings {
            let values = metrics.map { name in statistics(runs.compactMap { run in run.metrics.first { $0.name == name }?.value }) }
            csv += (setting.map(\.value) + ["\(runs.count)"] + values.flatMap { ["\($0.mean)", "\($0.std)"] }).joined(separator: ",") + "\n"
            markdown += "| " + (setting.map(\.value) + ["\(runs.count)"]
                + values.map { String(format: "%.4f ± %.4f", $0.mean, $0.std) }).joined(separator: " | ") + " |\n"
        }
        try AtomicFile.write(Data(csv.utf8), to: folder.appendingPathComponent("sweep.csv"))
        try AtomicFile.write(Data(markdown.utf8), to: folder.appendingPathComponent("sweep.md"))
        // The headline validation metric of every run, one curve each.
        var series: [LinePlot.Series] = []
        var headline = "metric"
        for point in points {
            guard let log = try? MetricsLog(folder: folder.appendingPathComponent(point.name)),
                  let name = log.records.first(where: { $0.kind == "eval" || $0.kind == "final_eval" })?.values.first?.name else { continue }
            headline = name
            series.append(LinePlot.Series(name: point.name, points: log.series(name, kind: "eval") + log.series(name, kind: "final_eval")))
        }
        if !series.isEmpty {
            try PNG.write(LinePlot(title: "validation \(headline) of the sweep's runs", xLabel: "step", series: series).render(),
                          to: folder.appendingPathComponent("validation.png"))
        }
    }
}
