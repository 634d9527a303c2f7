import Autograd
import NN
import Tensor
import TestSupport
import XCTest

/// The shared optimisation step: accumulation, sharded batches, clipping and the learning rate.
final class TrainingStepTests: XCTestCase {
    /// A linear regression with MSE: no batch statistics, so accumulation must equal one large batch.
    final class Regression: StepObjective {
        let layer = Linear(3, 2)
        var updates = 0
        init() { layer.initialize(generator: RandomGenerator(seed: 1, purpose: "init")) }
        var model: Module { layer }
        func imageCount(of batch: (x: Tensor, y: Tensor)) -> Int { batch.x.shape[0] }
        func loss(on batch: (x: Tensor, y: Tensor), key: Int) -> BatchLoss {
            BatchLoss(loss: Functional.meanSquaredError(layer(Variable(batch.x)), Variable(batch.y)), images: batch.x.shape[0])
        }
        func afterUpdate() { updates += 1 }
    }

    func rows(_ tensor: Tensor, _ range: Range<Int>) -> Tensor {
        let width = tensor.shape[1]
        return Tensor(shape: [range.count, width], scalars: Array(tensor.scalars[(range.lowerBound * width)..<(range.upperBound * width)]))
    }

    func testAccumulatedMicroBatchesEqualOneBatch() throws {
        let random = RandomGenerator(seed: 2, purpose: "data")
        let x = random.normal([5, 3]), y = random.normal([5, 2])
        var settings = TrainingSettings()
        settings.optimizer.kind = .sgd
        settings.optimizer.learningRate = 0.1
        let whole = Regression(), parts = Regression()
        let oneStep = TrainingStep(objective: whole, settings: settings)
        let outcome = oneStep.run(step: 0, batches: [((x, y), 0, nil)])
        var accumulated = settings
        accumulated.accumulateSteps = 2
        // Unequal micro-batches (3 + 2 images): each weighs by its share of the step's images.
        let split = TrainingStep(objective: parts, settings: accumulated)
        let splitOutcome = split.run(step: 0, batches: [((rows(x, 0..<3), rows(y, 0..<3)), 0, nil), ((rows(x, 3..<5), rows(y, 3..<5)), 1, nil)])
        XCTAssertEqual(outcome.images, 5)
        XCTAssertEqual(splitOutcome.images, 5)
        XCTAssertEqual(splitOutcome.loss, outcome.loss, accuracy: 1e-6)
        XCTAssertNil(mismatch(parts.layer.weight.value, whole.layer.weight.value, rtol: 1e-6, atol: 1e-7))
        XCTAssertNil(mismatch(parts.layer.bias!.value, whole.layer.bias!.value, rtol: 1e-6, atol: 1e-7))
        XCTAssertEqual(whole.updates, 1)
        XCTAssertEqual(parts.updates, 1)
    }

    func testClippingAndTheScheduleSetTheRate() throws {
        let random = RandomGenerator(seed: 3, purpose: "data")
        let batch = (x: random.normal([4, 3], std: 10), y: random.normal([4, 2]))
        var settings = TrainingSettings()
        settings.optimizer.kind = .sgd
        settings.optimizer.learningRate = 0.5
        settings.gradClipNorm = 1e-3
        settings.warmupSteps = 4
        let objective = Regression()
        let step = TrainingStep(objective: objective, settings: settings)
        _ = step.run(step: 1, batches: [(batch, 0, nil)])
        XCTAssertEqual(step.optimizer.learningRate, 0.5 * 2 / 4, "warm-up step 2 of 4")
        let clipped = objective.layer.parameters.reduce(0.0) { total, p in total + p.grad!.scalars.reduce(0) { $0 + Double($1 * $1) } }
        XCTAssertEqual(clipped.squareRoot(), 1e-3, accuracy: 1e-6, "the gradient is clipped to the global norm")
    }

    /// A step whose batch is one process's shard sends its partial sums through the exchange; with
    /// one process holding every image it computes the same bits as a step without a shard.
    func testShardedStepExchangesPartialSumsAndEqualsTheWholeBatch() throws {
        let random = RandomGenerator(seed: 4, purpose: "data")
        let batch = (x: random.normal([6, 3]), y: random.normal([6, 2]))
        var settings = TrainingSettings()
        settings.optimizer.kind = .sgd
        settings.optimizer.learningRate = 0.1
        let whole = Regression(), sharded = Regression()
        let plain = TrainingStep(objective: whole, settings: settings).run(step: 0, batches: [(batch, 0, nil)])
        let exchange = RecordingExchange()
        let shard = BatchReduction.Split.whole.shard(batch: 6, exchange: exchange)
        let viaExchange = TrainingStep(objective: sharded, settings: settings).run(step: 0, batches: [(batch, 0, shard)])
        XCTAssertEqual(viaExchange.loss, plain.loss)
        XCTAssertEqual(sharded.layer.weight.value.scalars, whole.layer.weight.value.scalars)
        XCTAssertEqual(sharded.layer.bias!.value.scalars, whole.layer.bias!.value.scalars)
        // The linear layer's weight gradient: one partial per image group (6 images → 6 groups of 1).
        XCTAssertEqual(exchange.floatGathers, [6 * 2 * 3])
        XCTAssertEqual(BatchReduction.Split(rank: 1, ranks: 2).images(batch: 6), 3..<6)
        XCTAssertEqual(BatchReduction.Split(rank: 2, ranks: 3).images(batch: 20), 12..<20, "8 groups of 20 images: ranks hold 2, 3 and 3 groups")
    }

    func testNonFiniteLossLeavesWeightsUntouched() {
        let objective = Regression()
        let before = objective.layer.weight.value.scalars
        let step = TrainingStep(objective: objective, settings: TrainingSettings())
        let outcome = step.run(step: 0, batches: [((Tensor(repeating: .nan, shape: [2, 3]), Tensor(zeros: [2, 2])), 0, nil)])
        XCTAssertTrue(outcome.loss.isNaN)
        XCTAssertEqual(objective.layer.weight.value.scalars, before)
        XCTAssertEqual(objective.updates, 0)
    }
}

/// A one-process exchange that records what passes through it.
final class RecordingExchange: PartialSumExchange {
    var doubleGathers: [Int] = [], floatGathers: [Int] = []
    func allGather(_ local: [Double]) -> [Double] {
        doubleGathers.append(local.count)
        return local
    }
    func allGather(_ local: UnsafeBufferPointer<Float>) -> [Float] {
        floatGathers.append(local.count)
        return Array(local)
    }
}
