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

/// A head's side of the training loop. The loop (budgets, checkpoints, metrics, resume) is shared;
/// a task knows its data, model, loss and evaluation. Every random draw of step `step` must be a
/// function of (seed, purpose, step), so that a resumed run equals an uninterrupted one.
public protocol TrainingTask: AnyObject {
    var model: Module { get }
    var optimizer: Optimizer { get }
    /// Batches in one pass over the training data.
    var stepsPerEpoch: Int { get }
    /// One optimisation step on batch `batch` of `epoch` (0-based); `step` is the global step.
    func trainStep(step: Int, epoch: Int, batch: Int) throws -> StepOutcome
    /// Validation metrics in display order; the first is the headline (e.g. mIoU).
    func evaluate(progress: ((Int, Int) -> Void)?) throws -> [(name: String, value: Double)]
    /// State beyond the model and optimiser (EMA weights…), saved in checkpoints.
    func extraState() -> SafeTensorsFile
    func loadExtraState(_ file: SafeTensorsFile, path: String) throws
    /// The weights to export as the run's model file (the EMA for diffusion).
    func exportWeights() -> SafeTensorsFile
    /// Writes periodic outputs (sample grids, predictions) for `step` into `folder`.
    func writeOutputs(step: Int, folder: URL) throws
    /// Write outputs every N steps as well as at checkpoints (nil: only at checkpoints).
    var outputEverySteps: Int? { get }
    /// Stops background work (prefetching).
    func close()
}

extension TrainingTask {
    public func extraState() -> SafeTensorsFile { SafeTensorsFile() }
    public func loadExtraState(_ file: SafeTensorsFile, path: String) throws {}
    public func exportWeights() -> SafeTensorsFile { model.stateDict() }
    public func writeOutputs(step: Int, folder: URL) throws {}
    public var outputEverySteps: Int? { nil }
    public func close() {}
}
