import ArgumentParser
import Foundation
import Workbench

struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Train every combination of a grid of settings (and seeds) as run folders in one sweep folder, and tabulate them.",
        discussion: """
        Each combination is a normal run folder under the sweep folder; sweep.csv and sweep.md give each setting's \
        final metrics as mean ± std over seeds, validation.png overlays the runs' validation curves.

        Examples:
          workbench sweep Experiments/voc2007-quick.yaml --grid train.lr=1e-3,3e-4 --grid model.base_channels=8,16 --seeds 0,1,2
          workbench sweep Experiments/voc2007-quick.yaml --grid train.lr=1e-3,3e-4 --parallel 2 --dir runs/lr-sweep
          workbench sweep Experiments/voc2007-quick.yaml --grid train.lr=1e-3,3e-4 --dir runs/lr-sweep --resume
        """)

    @Argument(help: "The experiment file (YAML), or --config.") var experiment: String?
    @Option(help: ArgumentHelp("A key and its values, e.g. train.lr=1e-3,3e-4 (repeat for more keys).", valueName: "key=v1,v2"))
    var grid: [String] = []
    @Option(help: ArgumentHelp("Seeds to run each setting with, e.g. 0,1,2.", valueName: "s1,s2")) var seeds: String?
    @Option(help: "Runs trained at the same time (threads are divided between them).") var parallel = 1
    @Option(help: "The sweep folder (default: runs/sweep-<name>-<timestamp>).") var dir: String?
    @Flag(help: "Continue a stopped sweep in --dir: finished runs are kept, stopped ones resumed.") var resume = false
    @OptionGroup var options: ExperimentOptions

    func run() throws {
        try reportingErrors {
            guard let path = experiment ?? options.config else { throw ValidationError("give the experiment file") }
            if resume && dir == nil { throw ValidationError("--resume needs --dir (the sweep folder to continue)") }
            var sweep = SweepJob.Options(executable: URL(fileURLWithPath: Bundle.main.executablePath ?? CommandLine.arguments[0]))
            sweep.grid = try grid.map { entry in
                guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else {
                    throw ValidationError("--grid \(entry): expected key=v1,v2")
                }
                let values = entry[entry.index(after: equals)...].split(separator: ",", omittingEmptySubsequences: false)
                    .map { $0.trimmingCharacters(in: .whitespaces) }
                return (String(entry[..<equals]), values == [""] ? [] : values)
            }
            sweep.seeds = try seeds.map { text in
                try text.split(separator: ",").map { item in
                    guard let seed = UInt64(item.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("--seeds: '\(item)' is not a seed") }
                    return seed
                }
            }
            sweep.parallel = parallel
            sweep.overrides = options.overrides
            sweep.folder = dir.map { URL(fileURLWithPath: $0) }
            sweep.resume = resume
            let folder = try SweepJob.run(URL(fileURLWithPath: path), options: sweep)
            print((try? String(contentsOf: folder.appendingPathComponent("sweep.md"), encoding: .utf8)) ?? "")
            print("sweep folder \(folder.path): sweep.csv, sweep.md, validation.png")
        }
    }
}
