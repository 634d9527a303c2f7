import Foundation
@testable import Tensor
import XCTest

/// Weights prepared once while they do not change (`PreparedWeights`): the same bytes as preparing
/// them in every call, kept only from the second call that sees a version, and never stale.
final class PreparedWeightsTests: XCTestCase {
    override func tearDown() {
        PreparedWeights.enabled = true
        PreparedWeights.shared.release()
    }

    private func forward(_ x: Tensor, _ weight: Tensor, _ bias: Tensor) -> Tensor {
        Conv2dKernel.forward(input: x, weight: weight, bias: bias, stride: 1, padding: 1, paddingMode: .zeros)
    }

    /// im2col (4 channels, in place on the AVX-512 kernels) and Winograd (32 channels at 16×16).
    func testKeptFormsGiveTheBytesOfFreshOnes() {
        let random = RandomGenerator(seed: 3, purpose: "prepared weights")
        for (channels, size) in [(4, 12), (32, 16)] {
            PreparedWeights.shared.release()
            let x = random.normal([2, channels, size, size]), weight = random.normal([24, channels, 3, 3]), bias = random.normal([24])
            PreparedWeights.enabled = false
            let fresh = forward(x, weight, bias)
            XCTAssertEqual(PreparedWeights.shared.keptCount, 0)
            PreparedWeights.enabled = true
            let first = forward(x, weight, bias)
            XCTAssertEqual(PreparedWeights.shared.keptCount, 0, "kept on first sight")
            let second = forward(x, weight, bias), third = forward(x, weight, bias)
            // (OpenBLAS's products read im2col's weights as they are: nothing to prepare.)
            if BLAS.packedCount(m: 24, k: 9 * channels) > 0 || channels == 32 {
                XCTAssertGreaterThan(PreparedWeights.shared.keptCount, 0, "not kept on the second call")
            }
            for (label, y) in [("first", first), ("second", second), ("third", third)] {
                XCTAssertTrue(y.scalars == fresh.scalars, "\(channels) channels, \(label) call: other bytes")
            }
        }
    }

    /// A write to the weights (as an optimiser step makes) invalidates the kept form, and weights
    /// that change before every call (training) keep nothing.
    func testChangedWeightsArePreparedAgain() {
        let random = RandomGenerator(seed: 4, purpose: "prepared weights")
        for channels in [4, 32] {
            PreparedWeights.shared.release()
            let x = random.normal([2, channels, 16, 16]), bias = random.normal([8])
            var weight = random.normal([8, channels, 3, 3])
            _ = forward(x, weight, bias)
            _ = forward(x, weight, bias)
            if BLAS.packedCount(m: 8, k: 9 * channels) > 0 || channels == 32 {
                XCTAssertGreaterThan(PreparedWeights.shared.keptCount, 0)
            }
            weight.mutablePointer()[5] += 1
            let changed = forward(x, weight, bias)
            PreparedWeights.enabled = false
            XCTAssertTrue(changed.scalars == forward(x, weight, bias).scalars, "\(channels) channels: a stale form was used")
            PreparedWeights.enabled = true
            XCTAssertEqual(PreparedWeights.shared.keptCount, 0, "the stale form is still held")
            for step in 0..<3 {
                weight.mutablePointer()[step] -= 0.5
                _ = forward(x, weight, bias)
                XCTAssertEqual(PreparedWeights.shared.keptCount, 0, "weights changing every call were kept")
            }
        }
    }

    /// A kept form dies with its weights (so a new tensor at the same address cannot pick it up).
    func testFormsOfReleasedWeightsAreDropped() {
        let random = RandomGenerator(seed: 5, purpose: "prepared weights")
        PreparedWeights.shared.release()
        let x = random.normal([1, 4, 8, 8]), bias = random.normal([8])
        do {
            let weight = random.normal([8, 4, 3, 3])
            _ = forward(x, weight, bias)
            _ = forward(x, weight, bias)
            if BLAS.packedCount(m: 8, k: 36) > 0 { XCTAssertGreaterThan(PreparedWeights.shared.keptCount, 0) }
        }
        let other = random.normal([8, 4, 3, 3])
        let y = forward(x, other, bias)
        XCTAssertEqual(PreparedWeights.shared.keptCount, 0, "the released weights' form is still held")
        PreparedWeights.enabled = false
        XCTAssertTrue(y.scalars == forward(x, other, bias).scalars, "another weight's form was used")
    }

    /// Linear layers run yᵀ = W·xᵀ over W's kept packing: the bytes of x·Wᵀ, at every precision the
    /// CPU has (batches of 5 and more; fewer keep the skinny product), with and without a bias.
    func testLinearGivesTheBytesOfThePlainProduct() throws {
        let random = RandomGenerator(seed: 6, purpose: "prepared weights")
        var kernels: [(BLAS.Precision, BLAS.BF16Kernel)] = [(.float32, BLAS.bf16Kernel)]
        if BLAS.bf16Available { kernels.append((.bf16, .avx512bf16)) }
        if BLAS.amxAvailable { kernels.append((.bf16, .amx)) }
        let saved = BLAS.bf16Kernel
        defer { BLAS.bf16Kernel = saved }
        for (precision, kernel) in kernels {
            BLAS.bf16Kernel = kernel
            try BLAS.withPrecision(precision) {
                for (n, i, o) in [(5, 7, 9), (16, 128, 512), (64, 300, 33), (3, 16, 16), (17, 1, 6)] {
                    let x = random.normal([n, i]), weight = random.normal([o, i]), bias = random.normal([o])
                    for withBias in [false, true] {
                        var expected = [Float](repeating: 0, count: n * o)
                        if withBias { for row in 0..<n { for column in 0..<o { expected[row * o + column] = bias[flat: column] } } }
                        expected.withUnsafeMutableBufferPointer { c in
                            BLAS.sgemm(transposeB: true, m: n, n: o, k: i, a: x.pointer, lda: i, b: weight.pointer, ldb: i,
                                       beta: withBias ? 1 : 0, c: c.baseAddress!, ldc: o)
                        }
                        for call in 0..<3 {
                            let y = LinearKernel.forward(x, weight: weight, bias: withBias ? bias : nil)
                            XCTAssertTrue(y.scalars == expected, "\(precision) \(kernel) \(n)×\(i)→\(o) bias \(withBias) call \(call): other bytes")
                        }
                    }
                }
            }
        }
    }
}
