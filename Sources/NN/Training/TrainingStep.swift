import Autograd
import Foundation
import Tensor

/// The optimisation step, the one piece of code that `train` and `bench` run for every head:
/// set the learning rate, zero the gradients, forward and backward over each micro-batch (gradient
/// accumulation; with data parallelism every sum over a batch is exchanged inside the kernels, see
/// `BatchReduction`), global-norm clipping,
/// the optimiser's update, then the objective's after-update work (EMA).
public final class TrainingStep<Objective: StepObjective> {
    public let objective: Objective
    public let optimizer: Optimizer
    public let settings: TrainingSettings
    /// Optimiser steps in the whole run, for schedules that end somewhere (cosine, poly).
    public var totalSteps: Int?

    public init(objective: Objective, settings: TrainingSettings) {
        self.objective = objective
        self.settings = settings
        optimizer = settings.optimizer.makeOptimizer(for: objective.model.namedParameters())
    }

    /// One update from `batches` (one per micro-batch, each with the key of its random draws, and
    /// its shard when the batch is split over data-parallel processes: then `batch` holds only this
    /// process's images and every sum over the batch is exchanged, see `BatchReduction`).
    /// A non-finite loss leaves the weights untouched and is reported in the outcome.
    public func run(step: Int, batches: [(batch: Objective.Batch, key: Int, shard: BatchReduction.Shard?)]) -> StepOutcome {
        precondition(!batches.isEmpty, "a step needs at least one batch")
        optimizer.learningRate = settings.learningRate(atStep: step, totalSteps: totalSteps)
        optimizer.zeroGrad()
        let counts = batches.map { $0.shard?.globalBatch ?? objective.imageCount(of: $0.batch) }
        let images = counts.reduce(0, +)
        var value = 0.0
        for ((batch, key, shard), count) in zip(batches, counts) {
            Tape.current.reset()
            let part = BatchReduction.withShard(shard) { objective.loss(on: batch, key: key) }
            // Each micro-batch's mean loss weighs by its share of the step's images, so the
            // gradient is that of the mean over all of them (one batch: weight 1, nothing scaled).
            let weight = batches.count == 1 ? 1 : Double(count) / Double(images)
            value += batches.count == 1 ? part.value : weight * part.value
            guard part.value.isFinite else {
                Tape.current.reset()
                return StepOutcome(loss: part.value, images: images)
            }
            BatchReduction.withShard(shard) {
                if batches.count == 1 {
                    part.loss.backward()
                } else {
                    part.loss.backward(Tensor(scalar: Float(weight)))
                }
            }
        }
        let parameters = optimizer.parameters.map(\.variable)
        if let maxNorm = settings.gradClipNorm { clipGradientNorm(parameters, maxNorm: maxNorm) }
        optimizer.step()
        objective.afterUpdate()
        return StepOutcome(loss: value, images: images)
    }
}
