import DataParallel
import Foundation
import NN
import Tensor

/// The data-parallel side of training (`mpirun -np N workbench train E`). Rank 0 runs the normal
/// training loop and owns the run folder; every other rank is a worker that starts from rank 0's
/// state and runs exactly the steps rank 0 announces, on its own part of each batch. The sums over
/// a batch are exchanged inside the step (`BatchReduction`), so every rank holds the same weights,
/// and they equal those of one process training on the whole batch, bit for bit.
enum DataParallelTraining {
    /// What rank 0 tells the workers before each step.
    enum Command: Int64 {
        case step = 1, completed = 2, interrupted = 3, failed = 4, evaluate = 5, outputs = 6
    }

    /// The bytes of a command for `step`.
    static func encode(_ command: Command, step: Int) -> [UInt8] {
        [command.rawValue, Int64(step)].withUnsafeBytes { Array($0) }
    }

    static func decode(_ bytes: [UInt8]) -> (command: Command, step: Int)? {
        guard bytes.count == 16 else { return nil }
        let values = bytes.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) }
        return Command(rawValue: values[0]).map { ($0, Int(values[1])) }
    }

    /// Stops unless every rank runs the same experiment with the same binary, and the batches split
    /// into at least one gradient group per rank.
    static func checkStart(group: ProcessGroup, experiment: Experiment) throws {
        let mine = "\(experiment.configHash) \(WorkbenchVersion.string) \(executableFingerprint())"
        let all = group.allGatherBytes(Array(mine.utf8), what: "the start-up check").map { String(decoding: $0, as: UTF8.self) }
        let parts = all.map { $0.split(separator: " ").map(String.init) }
        if let different = parts.indices.first(where: { parts[$0].first != parts[0].first }) {
            throw TrainingError("\(experiment.source.path): rank \(different) runs an experiment whose resolved config differs from rank 0's (config hash \(parts[different].first ?? "?") ≠ \(parts[0].first ?? "?")); start every rank with the same experiment file and --set options")
        }
        if let different = parts.indices.first(where: { parts[$0].dropFirst() != parts[0].dropFirst() }) {
            throw TrainingError("rank \(different) on \(group.hosts[different]) runs another workbench binary than rank 0 on \(group.hosts[0]) (\(parts[different].dropFirst().joined(separator: " ")) ≠ \(parts[0].dropFirst().joined(separator: " "))); install the same build on every host")
        }
        let batch = experiment.training.batchSize, groups = BatchReduction.Split.groups(batch: batch)
        if groups < group.size {
            throw TrainingError("\(experiment.source.path): train.batch_size \(batch) splits into \(groups) gradient groups, fewer than the \(group.size) ranks (each rank needs at least one group of whole images); use train.batch_size ≥ \(group.size) or fewer ranks")
        }
    }

    /// Stops unless the smallest batch of an epoch (the last one) still has a group for every rank.
    static func checkBatches(_ task: any TrainingTask, group: ProcessGroup, experiment: Experiment) throws {
        let last = task.imagesInBatch(task.batchesPerEpoch - 1)
        if BatchReduction.Split.groups(batch: last) < group.size {
            throw TrainingError("\(experiment.source.path): the last batch of each epoch holds \(last) images, fewer than the \(group.size) ranks; choose train.batch_size so that the training images (\(task.batchesPerEpoch - 1) full batches + \(last)) leave at least \(group.size) in the last batch, or use fewer ranks")
        }
    }

    /// A fingerprint of the running executable (its size and a hash of its bytes).
    static func executableFingerprint() -> String {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: "/proc/self/exe")) else { return "unknown-binary" }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        data.withUnsafeBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for word in words { hash = (hash ^ word) &* 0x0000_0100_0000_01B3 }
        }
        return "\(data.count):\(String(hash, radix: 16))"
    }

    /// Rank 0's handle on the workers: the starting state, then one command per step.
    final class Workers {
        let group: ProcessGroup
        private var finished = false

        init(group: ProcessGroup, run: RunDirectory, totalSteps: Int?, state: SafeTensorsFile) {
            self.group = group
            var start = state
            start.metadata["run"] = run.url.path
            start.metadata["total_steps"] = totalSteps.map(String.init) ?? ""
            _ = group.broadcast(Array(start.serialized()), from: 0, what: "sending the starting state", timeout: group.timeout)
        }

        /// Has the workers join rank 0 in a step, an evaluation or the outputs of `step`.
        func announce(_ command: Command, step: Int) {
            _ = group.broadcast(encode(command, step: step), from: 0, what: "announcing \(command) at step \(step)", timeout: group.timeout)
        }

        /// Ends the workers: completed or interrupted; `failed` when rank 0 stops with an error.
        func finish(_ command: Command, step: Int) {
            guard !finished else { return }
            finished = true
            _ = group.broadcast(encode(command, step: step), from: 0, what: "stopping the workers", timeout: group.timeout)
        }

        deinit { finish(.failed, step: 0) }
    }

    /// A worker rank: rank 0's starting state, then its steps until rank 0 says stop.
    static func runWorker<Task: TrainingTask>(_ task: Task, experiment: Experiment, group: ProcessGroup) throws -> TrainResult {
        // Rank 0 decides when to stop (with a checkpoint); a signal here only ends the run through it.
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let settings = experiment.training
        let stepper = TrainingStep(objective: task.objective, settings: settings)
        let bytes = group.broadcast(nil, from: 0, what: "rank 0's starting state", timeout: nil)
        let state = try SafeTensorsFile.parse(Data(bytes), path: "the starting state from rank 0")
        var accumulators = Trainer.Accumulators()
        var step = try Trainer.restore(task: task, optimizer: stepper.optimizer, from: state, path: "the starting state from rank 0",
                                       accumulators: &accumulators)
        stepper.totalSteps = state.metadata["total_steps"].flatMap { Int($0) }
        let run = RunDirectory(url: URL(fileURLWithPath: state.metadata["run"] ?? "."))
        task.workSplit = WorkSplit(split: group.split, exchange: group)
        while true {
            // No time limit here: rank 0 may be evaluating or writing outputs between steps.
            guard let (command, announced) = decode(group.broadcast(nil, from: 0, what: "rank 0's next step", timeout: nil)) else {
                throw TrainingError("rank \(group.rank): a malformed command from rank 0")
            }
            switch command {
            case .step:
                guard announced == step else {
                    throw TrainingError("rank \(group.rank) is at step \(step) but rank 0 announced step \(announced)")
                }
                _ = try Trainer.runStep(stepper, task: task, step: step, accumulate: settings.accumulateSteps, group: group)
                step += 1
                FaultInjection.point("worker.step")
            case .evaluate:
                _ = try task.evaluate(progress: nil)
            case .outputs:
                // The task computes its share and writes nothing on a worker.
                try task.writeOutputs(step: announced, folder: run.outputs)
            case .completed, .interrupted:
                return TrainResult(run: run, ending: command == .completed ? .completed : .interrupted, steps: step, finalMetrics: [])
            case .failed:
                throw TrainingError("rank \(group.rank): rank 0 stopped the run with an error (its message says why)")
            }
        }
    }
}
