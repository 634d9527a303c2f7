import ArgumentParser
import DataParallel
import Foundation
import Workbench

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure training and inference speed, convolution GFLOP/s against this machine's raw sgemm, and peak memory (use a release build).",
        discussion: """
        Under `mpirun -np N` it times the data-parallel training step (each rank its share of the batch)
        and the exchanges between ranks.

        Examples:
          workbench bench Experiments/bench/seed-128.yaml
          workbench bench Experiments/ddpm-mnist.yaml --sampling-images 8 --json
          workbench bench Experiments/bench/seed-128.yaml --profile
          mpirun -np 2 workbench bench Experiments/bench/seed-128.yaml --set threads=1
        """)

    @Argument(help: "The experiment file whose model, batch size and image size are measured (or --config).") var experiment: String?
    @Option(help: "Timed training steps (the median is reported).") var steps = 5
    @Option(help: "Untimed warm-up steps.") var warmup = 1
    @Flag(help: "Add forward/backward time per layer kind and shape.") var profile = false
    @Option(help: "Images sampled for the DDPM-1000 and DDIM-50 rates (diffusion; 0 skips).") var samplingImages = 4
    @Option(help: "Side of the square matrix products that give the GEMM reference rates.") var gemmSize = 2048
    @Flag(help: "Print one JSON object.") var json = false
    @OptionGroup var options: ExperimentOptions

    func run() throws {
        try reportingErrors {
            let loaded = try options.load(experiment, checkData: false)
            var benchOptions = BenchJob.Options()
            benchOptions.steps = max(1, steps)
            benchOptions.warmup = max(0, warmup)
            benchOptions.profile = profile
            benchOptions.samplingImages = samplingImages
            benchOptions.gemmSize = gemmSize
            // Under mpirun: the data-parallel training step, reported by rank 0.
            let group = try MPIProcessGroup.fromEnvironment()
            defer { group?.finalize() }
            benchOptions.processGroup = group
            let speaks = (group?.rank ?? 0) == 0
            let result = try BenchJob.run(loaded, options: benchOptions) { line in
                if !json && speaks { FileHandle.standardError.write(Data((line + "\n").utf8)) }
            }
            guard speaks else { return }
            if json {
                let data = try JSONSerialization.data(withJSONObject: result.json, options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(BenchJob.table(result))
            }
        }
    }
}
