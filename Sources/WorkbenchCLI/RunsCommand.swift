import ArgumentParser
import Foundation
import Workbench

struct RunsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs", abstract: "List and compare run folders.", subcommands: [List.self, Compare.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the runs under runs/ with their status and final metrics.",
            discussion: "Examples:\n  workbench runs list\n  workbench runs list --dir sweeps/lr/runs")
        @Option(help: "The folder holding run folders.") var dir = "runs"

        func run() throws {
            try reportingErrors { print(RunJobs.listTable(try RunJobs.list(base: URL(fileURLWithPath: dir)))) }
        }
    }

    struct Compare: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Final metrics and config differences of runs, as a table.",
            discussion: "Examples:\n  workbench runs compare runs/voc-a runs/voc-b\n  workbench runs compare runs/ddpm-* --plot ddpm.png")
        @Argument(help: "Run folders.") var runs: [String]
        @Option(help: "Where to write the PNG overlaying the runs' loss and headline metric.") var plot = "compare.png"

        func run() throws {
            try reportingErrors {
                let infos = try runs.map { try RunJobs.info(URL(fileURLWithPath: $0)) }
                print(RunJobs.compareTable(infos))
                try RunJobs.writeComparePlot(infos, to: URL(fileURLWithPath: plot))
                print("\nplot: \(plot)")
            }
        }
    }
}

struct ReproduceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reproduce",
        abstract: "Re-run a finished run from its saved config and report whether metrics and checkpoints match bit for bit.",
        discussion: "Examples:\n  workbench reproduce runs/voc2007-quick-20261202-0700\n  workbench reproduce runs/ddpm --run-dir /tmp/ddpm-again --quiet")

    @Argument(help: "A finished run folder.") var runFolder: String
    @Option(help: "Where to write the re-run (default: <run>-reproduced).") var runDir: String?
    @Flag(help: "Print only the verdict.") var quiet = false

    func run() throws {
        try reportingErrors {
            let result = try RunJobs.reproduce(URL(fileURLWithPath: runFolder), output: runDir.map { URL(fileURLWithPath: $0) }, verbose: !quiet)
            if result.matches {
                print("reproduced bit for bit: \(result.rerun.path) matches \(result.original.path)")
            } else {
                print("NOT reproduced: " + result.differences.joined(separator: "; "))
                throw ExitCode.failure
            }
        }
    }
}
