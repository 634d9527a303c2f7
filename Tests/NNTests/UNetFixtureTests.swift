import Autograd
import Foundation
import NN
import Tensor
import TestSupport
import XCTest

/// The whole seed U-Net (base 4, 2×3×32×32, dropout 0) against PyTorch: output, loss, every
/// activation and gradient, the state after one Adam step, and the eval-mode outputs.
/// Tolerance: 1e-4 of each tensor's largest magnitude (float32 cannot do better; see the fixtures README).
final class UNetFixtureTests: XCTestCase {
    func loadModel() throws -> UNet {
        let weights = try Fixture("weights.safetensors")
        let model = UNet(base: 4, inChannels: 3, outChannels: 3, dropout: 0)
        try model.loadStateDict(weights.file, path: weights.path)
        return model
    }

    func expectClose(_ actual: Tensor?, _ fixture: Fixture, _ key: String, tolerance: Float = 1e-4,
                     file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try fixture.tensor(key)
        guard let actual else { return XCTFail("\(key): nothing computed", file: file, line: line) }
        XCTAssertEqual(actual.shape, expected.shape, key, file: file, line: line)
        if let problem = normalizedMismatch(actual, expected, tolerance: tolerance) {
            XCTFail("\(key): \(problem)", file: file, line: line)
        }
    }

    func testStateDictKeysMatchPyTorch() throws {
        let weights = try Fixture("weights.safetensors")
        let model = UNet(base: 4, dropout: 0)
        XCTAssertEqual(model.stateDict().keys, weights.keys)
        XCTAssertEqual(model.stateDict()["c1.layer.1.num_batches_tracked"]?.dtype, .I64)
    }

    func testEvalOutput() throws {
        let f = try Fixture("case.safetensors")
        let model = try loadModel()
        model.eval()
        let y = withNoGrad { model(Variable(try! f.tensor("x"))) }
        try expectClose(y.value, f, "output_eval")
    }

    func testTrainStep() throws {
        let f = try Fixture("case.safetensors")
        let model = try loadModel()
        model.train()
        let x = Variable(try f.tensor("x"), requiresGrad: true)
        var activations: [String: Tensor] = [:]
        let output = Functional.sigmoid(model.logits(x) { activations[$0] = $1.value })
        try expectClose(output.value, f, "output")
        for (name, value) in activations {
            try expectClose(value, f, "act.\(name)", tolerance: 2e-5)
        }
        XCTAssertEqual(activations.count, 18)

        let loss = BCELoss()(output, try f.tensor("y"))
        try expectClose(loss.value, f, "loss", tolerance: 1e-5)
        loss.backward()
        try expectClose(x.grad, f, "input_grad")

        let exact = try Fixture("case_f64.safetensors")
        var gradientCount = 0
        for (name, parameter) in model.namedParameters() {
            gradientCount += 1
            if name.hasPrefix("u") && name.hasSuffix("layer.bias") {
                // Mathematically zero (README pitfall 8): only rounding noise remains.
                XCTAssertLessThan(parameter.grad!.maxAbs, 1e-8, name)
                continue
            }
            try expectClose(parameter.grad, f, "grad.\(name)")
            try expectClose(parameter.grad, exact, "grad.\(name)")
        }
        XCTAssertEqual(gradientCount, 76)

        let adam = Adam(parameters: model.namedParameters(), learningRate: 1e-4)
        adam.step()
        let state = model.stateDict()
        var checked = 0
        for key in f.keys where key.hasPrefix("after.") {
            let name = String(key.dropFirst("after.".count))
            guard let entry = state[name] else { XCTFail("model has no \(name)"); continue }
            checked += 1
            if entry.dtype == .I64 {
                XCTAssertEqual(entry.int64s(), f.file[key]!.int64s(), name)
                continue
            }
            let actual = Tensor(shape: entry.shape, scalars: entry.floats())
            if let problem = mismatch(actual, try f.tensor(key), rtol: 1e-5, atol: 2e-5) { XCTFail("\(key): \(problem)") }
        }
        XCTAssertEqual(checked, 142)

        model.eval()
        let after = withNoGrad { model(Variable(try! f.tensor("x"))) }
        try expectClose(after.value, f, "output_eval_after")
    }

    func testRejectsSizesPyTorchRejects() {
        let model = UNet(base: 4)
        XCTAssertNoThrow(try model.validate(inputShape: [1, 3, 32, 48]))
        for shape in [[1, 3, 40, 40], [1, 3, 36, 36], [1, 3, 16, 16], [1, 1, 32, 32], [3, 32, 32]] {
            XCTAssertThrowsError(try model.validate(inputShape: shape), "\(shape)")
        }
    }
}
