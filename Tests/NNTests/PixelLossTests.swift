import Autograd
import NN
import Tensor
import TestSupport
import XCTest

/// Segmentation losses against PyTorch and segmentation_models.pytorch (Fixtures/losses.safetensors),
/// and learning-rate schedules against torch.optim.lr_scheduler (Fixtures/schedules.safetensors);
/// both made by scripts/fixtures/gen_losses.py.
final class PixelLossTests: XCTestCase {
    func testLossesAgainstReferences() throws {
        let f = try Fixture("losses.safetensors")
        let logits = try f.tensor("logits")
        let labels = ClassLabels(shape: [2, 6, 7], values: f.file["labels"]!.int64s().map { UInt8($0) })
        let classWeights = try f.tensor("class_weights").scalars, posWeight = try f.tensor("pos_weight").scalars
        let cases: [(String, CombinedPixelLoss)] = [
            ("ce", CombinedPixelLoss([(.crossEntropy(classWeights: nil, labelSmoothing: 0), 1)])),
            ("ce_weighted", CombinedPixelLoss([(.crossEntropy(classWeights: classWeights, labelSmoothing: 0), 1)])),
            ("ce_smoothing", CombinedPixelLoss([(.crossEntropy(classWeights: nil, labelSmoothing: 0.1), 1)])),
            ("ce_weighted_smoothing", CombinedPixelLoss([(.crossEntropy(classWeights: classWeights, labelSmoothing: 0.2), 1)])),
            ("bce", CombinedPixelLoss([(.binaryCrossEntropy(posWeight: nil), 1)])),
            ("bce_pos_weight", CombinedPixelLoss([(.binaryCrossEntropy(posWeight: posWeight), 1)])),
            ("dice", CombinedPixelLoss([(.dice(smooth: 1, eps: 1e-7), 1)])),
            ("dice_smooth0", CombinedPixelLoss([(.dice(smooth: 0, eps: 1e-7), 1)])),
            ("focal", CombinedPixelLoss([(.focal(gamma: 2, alpha: nil), 1)])),
            ("focal_alpha", CombinedPixelLoss([(.focal(gamma: 1.5, alpha: 0.25), 1)])),
            ("ce_plus_3dice", CombinedPixelLoss([(.crossEntropy(classWeights: nil, labelSmoothing: 0), 1), (.dice(smooth: 1, eps: 1e-7), 3)])),
        ]
        for (name, loss) in cases {
            let z = Variable(logits, requiresGrad: true)
            let value = loss(z, labels)
            if let problem = mismatch(value.value, try f.tensor("\(name).loss")) { XCTFail("\(name) loss: \(problem)") }
            value.backward()
            if let problem = mismatch(z.grad!, try f.tensor("\(name).grad")) { XCTFail("\(name) gradient: \(problem)") }
        }
    }

    func testLossesAgainstFiniteDifferences() {
        let random = RandomGenerator(seed: 5, purpose: "losses")
        let labels = ClassLabels(shape: [2, 3, 2], values: [0, 3, 255, 1, 2, 2, 3, 255, 0, 1, 1, 0])
        let losses: [(String, PixelLoss)] = [
            ("ce", .crossEntropy(classWeights: [0.5, 1, 2, 1.5], labelSmoothing: 0.1)),
            ("bce", .binaryCrossEntropy(posWeight: [1, 2, 0.5, 3])),
            ("dice", .dice(smooth: 1, eps: 1e-7)),
            ("focal", .focal(gamma: 2, alpha: 0.25)),
        ]
        for (name, loss) in losses {
            let problems = gradientCheck([random.normal([2, 4, 3, 2])], weights: random, step: 1e-2, rtol: 1e-2, atol: 1e-4) {
                loss($0[0], labels)
            }
            for problem in problems { XCTFail("\(name) \(problem)") }
        }
    }

    func testVoidEverywhereGivesZeroLoss() {
        let labels = ClassLabels(shape: [1, 2, 2], values: [255, 255, 255, 255])
        for loss in [PixelLoss.crossEntropy(classWeights: nil, labelSmoothing: 0.1), .binaryCrossEntropy(posWeight: [1, 2, 3]),
                     .dice(smooth: 1, eps: 1e-7), .focal(gamma: 2, alpha: nil)] {
            let z = Variable(RandomGenerator(seed: 1, purpose: "z").normal([1, 3, 2, 2]), requiresGrad: true)
            let value = loss(z, labels)
            XCTAssertEqual(value.value.scalarValue, 0, "\(loss)")
            value.backward()
            XCTAssertEqual(z.grad!.scalars.map(abs).max(), 0, "\(loss)")
        }
    }

    func testSchedulesAgainstPyTorch() throws {
        let f = try Fixture("schedules.safetensors")
        let base = Double(f.metadata("base_lr")!)!, warmup = Int(f.metadata("warmup")!)!, total = Int(f.metadata("total")!)!
        let cases: [(String, LearningRateSchedule, Int)] = [
            ("cosine", .cosine(minimum: 1e-4), warmup), ("cosine_nowarmup", .cosine(minimum: 0), 0),
            ("poly", .poly(power: 0.9, minimum: 0), warmup), ("poly_nowarmup", .poly(power: 2, minimum: 0), 0),
            ("step", .step(milestones: [10, 25], gamma: 0.1), 0), ("constant", .constant, warmup),
        ]
        for (name, schedule, warm) in cases {
            var settings = TrainingSettings()
            settings.optimizer.learningRate = base
            settings.warmupSteps = warm
            settings.schedule = schedule
            let ours = (0..<total).map { settings.learningRate(atStep: $0, totalSteps: total) }
            if let problem = mismatch(ours, try f.doubles(name), rtol: 1e-5, atol: 1e-12) { XCTFail("\(name): \(problem)") }
        }
    }
}
