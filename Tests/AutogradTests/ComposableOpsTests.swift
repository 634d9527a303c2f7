import Autograd
import Tensor
import TestSupport
import XCTest

/// The ops losses are composed from, against PyTorch (Fixtures/ops.safetensors, made by
/// scripts/fixtures/gen_losses.py) and against finite differences.
final class ComposableOpsTests: XCTestCase {
    func check(_ f: Fixture, _ name: String, inputs count: Int, file: StaticString = #filePath, line: UInt = #line,
               _ op: ([Variable]) -> Variable) throws {
        let inputs = try (0..<count).map { Variable(try f.tensor("\(name).in\($0)"), requiresGrad: true) }
        let out = op(inputs)
        XCTAssertEqual(out.shape, try f.tensor("\(name).out").shape, "\(name) shape", file: file, line: line)
        if let problem = mismatch(out.value, try f.tensor("\(name).out")) { XCTFail("\(name) out: \(problem)", file: file, line: line) }
        out.backward(try f.tensor("\(name).grad_out"))
        for (index, input) in inputs.enumerated() {
            let expected = try f.tensor("\(name).grad.in\(index)")
            guard let grad = input.grad else { XCTFail("\(name): no gradient for input \(index)", file: file, line: line); continue }
            XCTAssertEqual(grad.shape, expected.shape, "\(name) grad \(index) shape", file: file, line: line)
            if let problem = mismatch(grad, expected) { XCTFail("\(name) grad.in\(index): \(problem)", file: file, line: line) }
        }
    }

    func testAgainstPyTorch() throws {
        let f = try Fixture("ops.safetensors")
        try check(f, "add", inputs: 2) { Functional.add($0[0], $0[1]) }
        try check(f, "sub", inputs: 2) { Functional.subtract($0[0], $0[1]) }
        try check(f, "mul", inputs: 2) { Functional.multiply($0[0], $0[1]) }
        try check(f, "div", inputs: 2) { Functional.divide($0[0], $0[1]) }
        try check(f, "exp", inputs: 1) { Functional.exp($0[0]) }
        try check(f, "log", inputs: 1) { Functional.log($0[0]) }
        try check(f, "pow", inputs: 1) { Functional.pow($0[0], 2.5) }
        try check(f, "clamp_min", inputs: 1) { Functional.clampMin($0[0], 0.1) }
        try check(f, "log_softmax", inputs: 1) { Functional.logSoftmaxChannels(Functional.scale($0[0], 3)) }
        try check(f, "softmax", inputs: 1) { Functional.softmaxChannels(Functional.scale($0[0], 3)) }
        try check(f, "sum_axes", inputs: 1) { Functional.sum($0[0], axes: [0, 2]) }
        try check(f, "sum_keepdim", inputs: 1) { Functional.sum($0[0], axes: [1], keepDims: true) }
        try check(f, "mean_axes", inputs: 1) { Functional.mean($0[0], axes: [1, 3]) }
        let index = f.file["gather.index"]!.int64s()
        let labels = ClassLabels(shape: [2, 3, 5], values: index.map { UInt8($0) })
        try check(f, "gather", inputs: 1) { Functional.gatherChannels($0[0], labels) }
    }

    let random = RandomGenerator(seed: 11, purpose: "ops")
    let weights = RandomGenerator(seed: 12, purpose: "ops/weights")

    func gradcheck(_ name: String, _ inputs: [Tensor], file: StaticString = #filePath, line: UInt = #line,
                   _ op: ([Variable]) -> Variable) {
        for problem in gradientCheck(inputs, weights: weights, op) { XCTFail("\(name) \(problem)", file: file, line: line) }
    }

    /// Values in ±[0.05, 1], away from the kinks of clamp_min.
    func awayFromZero(_ shape: [Int]) -> Tensor {
        Elementwise.zip(random.uniform(shape, low: 0.05, high: 1), random.bernoulli(shape, p: 0.5)) { $1 > 0 ? $0 : -$0 }
    }

    func testFiniteDifferences() {
        let a = random.normal([2, 3, 4]), b = random.normal([3, 1]), positive = random.uniform([1, 4], low: 0.5, high: 2)
        gradcheck("add broadcast", [a, b]) { Functional.add($0[0], $0[1]) }
        gradcheck("subtract broadcast", [b, a]) { Functional.subtract($0[0], $0[1]) }
        gradcheck("multiply broadcast", [a, b]) { Functional.multiply($0[0], $0[1]) }
        gradcheck("divide broadcast", [a, positive]) { Functional.divide($0[0], $0[1]) }
        gradcheck("exp", [a]) { Functional.exp($0[0]) }
        gradcheck("log", [positive]) { Functional.log($0[0]) }
        gradcheck("pow", [positive]) { Functional.pow($0[0], 1.7) }
        gradcheck("clamp_min", [awayFromZero([3, 4])]) { Functional.clampMin($0[0], 0.01) }
        gradcheck("add scalar", [a]) { Functional.add($0[0], scalar: 2) }
        gradcheck("log_softmax", [random.normal([2, 4, 3, 2])]) { Functional.logSoftmaxChannels($0[0]) }
        gradcheck("softmax", [random.normal([2, 4, 3, 2])]) { Functional.softmaxChannels($0[0]) }
        gradcheck("sum over axes", [a]) { Functional.sum($0[0], axes: [0, 2]) }
        gradcheck("mean keepdim", [a]) { Functional.mean($0[0], axes: [1], keepDims: true) }
        let labels = ClassLabels(shape: [2, 3, 2], values: [0, 3, 255, 1, 2, 2, 3, 255, 0, 1, 1, 0])
        gradcheck("gather with void", [random.normal([2, 4, 3, 2])]) { Functional.gatherChannels($0[0], labels) }
        let targets = ClassIndexing.oneHot(labels, classes: 4)
        gradcheck("bce elements", [random.normal([2, 4, 3, 2])]) {
            Functional.binaryCrossEntropyWithLogitsElements($0[0], target: targets)
        }
        gradcheck("bce elements pos_weight", [random.normal([2, 4, 3, 2])]) {
            Functional.binaryCrossEntropyWithLogitsElements($0[0], target: targets, posWeight: [1, 2, 0.5, 3])
        }
    }

    func testBroadcastShapesAndIndexing() {
        XCTAssertEqual(Broadcast.shape([2, 1, 4], [3, 1]), [2, 3, 4])
        XCTAssertEqual(Broadcast.shape([5], []), [5])
        XCTAssertNil(Broadcast.shape([2, 3], [4]))
        let labels = ClassLabels(shape: [1, 2, 2], values: [0, 2, 255, 1])
        XCTAssertEqual(ClassIndexing.oneHot(labels, classes: 3).scalars, [1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0])
        XCTAssertEqual(ClassIndexing.validMask(labels).scalars, [1, 1, 0, 1])
        XCTAssertEqual(ClassIndexing.lookup([0.5, 1, 2], labels).scalars, [0.5, 2, 0, 1])
        // Σ to a broadcast shape is the adjoint of broadcasting.
        let x = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(Broadcast.sum(x, to: [1, 3]).scalars, [5, 7, 9])
        XCTAssertEqual(Broadcast.sum(x, to: [2, 1]).scalars, [6, 15])
        XCTAssertEqual(Broadcast.sum(x, to: []).scalars, [21])
    }
}
