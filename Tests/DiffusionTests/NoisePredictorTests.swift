import ImageIO
import Autograd
import Diffusion
import Foundation
import NN
import Tensor
import XCTest

final class NoisePredictorTests: XCTestCase {
    func tinySettings(normalization: NormalizationKind = .group, attention: [Int] = [4]) -> NoisePredictorSettings {
        var settings = NoisePredictorSettings()
        settings.imageSize = 8
        settings.inChannels = 1
        settings.outChannels = 2
        settings.baseChannels = 4
        settings.channelMultipliers = [1, 2]
        settings.dropout = 0
        settings.groups = 2
        settings.normalization = normalization
        settings.attentionResolutions = attention
        return settings
    }

    func testShapesAndStateNames() {
        let model = NoisePredictor(settings: tinySettings())
        model.initialize(generator: RandomGenerator(seed: 1, purpose: "init"))
        let y = withNoGrad { model(Variable(RandomGenerator(seed: 2, purpose: "x").normal([3, 1, 8, 8])), timesteps: [0, 5, 999]) }
        XCTAssertEqual(y.shape, [3, 2, 8, 8])
        let names = model.stateDict().keys
        for expected in ["time_mlp.0.weight", "time_mlp.2.bias", "encoder.0.conv1.weight", "encoder.0.time_proj.weight",
                         "encoder.1.skip.weight", "downsample.0.layer.0.weight", "upsample.0.layer.weight",
                         "decoder.0.norm2.weight", "attention.enc1.qkv.weight", "out.bias"] {
            XCTAssertTrue(names.contains(expected), "missing \(expected) in \(names)")
        }
        XCTAssertNil(NoisePredictorSettings().problem(), "the default settings are valid")
    }

    func testTimestepChangesTheOutput() {
        let model = NoisePredictor(settings: tinySettings())
        model.initialize(generator: RandomGenerator(seed: 1, purpose: "init"))
        model.eval()
        let x = RandomGenerator(seed: 2, purpose: "x").normal([1, 1, 8, 8])
        let a = withNoGrad { model(Variable(x), timesteps: [10]).value }
        let b = withNoGrad { model(Variable(x), timesteps: [900]).value }
        XCTAssertGreaterThan(Elementwise.subtract(a, b).maxAbs, 1e-4)
    }

    func testEmbeddingValues() {
        let e = timestepEmbedding([0, 1], dimension: 4)
        XCTAssertEqual(Array(e.scalars[0..<4]), [0, 0, 1, 1])
        // t = 1: frequencies 1 and 1/10000.
        XCTAssertEqual(e[flat: 4], Float(sin(1.0)), accuracy: 1e-7)
        XCTAssertEqual(e[flat: 5], Float(sin(1e-4)), accuracy: 1e-9)
    }

    /// Directional derivatives of L = Σ out·G along a random direction, for the input and every
    /// parameter, agree with central differences (both normalisations, attention included).
    /// The DownSample blocks hold LeakyReLU kinks, which a difference step may cross; a correct
    /// gradient matches at some step size, a wrong one at none.
    func testWholeNetworkGradients() {
        for normalization in [NormalizationKind.group, .batch] {
            let model = NoisePredictor(settings: tinySettings(normalization: normalization))
            model.initialize(generator: RandomGenerator(seed: 3, purpose: "init"))
            model.train()
            let random = RandomGenerator(seed: 4, purpose: "directions")
            let x = Variable(random.normal([2, 1, 8, 8]), requiresGrad: true)
            let t = [3, 700]
            let weights = random.normal([2, 2, 8, 8])
            model.zeroGrad()
            model(x, timesteps: t).backward(weights)
            let targets = [("input", x)] + model.namedParameters()
            XCTAssertEqual(targets.count, 48, "the input and 47 parameters")
            for (name, variable) in targets {
                guard let grad = variable.grad else { XCTFail("\(name): no gradient"); continue }
                let direction = random.normal(variable.shape), original = variable.value
                let analytic = (0..<grad.count).reduce(0.0) { $0 + Double(grad[flat: $1]) * Double(direction[flat: $1]) }
                func objective(_ h: Float) -> Double {
                    variable.value = Elementwise.zip(original, direction) { $0 + h * $1 }
                    defer { variable.value = original }
                    let out = withNoGrad { model(Variable(x.value), timesteps: t).value }
                    return (0..<out.count).reduce(0.0) { $0 + Double(out[flat: $1]) * Double(weights[flat: $1]) }
                }
                let errors = [Float(1e-3), 3e-4, 1e-4, 3e-5].map { h -> Double in
                    abs((objective(h) - objective(-h)) / Double(2 * h) - analytic)
                }
                XCTAssertLessThan(errors.min()!, 0.01 * max(abs(analytic), 1) + 0.02, "\(normalization) \(name): analytic \(analytic), errors \(errors)")
            }
        }
    }

    func testEMAWarmupAndUpdate() {
        let live = Linear(2, 1), shadow = Linear(2, 1)
        live.weight.value = Tensor(shape: [1, 2], scalars: [1, 1])
        let ema = ExponentialMovingAverage(model: live, shadow: shadow, maxDecay: 0.999)
        XCTAssertEqual(shadow.weight.value.scalars, [1, 1], "starts as a copy")
        XCTAssertEqual(ema.decay, 0.1, accuracy: 1e-12, "(1 + 0)/(10 + 0)")
        live.weight.value = Tensor(shape: [1, 2], scalars: [3, 5])
        ema.update()
        let updated = shadow.weight.value.scalars
        XCTAssertEqual(updated[0], 2.8, accuracy: 1e-6, "0.1·1 + 0.9·3")
        XCTAssertEqual(updated[1], 4.6, accuracy: 1e-6, "0.1·1 + 0.9·5")
        XCTAssertEqual(ema.decay, 2.0 / 11, accuracy: 1e-12)
        let late = ExponentialMovingAverage(model: live, shadow: Linear(2, 1), maxDecay: 0.999, warmup: false)
        XCTAssertEqual(late.decay, 0.999)
    }
}

final class ImageSourceTests: XCTestCase {
    func writeIDX(_ url: URL, count: Int, truncate: Bool = false) throws {
        var bytes: [UInt8] = [0, 0, 8, 3]
        for value in [count, 28, 28] { bytes += [UInt8(value >> 24), UInt8(value >> 16 & 255), UInt8(value >> 8 & 255), UInt8(value & 255)] }
        for i in 0..<(count * 784) { bytes.append(UInt8(i % 256)) }
        try Data(truncate ? Array(bytes.prefix(bytes.count - 100)) : bytes).write(to: url)
    }

    func testMNISTReaderRawAndBundledGzip() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mnist-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try writeIDX(folder.appendingPathComponent("train-images-idx3-ubyte"), count: 3)
        let raw = try MNISTSource(folder: folder, split: "train", imageSize: 28)
        XCTAssertEqual(raw.count, 3)
        let batch = try raw.batch([1])
        XCTAssertEqual(batch.shape, [1, 1, 28, 28])
        XCTAssertEqual(batch[flat: 0], Float((784 % 256)) / 127.5 - 1, accuracy: 1e-6)
        XCTAssertThrowsError(try MNISTSource(folder: folder, split: "test", imageSize: 28)) { XCTAssertTrue("\($0)".contains("t10k-images-idx3-ubyte.gz"), "\($0)") }
        try writeIDX(folder.appendingPathComponent("t10k-images-idx3-ubyte"), count: 2, truncate: true)
        XCTAssertThrowsError(try MNISTSource(folder: folder, split: "test", imageSize: 28)) { XCTAssertTrue("\($0)".contains("truncated"), "\($0)") }

        let bundled = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Data/mnist-subset")
        let train = try MNISTSource(folder: bundled, split: "train", imageSize: 32)
        let test = try MNISTSource(folder: bundled, split: "test", imageSize: 32)
        XCTAssertEqual(train.count, 6000)
        XCTAssertEqual(test.count, 1000)
        let digits = try train.batch([0, 1])
        XCTAssertEqual(digits.shape, [2, 1, 32, 32])
        XCTAssertEqual(digits[flat: 0], -1, "the 2-pixel pad is background")
        XCTAssertGreaterThan(digits.scalars.max()!, 0.9, "ink")
    }

    /// Found by the MNIST fuzzer: an IDX file of 2×32 images read at image size 32 (as wide as the
    /// model's input, not as tall) indexed past its pixels; it is now padded and resized.
    func testMNISTReaderPadsImagesThatAreNotSquare() throws {
        var data = Data()
        for word in [UInt32(0x0803), 1, 2, 32] { withUnsafeBytes(of: word.bigEndian) { data.append(contentsOf: $0) } }
        data.append(Data(repeating: 255, count: 64))
        let source = try MNISTSource(path: "wide", imageSize: 32) { data.prefix($0) }
        let batch = try source.batch([0])
        XCTAssertEqual(batch.shape, [1, 1, 32, 32])
        XCTAssertEqual(batch[flat: 0], -1, "padding above the 2-row image is background")
        XCTAssertEqual(batch.scalars.filter { $0 > 0 }.count, 64, "the 2×32 strip in the middle")
    }
}
