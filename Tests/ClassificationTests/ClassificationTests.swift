import Autograd
import Classification
import Foundation
import ImageIO
import NN
import Tensor
import TestSupport
import XCTest

/// The classifier head: the Fréchet distance against pytorch-fid's formula (scipy's sqrtm;
/// Fixtures/fid.safetensors, made by scripts/fixtures/gen_fid.py), the eigen-solver, and a classifier
/// that learns a trivially separable problem.
final class ClassificationTests: XCTestCase {
    func testFrechetDistanceAgainstScipy() throws {
        let f = try Fixture("fid.safetensors")
        func rows(_ key: String) throws -> [[Double]] {
            let t = f.file[key]!
            let values = t.doubles(), width = t.shape[1]
            return (0..<t.shape[0]).map { Array(values[($0 * width)..<(($0 + 1) * width)]) }
        }
        let a = try rows("a"), b = try rows("b")
        XCTAssertEqual(FrechetDistance.distance(a, b), try f.doubles("fid")[0], accuracy: 1e-6)
        XCTAssertEqual(FrechetDistance.distance(a, a), 0, accuracy: 1e-8)
    }

    func testEigenDecompositionReconstructsTheMatrix() {
        let m: [[Double]] = [[4, 1, 0.5], [1, 3, 0.2], [0.5, 0.2, 2]]
        let (values, vectors) = FrechetDistance.eigen(m)
        for i in 0..<3 {
            for j in 0..<3 {
                let rebuilt = (0..<3).reduce(0.0) { $0 + vectors[i][$1] * values[$1] * vectors[j][$1] }
                XCTAssertEqual(rebuilt, m[i][j], accuracy: 1e-12)
            }
        }
    }

    /// Bright against dark images: a few steps separate them.
    func testTheClassifierLearnsASeparableProblem() {
        var settings = ClassifierSettings(data: ImageDataSettings(root: URL(fileURLWithPath: "/nonexistent")))
        settings.data.imageSize = 8
        settings.classCount = 2
        settings.baseChannels = 4
        settings.channelMultipliers = [1, 2]
        settings.training.optimizer.learningRate = 0.01
        let objective = ClassificationObjective(settings: settings, seed: 0)
        let step = TrainingStep(objective: objective, settings: settings.training)
        let random = RandomGenerator(seed: 1, purpose: "data")
        let labels = (0..<16).map { $0 % 2 }
        var images = random.uniform([16, 1, 8, 8], low: -1, high: 0)
        let p = images.mutablePointer()
        for (index, label) in labels.enumerated() where label == 1 { for i in 0..<64 { p[index * 64 + i] += 1 } }
        let batch = ClassificationBatch(images: images, labels: labels)
        let first = step.run(step: 0, batches: [(batch, 0, nil)]).loss
        var last = first
        for index in 1..<30 { last = step.run(step: index, batches: [(batch, index, nil)]).loss }
        XCTAssertLessThan(last, first / 4)
        let probabilities = ClassificationTask.probabilities(objective.classifier, images: images)
        XCTAssertEqual(probabilities.map { $0[1] > 0.5 ? 1 : 0 }, labels)
        XCTAssertEqual(ClassificationTask.features(objective.classifier, images: images)[0].count, 8)
    }
}
