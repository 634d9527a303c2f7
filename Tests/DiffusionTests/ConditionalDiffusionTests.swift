import Autograd
import Diffusion
import Foundation
import ImageIO
import NN
import Tensor
import TestSupport
import XCTest

/// Class-conditional diffusion: nn.Embedding and classifier-free guidance against PyTorch and
/// diffusers' formula (Fixtures/conditional.safetensors, made by scripts/fixtures/gen_conditional.py),
/// the guided denoiser's one-batch evaluation, and the labelled data sources.
final class ConditionalDiffusionTests: XCTestCase {
    func testEmbeddingAgainstPyTorch() throws {
        let f = try Fixture("conditional.safetensors")
        let embedding = Embedding(11, 6)
        embedding.weight.value = try f.tensor("embedding.weight")
        let indices = f.file["embedding.indices"]!.int64s().map(Int.init)
        Tape.current.reset()
        let out = embedding(indices)
        XCTAssertNil(mismatch(out.value, try f.tensor("embedding.out"), rtol: 0, atol: 0))
        out.backward(try f.tensor("embedding.upstream"))
        // Class 3 appears three times and ∅ (10) twice: their rows sum the upstream rows.
        XCTAssertNil(mismatch(embedding.weight.grad!, try f.tensor("embedding.grad_weight"), rtol: 1e-6, atol: 1e-7))
    }

    func testGuidanceEqualsDiffusersFormula() throws {
        let f = try Fixture("conditional.safetensors")
        let conditional = try f.tensor("cfg.cond"), unconditional = try f.tensor("cfg.uncond")
        for w in [0.0, 1.5, 4.0] {
            let guided = ClassifierFreeGuidance.combine(conditional: conditional, unconditional: unconditional, scale: w, meanChannels: 2)
            if let problem = mismatch(guided, try f.tensor("cfg.w\(w)"), rtol: 1e-5, atol: 1e-5) { XCTFail("w = \(w): \(problem)") }
        }
        // With a learned variance (2C outputs, C = 1) only the mean channel is guided.
        let guided = ClassifierFreeGuidance.combine(conditional: conditional, unconditional: unconditional, scale: 4, meanChannels: 1)
        let expected = try f.tensor("cfg.w4.0").scalars, plain = conditional.scalars
        for image in 0..<3 {
            for i in 0..<32 {
                let index = image * 32 + i
                XCTAssertEqual(guided.scalars[index], i < 16 ? expected[index] : plain[index], accuracy: 1e-5)
            }
        }
    }

    /// The guided denoiser evaluates [x; x] with classes [c; ∅] as one batch; its result equals the
    /// two evaluations made apart, combined.
    func testGuidedDenoiserEqualsTwoSeparateEvaluations() {
        var settings = NoisePredictorSettings()
        settings.imageSize = 8
        settings.baseChannels = 8
        settings.channelMultipliers = [1, 2]
        settings.numClasses = 4
        let network = NoisePredictor(settings: settings)
        network.initialize(generator: RandomGenerator(seed: 1, purpose: "init"))
        network.eval()
        let x = RandomGenerator(seed: 2, purpose: "x").normal([3, 1, 8, 8])
        let t = [5, 500, 999], classes = [0, 3, 1]
        let conditional = withNoGrad { network(Variable(x), timesteps: t, classes: classes).value }
        let unconditional = withNoGrad { network(Variable(x), timesteps: t, classes: [4, 4, 4]).value }
        XCTAssertNotEqual(conditional.scalars, unconditional.scalars, "the class changes the prediction")
        let guided = DiffusionTask.denoiser(network, classes: classes, guidance: 2.5)(x, t)
        let expected = ClassifierFreeGuidance.combine(conditional: conditional, unconditional: unconditional, scale: 2.5, meanChannels: 1)
        XCTAssertNil(mismatch(guided, expected, rtol: 1e-5, atol: 1e-5))
        XCTAssertEqual(DiffusionTask.denoiser(network, classes: classes, guidance: 0)(x, t).scalars, conditional.scalars)
        XCTAssertEqual(network.stateDict().entries.map(\.key).filter { $0.hasPrefix("class_embedding") }, ["class_embedding.weight"])
    }

    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    func testMNISTLabelsComeWithTheImages() throws {
        let folder = Self.packageRoot.appendingPathComponent("Data/mnist-subset")
        let train = try MNISTSource(folder: folder, split: "train", imageSize: 32, labels: true)
        XCTAssertEqual(train.labels?.count, train.count)
        XCTAssertEqual(Set(train.labels!), Set(0...9))
        let test = try MNISTSource(folder: folder, split: "test", imageSize: 32, limit: 100, labels: true)
        XCTAssertEqual(test.labels?.count, 100)
        // A label file shorter than the image file, and one with a label that is not a digit.
        XCTAssertThrowsError(try MNISTSource.readLabels(path: "short", count: 5, classes: 10) { _ in Data([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3]) }) {
            XCTAssertTrue("\($0)".contains("holds 3 labels for 5 images"), "\($0)")
        }
        XCTAssertThrowsError(try MNISTSource.readLabels(path: "bad", count: 2, classes: 10) { _ in Data([0, 0, 8, 1, 0, 0, 0, 2, 1, 12]) }) {
            XCTAssertTrue("\($0)".contains("label 12 of image 1 is not a digit"), "\($0)")
        }
    }

    func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("conditional-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    func testCIFAR10RecordsAndSizeErrors() throws {
        let folder = try temporaryFolder()
        // Two records: label 7 with a red image, label 2 with a blue one.
        var bytes: [UInt8] = []
        for (label, channel) in [(7, 0), (2, 2)] {
            bytes.append(UInt8(label))
            for c in 0..<3 { bytes += Array(repeating: c == channel ? 255 : 0, count: 1024) }
        }
        try Data(bytes).write(to: folder.appendingPathComponent("data_batch_1.bin"))
        let source = try CIFAR10Source(folder: folder, split: "train", imageSize: 32)
        XCTAssertEqual(source.count, 2)
        XCTAssertEqual(source.labels, [7, 2])
        let batch = try source.batch([0, 1])
        XCTAssertEqual(batch.shape, [2, 3, 32, 32])
        XCTAssertEqual(batch.scalars[0], 1)             // image 0, red plane
        XCTAssertEqual(batch.scalars[1024 * 2], -1)     // image 0, blue plane
        XCTAssertEqual(batch.scalars[3072 + 2048], 1)   // image 1, blue plane
        try Data(bytes.dropLast(5)).write(to: folder.appendingPathComponent("data_batch_2.bin"))
        XCTAssertThrowsError(try CIFAR10Source(folder: folder, split: "train", imageSize: 32)) {
            XCTAssertTrue("\($0)".contains("data_batch_2.bin: 6141 bytes is not a whole number of 3073-byte CIFAR-10 records"), "\($0)")
        }
        XCTAssertThrowsError(try CIFAR10Source(folder: folder, split: "test", imageSize: 32)) {
            XCTAssertTrue("\($0)".contains("no test_batch.bin"), "\($0)")
        }
    }

    func testClassFoldersAndAnEmptyClass() throws {
        let folder = try temporaryFolder()
        for name in ["cat", "dog"] {
            let classFolder = folder.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: classFolder, withIntermediateDirectories: true)
            for index in 0..<2 {
                var image = Image(width: 8, height: 8, channels: 3)
                image.pixels = Array(repeating: name == "cat" ? 10 : 200, count: 8 * 8 * 3)
                try PNG.write(image, to: classFolder.appendingPathComponent("\(index).png"))
            }
        }
        let source = try ImageFolderSource(classFolders: folder, imageSize: 8, channels: 3)
        XCTAssertEqual(source.classNames, ["cat", "dog"])
        XCTAssertEqual(source.labels, [0, 0, 1, 1])
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("emu"), withIntermediateDirectories: true)
        XCTAssertThrowsError(try ImageFolderSource(classFolders: folder, imageSize: 8, channels: 3)) {
            XCTAssertTrue("\($0)".contains("the class folder 'emu' holds no PNG or JPEG images"), "\($0)")
        }
    }
}

/// PSNR and SSIM against scikit-image (Fixtures/restoration_metrics.safetensors, made by
/// scripts/fixtures/gen_restoration_metrics.py).
final class ImageQualityTests: XCTestCase {
    func testAgainstScikitImage() throws {
        let f = try Fixture("restoration_metrics.safetensors")
        for name in ["gray_noise", "gray_small", "rgb_noise"] {
            let clean = try f.tensor("\(name).clean"), noisy = try f.tensor("\(name).noisy")
            let (c, h, w) = (clean.shape[0], clean.shape[1], clean.shape[2])
            let a = clean.scalars.map(Double.init), b = noisy.scalars.map(Double.init)
            XCTAssertEqual(ImageQuality.psnr(a, b), try f.doubles("\(name).psnr")[0], accuracy: 1e-9, name)
            XCTAssertEqual(ImageQuality.ssim(a, b, channels: c, height: h, width: w), try f.doubles("\(name).ssim")[0], accuracy: 1e-9, name)
        }
        XCTAssertEqual(ImageQuality.psnr([1, 2], [1, 2]), .infinity)
    }
}

/// The degradations of image-conditioned restoration.
final class DegradationTests: XCTestCase {
    func gray(_ value: UInt8, size: Int = 32) -> Image { Image(width: size, height: size, channels: 1, fill: value) }

    func testNoiseHasTheAskedSpreadAndRepeatsWithItsGenerator() throws {
        let noisy = try Degradation.noise(sigma: 0.1).apply(gray(128), generator: RandomGenerator(seed: 1, purpose: "d"))
        let differences = noisy.pixels.map { Double($0) - 128 }
        let std = (differences.map { $0 * $0 }.reduce(0, +) / Double(differences.count)).squareRoot()
        XCTAssertEqual(std, 25.5, accuracy: 2.5)
        XCTAssertEqual(try Degradation.noise(sigma: 0.1).apply(gray(128), generator: RandomGenerator(seed: 1, purpose: "d")), noisy)
        XCTAssertNotEqual(try Degradation.noise(sigma: 0.1).apply(gray(128), generator: RandomGenerator(seed: 2, purpose: "d")), noisy)
    }

    func testDownsamplingLosesDetailAndKeepsTheSize() throws {
        var checker = gray(0)
        for y in 0..<32 { for x in 0..<32 where (x + y) % 2 == 0 { checker.pixels[y * 32 + x] = 255 } }
        let degradation = Degradation.downsample(scale: 4)
        let y = try degradation.apply(checker, generator: RandomGenerator(seed: 0, purpose: "d"))
        XCTAssertEqual([y.width, y.height], [32, 32])
        // A one-pixel checkerboard averages to gray at a quarter of the resolution.
        XCTAssertLessThan(y.pixels.map { abs(Int($0) - 128) }.max()!, 40)
        XCTAssertEqual(try degradation.apply(gray(77), generator: RandomGenerator(seed: 0, purpose: "d")), gray(77))
        // What a person sees: the 8×8 image blown up with nearest neighbours, constant in 4×4 blocks.
        let shown = degradation.shown(checker, condition: y)
        for by in 0..<8 {
            for bx in 0..<8 {
                let block = (0..<16).map { shown.pixels[(by * 4 + $0 / 4) * 32 + bx * 4 + $0 % 4] }
                XCTAssertEqual(Set(block).count, 1)
            }
        }
        XCTAssertTrue(degradation.hasBicubicBaseline)
    }

    func testBlurSpreadsAnImpulseSymmetrically() throws {
        var impulse = gray(0, size: 15)
        impulse.pixels[7 * 15 + 7] = 255
        let blurred = try Degradation.blur(sigma: 1).apply(impulse, generator: RandomGenerator(seed: 0, purpose: "d"))
        XCTAssertLessThan(blurred.pixels[7 * 15 + 7], 255)
        XCTAssertEqual(blurred.pixels[7 * 15 + 6], blurred.pixels[7 * 15 + 8])
        XCTAssertEqual(blurred.pixels[6 * 15 + 7], blurred.pixels[8 * 15 + 7])
        XCTAssertGreaterThan(blurred.pixels[7 * 15 + 8], 0)
        XCTAssertEqual(try Degradation.blur(sigma: 2).apply(gray(90), generator: RandomGenerator(seed: 0, purpose: "d")), gray(90))
    }

    func testJPEGAndInpainting() throws {
        let noise = try Degradation.noise(sigma: 0.3).apply(gray(128), generator: RandomGenerator(seed: 3, purpose: "d"))
        let rough = try Degradation.jpeg(quality: 5).apply(noise, generator: RandomGenerator(seed: 0, purpose: "d"))
        let fine = try Degradation.jpeg(quality: 100).apply(noise, generator: RandomGenerator(seed: 0, purpose: "d"))
        XCTAssertGreaterThan(ImageQuality.compare(fine, noise).psnr, ImageQuality.compare(rough, noise).psnr + 10)
        for seed in 0..<20 {
            let holed = try Degradation.inpaint(minSize: 4, maxSize: 9).apply(gray(0), generator: RandomGenerator(seed: UInt64(seed), purpose: "d"))
            let hole = holed.pixels.enumerated().filter { $0.element == 128 }.map(\.offset)
            let side = Int(Double(hole.count).squareRoot())
            XCTAssertEqual(side * side, hole.count, "one square hole")
            XCTAssertTrue((4...9).contains(side), "side \(side)")
        }
    }

    /// An image-conditioned network sees [x_t, y]: its first convolution takes 2C channels.
    func testTheConditionIsConcatenatedAtTheInput() {
        var settings = NoisePredictorSettings()
        settings.imageSize = 8
        settings.baseChannels = 8
        settings.channelMultipliers = [1, 2]
        settings.conditionChannels = 1
        let network = NoisePredictor(settings: settings)
        network.initialize(generator: RandomGenerator(seed: 1, purpose: "init"))
        XCTAssertEqual(network.stateDict()["encoder.0.conv1.weight"]?.shape, [8, 2, 3, 3])
        network.eval()
        let x = RandomGenerator(seed: 2, purpose: "x").normal([2, 1, 8, 8])
        let a = withNoGrad { network(Variable(x), timesteps: [3, 4], condition: Tensor(zeros: [2, 1, 8, 8])).value }
        let b = withNoGrad { network(Variable(x), timesteps: [3, 4], condition: Tensor(repeating: 1, shape: [2, 1, 8, 8])).value }
        XCTAssertEqual(a.shape, [2, 1, 8, 8])
        XCTAssertNotEqual(a.scalars, b.scalars, "the condition changes the prediction")
    }
}
