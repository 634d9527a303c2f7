import Foundation
import ImageIO

/// `workbench runs list|compare` and `workbench reproduce`.
public enum RunJobs {
    public struct RunInfo {
        public var url: URL
        public var name: String
        public var task: String
        public var status: String
        public var steps: Int
        public var metrics: [(name: String, value: Double)]
        public var config: ResolvedConfig
    }

    /// Reads a run folder's config, summary and checkpoint progress.
    public static func info(_ url: URL) throws -> RunInfo {
        let run = RunDirectory(url: url)
        guard let config = ResolvedConfig(run: run) else {
            throw TrainingError("\(url.path): not a run folder (no config.yaml)")
        }
        let manifest = run.readJSON(run.manifestURL) ?? [:]
        let summary = run.readJSON(run.summaryURL)
        let progress = run.readJSON(run.checkpoints.appendingPathComponent("progress.json"))
        let steps = (summary?["steps"] as? Int) ?? (progress?["step"] as? Int) ?? 0
        var metrics: [(name: String, value: Double)] = []
        let log = try? MetricsLog(folder: url)
        if let final = log?.records.last(where: { $0.kind == "final_eval" }) { metrics = final.values }
        if let loss = log?.last("loss", kind: "epoch") ?? log?.last("loss", kind: "train") { metrics.append(("loss", loss)) }
        return RunInfo(url: url, name: manifest["name"] as? String ?? url.lastPathComponent, task: manifest["task"] as? String ?? "?",
                       status: summary != nil ? "completed" : (steps > 0 ? "stopped" : "started"), steps: steps, metrics: metrics,
                       config: config)
    }

    /// Every run folder under `base`, oldest first.
    public static func list(base: URL) throws -> [RunInfo] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: base.path)) ?? []
        return names.sorted().compactMap { try? info(base.appendingPathComponent($0)) }
    }

    public static func listTable(_ runs: [RunInfo]) -> String {
        guard !runs.isEmpty else { return "no runs" }
        var rows = [["run", "task", "status", "steps", "final metrics"]]
        for run in runs {
            rows.append([run.url.lastPathComponent, run.task, run.status, "\(run.steps)",
                         run.metrics.map { "\($0.name) \(String(format: "%.4f", $0.value))" }.joined(separator: ", ")])
        }
        return table(rows)
    }

    /// Final metrics side by side, then the config lines that differ.
    public static func compareTable(_ runs: [RunInfo]) -> String {
        let names = runs.flatMap { $0.metrics.map(\.name) }.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        var rows = [["metric"] + runs.map { $0.url.lastPathComponent }]
        rows.append(["steps"] + runs.map { "\($0.steps)" })
        for name in names {
            rows.append([name] + runs.map { run in run.metrics.first { $0.name == name }.map { String(format: "%.6g", $0.value) } ?? "-" })
        }
        var text = table(rows)
        let keyed = runs.map(\.config.values)
        let keys = Set(keyed.flatMap(\.keys)).sorted()
        let differing = keys.filter { key in Set(keyed.map { $0[key] ?? "-" }).count > 1 }
        if differing.isEmpty {
            text += "\n\nconfigs: identical"
        } else {
            text += "\n\nconfig differences:\n" + table([["key"] + runs.map { $0.url.lastPathComponent }]
                + differing.map { key in [key] + keyed.map { $0[key] ?? "-" } })
        }
        return text
    }

    /// A PNG of the runs' training loss and headline validation metric, one curve per run, side by side.
    public static func writeComparePlot(_ runs: [RunInfo], to url: URL) throws {
        let logs = runs.map { (name: $0.url.lastPathComponent, log: try? MetricsLog(folder: $0.url)) }
        let loss = LinePlot(title: "training loss", xLabel: "step",
                            series: logs.map { LinePlot.Series(name: $0.name, points: $0.log?.series("loss", kind: "train") ?? []) }, logY: true)
        let headline = logs.lazy.compactMap { $0.log?.records.first { $0.kind == "eval" || $0.kind == "final_eval" }?.values.first?.name }.first
        var panels = [loss.render()]
        if let headline {
            panels.append(LinePlot(title: "validation \(headline)", xLabel: "step", series: logs.map {
                LinePlot.Series(name: $0.name, points: ($0.log?.series(headline, kind: "eval") ?? []) + ($0.log?.series(headline, kind: "final_eval") ?? []))
            }).render())
        }
        try PNG.write(Image.grid(panels, columns: panels.count, padding: 0, background: 255), to: url)
    }

    static func table(_ rows: [[String]]) -> String {
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }

    /// The outcome of `reproduce`.
    public struct Reproduction {
        public var original: URL
        public var rerun: URL
        public var differences: [String]
        public var matches: Bool { differences.isEmpty }
    }

    /// Re-runs a run from its saved config into `output` and compares metrics and checkpoints byte for byte.
    public static func reproduce(_ url: URL, output: URL?, verbose: Bool) throws -> Reproduction {
        let run = RunDirectory(url: url)
        guard FileManager.default.fileExists(atPath: run.summaryURL.path) else {
            throw TrainingError("\(url.path): the run has not finished (no summary.json); finish it with --resume first")
        }
        let experiment = try Experiment.load(run.configURL)
        var options = TrainOptions()
        options.verbose = verbose
        options.runDirectory = output ?? url.deletingLastPathComponent().appendingPathComponent(url.lastPathComponent + "-reproduced")
        options.overwrite = output == nil  // the default "-reproduced" folder is ours to replace
        // A time budget ends a run at a step that depends on the machine's speed: the re-run stops
        // at the step the original stopped at.
        options.stopAtStep = run.readJSON(run.summaryURL)?["steps"] as? Int
        let result = try Trainer.run(experiment, options: options)
        var differences: [String] = []
        func files(_ folder: URL, _ suffix: String) -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasSuffix(suffix) && !$0.hasPrefix(".") }.sorted()
        }
        let files = ["metrics.jsonl"] + files(run.checkpoints, ".safetensors").map { "checkpoints/" + $0 }
            + Array(Set(files(run.outputs, ".png") + files(result.run.outputs, ".png"))).sorted().map { "outputs/" + $0 }
        for name in files {
            let a = try? Data(contentsOf: url.appendingPathComponent(name))
            let b = try? Data(contentsOf: result.run.url.appendingPathComponent(name))
            if a != b { differences.append("\(name) differs") }
        }
        if differences.contains("metrics.jsonl differs") {
            let old = (try? MetricsLog(folder: url))?.records ?? [], new = (try? MetricsLog(folder: result.run.url))?.records ?? []
            if let index = (0..<min(old.count, new.count)).first(where: { old[$0] != new[$0] }) {
                differences.append("first differing metrics line: \(index + 1) (step \(old[index].step))")
            }
        }
        return Reproduction(original: url, rerun: result.run.url, differences: differences)
    }
}
