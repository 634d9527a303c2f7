import Classification
import DataParallel
import Dispatch
import Foundation
import NN
import Diffusion
import Segmentation
import Tensor

/// Options of `workbench train` that are not part of the experiment.
public struct TrainOptions {
    /// Where runs go (`runs/` by default).
    public var runsBase = URL(fileURLWithPath: "runs")
    /// Use this folder instead of `runs/<name>-<timestamp>/`.
    public var runDirectory: URL?
    /// Continue the run in this folder from its last checkpoint.
    public var resume: URL?
    /// Print progress bars and summaries.
    public var verbose = true
    /// Replace a run already in `runDirectory`.
    public var overwrite = false
    /// End at this step whatever the budgets say (`reproduce` stops where the original stopped,
    /// also when a time budget ended it).
    public var stopAtStep: Int?
    /// The processes of a data-parallel run (`mpirun -np N workbench train …`); nil: this process alone.
    public var processGroup: ProcessGroup?

    public init() {}
}

/// How a training run ended.
public struct TrainResult {
    public enum Ending: String { case completed, interrupted }
    public var run: RunDirectory
    public var ending: Ending
    public var steps: Int
    public var finalMetrics: [(name: String, value: Double)]
}

/// A problem that stops training, with what to do about it.
public struct TrainingError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Set from signal handlers; the loop checks it between steps.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var signal: Int32?
    func set(_ value: Int32) { lock.lock(); signal = value; lock.unlock() }
    var value: Int32? { lock.lock(); defer { lock.unlock() }; return signal }
}

/// The training loop shared by both heads: budgets (epochs, steps, minutes), learning-rate warm-up,
/// metrics, evaluation and checkpoint cadence, atomic checkpoints, resume, SIGINT/SIGTERM and
/// NaN handling. Same experiment + seed + machine + thread count ⇒ byte-identical checkpoints
/// and metrics.jsonl, whether or not the run was interrupted and resumed.
public enum Trainer {
    /// Builds the head's task for an experiment (creating synthetic data first when asked to).
    /// With a data-parallel `split`, the task loads only this process's images of each batch.
    public static func makeTask(_ experiment: Experiment, verbose: Bool = false, split: BatchReduction.Split = .whole,
                                prepare: Bool = true) throws -> any TrainingTask {
        if prepare { try prepareData(experiment, verbose: verbose) }
        switch experiment.head {
        case .segmentation(let settings):
            return try SegmentationTask(settings: settings, seed: experiment.seed, evalSplit: settings.data.valSplit,
                                        evalBatchSize: experiment.evalBatchSize, split: split)
        case .diffusion(let settings):
            return try DiffusionTask(settings: settings, seed: experiment.seed, split: split)
        case .classification(let settings):
            return try ClassificationTask(settings: settings, seed: experiment.seed, split: split)
        }
    }

    /// Generates the experiment's synthetic data set when `data.synthetic` is set and the folder is missing.
    public static func prepareData(_ experiment: Experiment, verbose: Bool) throws {
        guard let synthetic = experiment.synthetic,
              !FileManager.default.fileExists(atPath: experiment.dataRoot.appendingPathComponent("ImageSets").path) else { return }
        if verbose {
            FileHandle.standardError.write(Data("generating \(synthetic.count) synthetic VOC images in \(experiment.dataRoot.path)\n".utf8))
        }
        try SyntheticVOC.generate(root: experiment.dataRoot, count: synthetic.count, seed: synthetic.seed, options: synthetic.options)
    }

    /// Keys whose values may change between a run and its resumption (budgets only).
    static let budgetKeys: Set<String> = ["train.max_steps", "train.max_minutes", "train.epochs"]

    public static func run(_ experiment: Experiment, options: TrainOptions = TrainOptions()) throws -> TrainResult {
        Runtime.configureThreads(experiment.threads)
        let previousPrecision = try Runtime.configureTrainingPrecision(experiment)
        defer { try? BLAS.setPrecision(previousPrecision) }
        guard let group = options.processGroup else {
            let task = try makeTask(experiment, verbose: options.verbose)
            defer { task.close() }
            return try run(task, experiment: experiment, options: options)
        }
        // Rank 0 makes synthetic data (once), then every rank checks that all run the same thing.
        if group.rank == 0 { try prepareData(experiment, verbose: options.verbose) }
        try DataParallelTraining.checkStart(group: group, experiment: experiment)
        let task = try makeTask(experiment, verbose: options.verbose, split: group.split, prepare: false)
        defer { task.close() }
        try DataParallelTraining.checkBatches(task, group: group, experiment: experiment)
        if group.rank != 0 { return try DataParallelTraining.runWorker(task, experiment: experiment, group: group) }
        return try run(task, experiment: experiment, options: options)
    }

    /// Optimiser steps per epoch: each step takes `accumulateSteps` consecutive batches of one
    /// epoch (the epoch's last step may take fewer).
    static func stepsPerEpoch(batches: Int, accumulate: Int) -> Int { (batches + accumulate - 1) / accumulate }

    /// The batches of (0-based) `step`, as global batch indices (which key their random draws).
    static func batchIndices(step: Int, batchesPerEpoch: Int, accumulate: Int) -> Range<Int> {
        let steps = stepsPerEpoch(batches: batchesPerEpoch, accumulate: accumulate)
        let epoch = step / steps, first = (step % steps) * accumulate
        let start = epoch * batchesPerEpoch + first
        return start..<(start + min(accumulate, batchesPerEpoch - first))
    }

    static func run<Task: TrainingTask>(_ task: Task, experiment: Experiment, options: TrainOptions) throws -> TrainResult {
        let threads = BLAS.threadCount
        let settings = experiment.training
        let stepper = TrainingStep(objective: task.objective, settings: settings)
        let accumulate = settings.accumulateSteps, batchesPerEpoch = task.batchesPerEpoch
        guard batchesPerEpoch > 0 else {
            throw TrainingError("\(experiment.source.path): the training data has no images (data.root \(experiment.dataRoot.path)); point data.root at a folder with training images")
        }
        let stepsPerEpoch = Self.stepsPerEpoch(batches: batchesPerEpoch, accumulate: accumulate)
        var step = 0
        var accumulators = Accumulators()
        let run: RunDirectory
        let metrics: MetricsLog
        var previousSeconds = 0.0
        // The step of the last state written (nil: none yet), for messages that must tell the truth about it.
        var lastGoodStep: Int?

        if let resume = options.resume {
            run = RunDirectory(url: resume)
            // The saved config read through today's parser, so keys added since the run started
            // (at their defaults) do not count as changes; as text when it no longer parses.
            let saved = (try? Experiment.load(run.configURL, checkData: false))?.resolved ?? ResolvedConfig(run: run)
            // A run killed while writing its first file has no config yet; it restarts below.
            guard saved != nil || run.isUnfinishedStart else {
                throw TrainingError("\(run.configURL.path): missing; \(resume.path) is not a workbench run folder")
            }
            let changed = saved?.differences(to: experiment.resolved, ignoring: budgetKeys) ?? []
            if !changed.isEmpty {
                let shown = changed.prefix(8).joined(separator: "; ") + (changed.count > 8 ? "; and \(changed.count - 8) more" : "")
                throw TrainingError("\(experiment.source.path) differs from \(run.configURL.path) beyond the budget keys (train.epochs, train.max_steps, train.max_minutes): \(shown); resume with the experiment the run started from (or the run's own config.yaml)")
            }
            try run.lock()
            run.removeStaleTemporaries()
            if saved != nil && FileManager.default.fileExists(atPath: run.stateURL.path) {
                let state = try SafeTensorsFile.read(run.stateURL)
                step = try restore(task: task, optimizer: stepper.optimizer, from: state, path: run.stateURL.path, accumulators: &accumulators)
                previousSeconds = Progress.read(run.progressURL).seconds(atStep: step) ?? 0
                lastGoodStep = step
                metrics = try MetricsLog(folder: run.url)
                try metrics.truncate(toStep: step)
                run.log("resumed at step \(step)")
            } else {
                // Stopped before its first checkpoint: nothing to keep, so the run starts over here.
                try run.clear()
                metrics = try MetricsLog(folder: run.url)
                run.log("no checkpoint to resume from; started \(experiment.name) again from step 0")
                if options.verbose {
                    FileHandle.standardError.write(Data("\(run.url.path) has no checkpoint yet; training starts there from step 0\n".utf8))
                }
            }
            try AtomicFile.write(Data(experiment.resolvedYAML.utf8), to: run.configURL)
            if !FileManager.default.fileExists(atPath: run.manifestURL.path) {
                try run.writeJSON(Manifest.make(experiment: experiment, threads: threads, group: options.processGroup), to: run.manifestURL)
            }
        } else {
            run = try RunDirectory.create(name: experiment.name, base: options.runsBase, explicit: options.runDirectory, overwrite: options.overwrite)
            try AtomicFile.write(Data(experiment.resolvedYAML.utf8), to: run.configURL)
            try run.writeJSON(Manifest.make(experiment: experiment, threads: threads, group: options.processGroup), to: run.manifestURL)
            metrics = try MetricsLog(folder: run.url)
            run.log("started \(experiment.name) (\(experiment.source.path)), seed \(experiment.seed), \(threads) threads, \(task.model.parameterCount) parameters")
        }

        defer { run.unlock() }
        // The TensorBoard log, written afresh from what the folder holds (on resume: the truncated
        // metrics and the images up to this step), then appended to.
        let tensorBoard = try TensorBoardLog(folder: run.tensorBoardURL)
        try tensorBoard.sessionStart(hyperparameters: experiment.resolved.sortedValues,
                                     group: experiment.configHash)
        for record in metrics.records { try tensorBoard.record(record) }
        for (tag, folder) in [("outputs", run.outputs), ("eval", run.plots)] {
            for (name, imageStep) in RunDirectory.steppedImages(in: folder) where imageStep <= step {
                try tensorBoard.image(tag: "\(tag)/\(name)", png: folder.appendingPathComponent(RunDirectory.steppedImageName(name, imageStep)), step: imageStep)
            }
        }
        var outputsWrittenAt: Int?
        func log(_ record: MetricsRecord) throws {
            try metrics.append(record)
            try tensorBoard.record(record)
        }
        var totalSteps = Int.max
        if let epochs = settings.epochs { totalSteps = epochs * stepsPerEpoch }
        if let maxSteps = settings.maxSteps { totalSteps = min(totalSteps, maxSteps) }
        // The schedule spans the experiment's budget, also when `stopAtStep` ends the run earlier.
        stepper.totalSteps = totalSteps == Int.max ? nil : totalSteps
        if let stopAt = options.stopAtStep { totalSteps = min(totalSteps, stopAt) }
        // The other ranks of a data-parallel run start from this state and then follow rank 0's
        // steps, evaluations and outputs (created below, after a resume's regenerated outputs).
        var workers: DataParallelTraining.Workers?


        /// Whether the loop writes outputs at `step` (checkpoints, and the task's own cadence).
        func outputsDue(atStep step: Int) -> Bool {
            guard step > 0 else { return false }
            let atEpochCheckpoint = step % stepsPerEpoch == 0 && settings.checkpointEveryEpochs.map { (step / stepsPerEpoch) % $0 == 0 } == true
            let atStepCheckpoint = settings.checkpointEverySteps.map { step % $0 == 0 } == true
            let atOutputStep = task.outputEverySteps.map { step % $0 == 0 && step < totalSteps } == true
            return atEpochCheckpoint || atStepCheckpoint || atOutputStep
        }
        // A kill between a checkpoint's state and its outputs loses them: make them again from the restored state.
        if options.resume != nil, outputsDue(atStep: step),
           task.outputNames(step: step).contains(where: { !FileManager.default.fileExists(atPath: run.outputs.appendingPathComponent($0).path) }) {
            try writeOutputs()
            run.log("regenerated the outputs of step \(step)")
        }
        if let group = options.processGroup {
            workers = DataParallelTraining.Workers(group: group, run: run, totalSteps: stepper.totalSteps,
                                                   state: stateFile(task: task, optimizer: stepper.optimizer, step: step,
                                                                    accumulators: accumulators, experiment: experiment))
            task.workSplit = WorkSplit(split: group.split, exchange: group)
            run.log("data-parallel over \(group.size) ranks (\(Set(group.hosts).sorted().joined(separator: ", "))), \(threads) threads each")
        }
        let stop = StopFlag()
        let signalSources = [SIGINT, SIGTERM].map { number -> DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { stop.set(number) }
            source.resume()
            return source
        }
        defer {
            for source in signalSources { source.cancel() }
            signal(SIGINT, SIG_DFL)
            signal(SIGTERM, SIG_DFL)
        }

        let started = Date()
        func elapsedSeconds() -> Double { previousSeconds + Date().timeIntervalSince(started) }
        func goodCheckpoint() -> String {
            lastGoodStep.map { "\(run.stateURL.path) still holds the last good state (step \($0)); resume from it with a lower train.lr or train.grad_clip" }
                ?? "no checkpoint was written yet; re-run with a lower train.lr, set train.grad_clip, or check the data"
        }
        /// Stops the run when any weight, buffer or optimiser moment is NaN or infinite.
        func checkFinite() throws {
            let named = task.model.stateDict().entries.map { ("model." + $0.key, $0.value) }
                + stepper.optimizer.stateEntries().entries.map { ("optimizer." + $0.key, $0.value) }
            for (name, entry) in named.sorted(by: { $0.0 < $1.0 }) where entry.dtype == .F32 {
                if let bad = entry.floats().first(where: { !$0.isFinite }) {
                    run.log("\(name) holds \(bad) at step \(step); stopped")
                    throw TrainingError("the model state became non-finite by step \(step): \(name) holds \(bad); training stopped and \(goodCheckpoint()).")
                }
            }
        }
        func writeOutputs() throws {
            // Once per step (a checkpoint step that is also the last would write the same files twice).
            guard outputsWrittenAt != step else { return }
            outputsWrittenAt = step
            workers?.announce(.outputs, step: step)
            try task.writeOutputs(step: step, folder: run.outputs)
            FaultInjection.point("trainer.outputs-written")
            for name in task.outputNames(step: step) {
                try tensorBoard.image(tag: "outputs/\(RunDirectory.imageSeries(name))", png: run.outputs.appendingPathComponent(name), step: step)
            }
        }
        var progress = options.resume == nil ? Progress() : Progress.read(run.progressURL)
        func saveState() throws {
            try checkFinite()
            // progress.json first, holding this step and the previous one: whichever state a kill
            // leaves behind, its seconds are there (the state itself stays free of timing, so equal
            // runs write equal bytes).
            progress.record(step: step, seconds: elapsedSeconds())
            try run.writeJSON(progress.json, to: run.progressURL)
            try stateFile(task: task, optimizer: stepper.optimizer, step: step, accumulators: accumulators, experiment: experiment)
                .write(to: run.stateURL)
            lastGoodStep = step
            FaultInjection.point("trainer.state-saved")
        }
        func evaluate(kind: String) throws -> [(name: String, value: Double)] {
            var bar: ProgressBar?
            let began = Date()
            workers?.announce(.evaluate, step: step)
            let values = try task.evaluate { done, total in
                guard options.verbose else { return }
                if bar == nil { bar = ProgressBar(label: "  eval", total: total, unit: "img", started: began) }
                bar?.update(done)
            }
            if !values.isEmpty {
                for plot in try task.writeEvaluationPlots(step: step, folder: run.plots) {
                    try tensorBoard.image(tag: "eval/\(RunDirectory.imageSeries(plot.lastPathComponent))", png: plot, step: step)
                }
                try log(MetricsRecord(kind: kind, step: step, epoch: step / stepsPerEpoch, values: values))
                run.log("\(kind) at step \(step): " + values.map { "\($0.name) \(String(format: "%.4f", $0.value))" }.joined(separator: ", "))
                if options.verbose {
                    print("  \(kind) step \(step): " + values.map { "\($0.name) \(String(format: "%.4f", $0.value))" }.joined(separator: "  "))
                }
            }
            return values
        }

        var bar: ProgressBar?
        var barImages = 0.0
        var (intervalImages, intervalStart) = (0, Date())
        while step < totalSteps {
            if let number = stop.value {
                try saveState()
                run.log("stopped by signal \(number) at step \(step); checkpoint written")
                if options.verbose {
                    FileHandle.standardError.write(Data("\nstopped at step \(step); checkpoint written. Continue with: workbench train \(experiment.source.path) --resume \(run.url.path)\n".utf8))
                }
                workers?.finish(.interrupted, step: step)
                return TrainResult(run: run, ending: .interrupted, steps: step, finalMetrics: [])
            }
            if let minutes = settings.maxMinutes, options.stopAtStep == nil, elapsedSeconds() >= minutes * 60 {
                run.log("time budget of \(minutes) minutes reached at step \(step)")
                break
            }
            let epoch = step / stepsPerEpoch, batch = step % stepsPerEpoch
            // One bar over the run's steps when its length is known (ETA to the end), else one per epoch.
            if options.verbose && (bar == nil || (totalSteps == Int.max && batch == 0)) {
                bar = totalSteps == Int.max
                    ? ProgressBar(label: "epoch \(epoch + 1)", total: stepsPerEpoch, unit: "img")
                    : ProgressBar(label: "step", total: totalSteps, unit: "img", initial: step)
                barImages = 0
            }
            workers?.announce(.step, step: step)
            let outcome = try runStep(stepper, task: task, step: step, accumulate: accumulate, group: options.processGroup)
            let learningRate = stepper.optimizer.learningRate
            guard outcome.loss.isFinite else {
                run.log("loss is \(outcome.loss) at step \(step + 1); stopped")
                throw TrainingError("loss became \(outcome.loss) at step \(step + 1) (epoch \(epoch + 1)); training stopped and \(goodCheckpoint()).")
            }
            step += 1
            FaultInjection.point("trainer.step")
            if step % settings.logEverySteps == 0 { try checkFinite() }
            accumulators.add(outcome.loss)
            barImages += Double(outcome.images)
            // The epochs this run will see, whichever budget ends it.
            let epochText = "epoch \(epoch + 1)/\((totalSteps + stepsPerEpoch - 1) / stepsPerEpoch)"
            bar?.update(totalSteps == Int.max ? batch + 1 : step, processed: barImages,
                        extra: totalSteps == Int.max ? String(format: "loss %.4f", outcome.loss) : epochText + String(format: " loss %.4f", outcome.loss))
            intervalImages += outcome.images
            if step % settings.logEverySteps == 0 {
                try log(MetricsRecord(kind: "train", step: step, epoch: epoch,
                                      values: [("loss", accumulators.intervalMean()), ("lr", learningRate)]))
                // Throughput goes to TensorBoard only: metrics.jsonl holds nothing time-dependent.
                let now = Date()
                try tensorBoard.scalars([("images_per_second", Double(intervalImages) / max(now.timeIntervalSince(intervalStart), 1e-9))],
                                        group: "train", step: step)
                (intervalImages, intervalStart) = (0, now)
            }
            let epochEnded = step % stepsPerEpoch == 0
            var evaluated = false
            if epochEnded {
                let mean = accumulators.epochMean()
                try log(MetricsRecord(kind: "epoch", step: step, epoch: epoch + 1, values: [("loss", mean)]))
                run.log("epoch \(epoch + 1) done at step \(step): average loss \(String(format: "%.6f", mean))")
                if options.verbose { print(String(format: "epoch %d: average loss %.4f", epoch + 1, mean)) }
                if let every = settings.evalEveryEpochs, (epoch + 1) % every == 0 {
                    _ = try evaluate(kind: "eval")
                    evaluated = true
                }
                if let every = settings.checkpointEveryEpochs, (epoch + 1) % every == 0 {
                    try task.exportWeights().write(to: run.checkpoints.appendingPathComponent(String(format: "model-epoch%04d.safetensors", epoch + 1)))
                    try saveState()
                    try writeOutputs()
                }
            }
            if let every = settings.evalEverySteps, step % every == 0, !evaluated { _ = try evaluate(kind: "eval") }
            var wroteOutputs = false
            if let every = settings.checkpointEverySteps, step % every == 0 {
                try task.exportWeights().write(to: run.checkpoints.appendingPathComponent(String(format: "model-step%07d.safetensors", step)))
                try saveState()
                try writeOutputs()
                wroteOutputs = true
            }
            if let every = task.outputEverySteps, step % every == 0, !wroteOutputs, step < totalSteps {
                try writeOutputs()
            }
        }

        // End of the budget: final checkpoint, final evaluation, plots and a summary.
        try task.exportWeights().write(to: run.checkpoints.appendingPathComponent("model-final.safetensors"))
        try saveState()
        try writeOutputs()
        var final: [(name: String, value: Double)]
        if let last = metrics.records.last, last.kind == "eval", last.step == step {
            final = last.values
            try log(MetricsRecord(kind: "final_eval", step: step, epoch: step / stepsPerEpoch, values: final))
        } else {
            final = try evaluate(kind: "final_eval")
        }
        try metrics.writePlots(to: run.plots)
        var summary: [String: Any] = ["steps": step, "epochs_completed": step / stepsPerEpoch, "seconds": elapsedSeconds(),
                                      "final_loss": metrics.last("loss", kind: "epoch") ?? metrics.last("loss", kind: "train") ?? Double.nan]
        for (name, value) in final { summary[name] = value }
        // JSON has no NaN or infinity: such a value (an SSIM of images smaller than its window…) is null.
        for (key, value) in summary { if let number = value as? Double, !number.isFinite { summary[key] = NSNull() } }
        try run.writeJSON(summary, to: run.summaryURL)
        run.log("finished at step \(step) after \(ProgressBar.clock(elapsedSeconds()))")
        if options.verbose {
            print("finished: \(step) steps in \(ProgressBar.clock(elapsedSeconds())); run folder \(run.url.path)")
        }
        try tensorBoard.sessionEnd(completed: true)
        workers?.finish(.completed, step: step)
        return TrainResult(run: run, ending: .completed, steps: step, finalMetrics: final)
    }

    /// Training step `step` on this process's part of its batches (all of them without a group).
    static func runStep<Task: TrainingTask>(_ stepper: TrainingStep<Task.Objective>, task: Task, step: Int, accumulate: Int,
                                            group: ProcessGroup?) throws -> StepOutcome {
        let batches = try batchIndices(step: step, batchesPerEpoch: task.batchesPerEpoch, accumulate: accumulate).map { index in
            (batch: try task.batch(index), key: index, shard: group.map { $0.split.shard(batch: task.imagesInBatch(index), exchange: $0) })
        }
        return stepper.run(step: step, batches: batches)
    }

    // MARK: Checkpoint state

    /// checkpoints/progress.json: the training seconds at the last two states written, so the one
    /// a resume finds is always covered.
    struct Progress {
        var entries: [(step: Int, seconds: Double)] = []

        static func read(_ url: URL) -> Progress {
            guard let data = try? Data(contentsOf: url),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return Progress() }
            var progress = Progress()
            for prefix in ["previous_", ""] {
                if let step = object[prefix + "step"] as? Int, let seconds = object[prefix + "seconds"] as? Double {
                    progress.entries.append((step, seconds))
                }
            }
            return progress
        }

        mutating func record(step: Int, seconds: Double) {
            entries = Array((entries + [(step, seconds)]).suffix(2))
        }

        func seconds(atStep step: Int) -> Double? { entries.last { $0.step == step }?.seconds }

        var json: [String: Any] {
            var object: [String: Any] = [:]
            if let last = entries.last { object["step"] = last.step; object["seconds"] = last.seconds }
            if entries.count == 2 { object["previous_step"] = entries[0].step; object["previous_seconds"] = entries[0].seconds }
            return object
        }
    }

    struct Accumulators {
        var epochSum = 0.0, epochCount = 0, intervalSum = 0.0, intervalCount = 0

        mutating func add(_ loss: Double) {
            epochSum += loss; epochCount += 1
            intervalSum += loss; intervalCount += 1
        }

        mutating func intervalMean() -> Double {
            defer { intervalSum = 0; intervalCount = 0 }
            return intervalSum / Double(max(intervalCount, 1))
        }

        mutating func epochMean() -> Double {
            defer { epochSum = 0; epochCount = 0 }
            return epochSum / Double(max(epochCount, 1))
        }
    }

    static func stateFile(task: any TrainingTask, optimizer: Optimizer, step: Int, accumulators: Accumulators,
                          experiment: Experiment) -> SafeTensorsFile {
        var file = SafeTensorsFile()
        for (key, entry) in task.model.stateDict().entries { file["model." + key] = entry }
        for (key, entry) in optimizer.stateEntries().entries { file["optimizer." + key] = entry }
        for (key, entry) in task.extraState().entries { file["extra." + key] = entry }
        file["step"] = SafeTensorsEntry(int64s: [Int64(step)], shape: [])
        file["trainer.loss_sums"] = SafeTensorsEntry(doubles: [accumulators.epochSum, accumulators.intervalSum], shape: [2])
        file["trainer.loss_counts"] = SafeTensorsEntry(int64s: [Int64(accumulators.epochCount), Int64(accumulators.intervalCount)], shape: [2])
        file.metadata = ["config_hash": experiment.configHash, "workbench_version": WorkbenchVersion.string]
        return file
    }

    /// Restores model, optimiser, task state and loss accumulators; returns the step.
    static func restore(task: any TrainingTask, optimizer: Optimizer, from file: SafeTensorsFile, path: String,
                        accumulators: inout Accumulators) throws -> Int {
        func part(_ prefix: String) -> SafeTensorsFile {
            var sub = SafeTensorsFile()
            for (key, entry) in file.entries where key.hasPrefix(prefix) { sub[String(key.dropFirst(prefix.count))] = entry }
            return sub
        }
        try task.model.loadStateDict(part("model."), path: path)
        try optimizer.loadState(part("optimizer."), path: path)
        try task.loadExtraState(part("extra."), path: path)
        guard let step = file["step"]?.int64s().first, let sums = file["trainer.loss_sums"]?.doubles(),
              let counts = file["trainer.loss_counts"]?.int64s(), sums.count == 2, counts.count == 2 else {
            throw TrainingError("\(path): not a workbench training state (step or loss accumulators missing)")
        }
        accumulators = Accumulators(epochSum: sums[0], epochCount: Int(counts[0]), intervalSum: sums[1], intervalCount: Int(counts[1]))
        return Int(step)
    }
}
