import Autograd
import Foundation
import Tensor

/// What one optimisation step reports.
public struct StepOutcome: Sendable {
    public var loss: Double
    /// Images (samples) the step consumed, for throughput.
    public var images: Int
    public init(loss: Double, images: Int) {
        self.loss = loss
        self.images = images
    }
}

/// One micro-batch's forward pass: the loss on the tape and the images it used.
public struct BatchLoss {
    /// A scalar variable; the trainer runs backward from it.
    public var loss: Variable
    /// The loss as reported (in full precision where the op computes it in Double).
    public var value: Double
    public var images: Int

    public init(loss: Variable, value: Double? = nil, images: Int) {
        self.loss = loss
        self.value = value ?? Double(loss.value.scalarValue)
        self.images = images
    }
}

/// The differentiable half of a head's training: a model and the loss of a batch. The optimisation
/// step around it (backward, gradient hook, clipping, the update) belongs to `TrainingStep`.
public protocol StepObjective: AnyObject {
    associatedtype Batch
    var model: Module { get }
    /// Images in a batch, known before its forward pass (gradient accumulation weighs by it).
    func imageCount(of batch: Batch) -> Int
    /// The forward pass on the tape in training mode. Every random draw is keyed by `key`, the
    /// global index of the batch, so that a resumed run equals an uninterrupted one.
    func loss(on batch: Batch, key: Int) -> BatchLoss
    /// Work after the optimiser's update (the EMA of the weights).
    func afterUpdate()
}

extension StepObjective {
    public func afterUpdate() {}
}

/// A head's side of the training loop. The loop (budgets, checkpoints, metrics, resume) and the
/// optimisation step are shared; a task knows its data, its objective and its evaluation.
public protocol TrainingTask: AnyObject {
    associatedtype Objective: StepObjective
    var objective: Objective { get }
    /// Batches in one pass over the training data.
    var batchesPerEpoch: Int { get }
    /// Training batch `index` counted from the start of training (epoch = index / batchesPerEpoch),
    /// shuffled and augmented as a pure function of (seed, epoch, sample).
    /// In a data-parallel run, only this process's images of the batch (see `BatchReduction.Split`).
    func batch(_ index: Int) throws -> Objective.Batch
    /// Images in training batch `index` (the whole batch, in every process of a data-parallel run).
    func imagesInBatch(_ index: Int) -> Int
    /// Validation metrics in display order; the first is the headline (e.g. mIoU).
    func evaluate(progress: ((Int, Int) -> Void)?) throws -> [(name: String, value: Double)]
    /// Pictures of the last evaluation (a confusion matrix…) for `step`, into `folder`; returns the files.
    func writeEvaluationPlots(step: Int, folder: URL) throws -> [URL]
    /// State beyond the model and optimiser (EMA weights…), saved in checkpoints.
    func extraState() -> SafeTensorsFile
    func loadExtraState(_ file: SafeTensorsFile, path: String) throws
    /// The weights to export as the run's model file (the EMA for diffusion).
    func exportWeights() -> SafeTensorsFile
    /// Writes periodic outputs (sample grids, predictions) for `step` into `folder`.
    func writeOutputs(step: Int, folder: URL) throws
    /// The files `writeOutputs(step:folder:)` writes, so a resume can tell whether they are there.
    func outputNames(step: Int) -> [String]
    /// Write outputs every N steps as well as at checkpoints (nil: only at checkpoints).
    var outputEverySteps: Int? { get }
    /// Stops background work (prefetching).
    func close()
    /// In a data-parallel run, how evaluation and outputs are shared by the processes (nil: all here).
    var workSplit: WorkSplit? { get set }
}

extension TrainingTask {
    public var model: Module { objective.model }
    public func writeEvaluationPlots(step: Int, folder: URL) throws -> [URL] { [] }
    public func extraState() -> SafeTensorsFile { SafeTensorsFile() }
    public func loadExtraState(_ file: SafeTensorsFile, path: String) throws {}
    public func exportWeights() -> SafeTensorsFile { model.stateDict() }
    public func writeOutputs(step: Int, folder: URL) throws {}
    public func outputNames(step: Int) -> [String] { [] }
    public var outputEverySteps: Int? { nil }
    public func close() {}
}
