import ArgumentParser
import Foundation
import Workbench

struct ForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Run the experiment's model on a tensor (key x of a safetensors file) and write key y.",
        discussion: """
        Examples:
          workbench forward --run runs/voc --input x.safetensors --output y.safetensors
          workbench forward Experiments/voc2007-seed.yaml --checkpoint weights.safetensors --input x.safetensors --output y.safetensors --train-mode
        """)

    @Argument(help: "The experiment file that describes the model, or --config, or --run.") var experiment: String?
    @Option(help: "A safetensors file holding the NCHW float32 input under key x.") var input: String
    @Option(help: "Where to write the output (key y).") var output: String
    @Flag(help: "Use batch statistics (dropout stays off) instead of eval mode.") var trainMode = false
    @OptionGroup var model: ModelOptions

    func run() throws {
        try reportingErrors {
            let (experiment, checkpoint) = try model.load(self.experiment, checkData: false)
            Runtime.configureThreads(experiment.threads)
            let shape = try ForwardJob.run(experiment: experiment, checkpoint: checkpoint,
                                           input: URL(fileURLWithPath: input), output: URL(fileURLWithPath: output),
                                           trainMode: trainMode)
            print("wrote y \(shape) to \(output)")
        }
    }
}

/// Prints a workbench error as one clear message (no stack trace) and exits with status 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch let error as CleanExit {
        throw error
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode.failure
    }
}
