import ArgumentParser
import DataParallel
import Foundation
import Workbench

struct WorkbenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workbench",
        abstract: "Train and run the VOC2007 segmentation U-Net and a DDPM on the CPU, from experiment files.",
        version: WorkbenchVersion.string,
        subcommands: [TrainCommand.self, SweepCommand.self, EvalCommand.self, PredictCommand.self, SampleCommand.self, RestoreCommand.self, EvalSamplesCommand.self, ForwardCommand.self, BenchCommand.self, DataCommand.self, ConfigCommand.self, RunsCommand.self, ReproduceCommand.self])
}

// Progress goes to standard error; keep standard output in step with it when piped.
setvbuf(stdout, nil, _IOLBF, 0)
// `--version` also says whether this machine can train data-parallel (it looks for libmpi, which
// other commands never load) and which matrix-product kernels and precisions it runs.
if Array(CommandLine.arguments.dropFirst()) == ["--version"] {
    print(WorkbenchVersion.string)
    print("data-parallel: \(DataParallelSupport.description)")
    print("matrix products: \(Runtime.kernelDescription)")
    exit(0)
}
WorkbenchCommand.main()
