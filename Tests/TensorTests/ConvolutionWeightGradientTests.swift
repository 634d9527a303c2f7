import Foundation
@testable import Tensor
import TestSupport
import XCTest

/// The float32 weight gradient as dot products over the pixels (convolution_weight_gradient.c,
/// `Conv2dKernel.directWeightGradient`): against the definition in float64 within float32's
/// summation bound, against the GEMM path, the same bytes on any number of threads and over two
/// processes, and the rule that picks it.
final class ConvolutionWeightGradientTests: XCTestCase {
    override func setUpWithError() throws {
        try XCTSkipUnless(BLAS.backend == .avx512, "an AVX-512 kernel")
    }

    /// 1 to 7 outputs (ragged blocks of three), odd input channel counts, images from 1×1 to wider
    /// than tall, several chunks of pixels (64×70), reflect and zero padding, and batches that make
    /// groups of one and of several images (9 images: groups of 2 and 1; 17: of 3 and 2).
    static let shapes: [(batch: Int, inChannels: Int, outChannels: Int, height: Int, width: Int, mode: PaddingMode)] = [
        (1, 3, 1, 32, 32, .zeros), (3, 17, 2, 5, 7, .reflect), (5, 5, 4, 1, 1, .zeros), (2, 16, 7, 33, 40, .reflect),
        (9, 8, 5, 6, 17, .zeros), (1, 4, 3, 64, 70, .reflect), (2, 2, 6, 2, 2, .reflect), (17, 3, 2, 4, 5, .reflect),
        (10, 2, 3, 1, 1, .zeros),
    ]

    /// dW[o, c, i, j] = Σ_{n, y, x} dout[n, o, y, x]·xpad[n, c, y + i − 1, x + j − 1] in float64, and Σ |terms|.
    static func reference(_ x: Tensor, _ dout: Tensor, _ g: Conv2dGeometry) -> (values: Tensor, magnitudes: Tensor) {
        let (c, o, h, w) = (g.inChannels, g.outChannels, g.inHeight, g.inWidth)
        var values = [Double](repeating: 0, count: o * c * 9), magnitudes = values
        let xs = x.scalars, ds = dout.scalars
        for n in 0..<g.batch {
            let one = Conv2dGeometry(input: [1, c, h, w], weight: [o, c, 3, 3], stride: 1, padding: 1, paddingMode: g.paddingMode)
            DirectConvolutionAMXTests.forEachTerm(one) { out, ch, i, j, y, xo, input in
                let term = Double(ds[((n * o + out) * h + y) * w + xo]) * Double(xs[n * c * h * w + input])
                values[((out * c + ch) * 3 + i) * 3 + j] += term
                magnitudes[((out * c + ch) * 3 + i) * 3 + j] += abs(term)
            }
        }
        return (Tensor(shape: [o, c, 3, 3], scalars: values.map { Float($0) }),
                Tensor(shape: [o, c, 3, 3], scalars: magnitudes.map { Float($0) }))
    }

    static func withThreads<R>(_ threads: Int, _ body: () throws -> R) rethrows -> R {
        let saved = Parallel.threadCount
        Parallel.threadCount = threads
        defer { Parallel.threadCount = saved }
        return try body()
    }

    func testMatchesTheDefinitionAndTheGEMMOnAnyThreads() {
        let random = RandomGenerator(seed: 71, purpose: "direct weight gradient")
        for (n, c, o, h, w, mode) in Self.shapes {
            let x = random.normal([n, c, h, w]), dout = random.normal([n, o, h, w])
            let g = Conv2dGeometry(input: x.shape, weight: [o, c, 3, 3], stride: 1, padding: 1, paddingMode: mode)
            let shape = "\((n, c, o, h, w, mode))"
            let direct = Self.withThreads(2) { Conv2dKernel.directWeightGradient(input: x, gradOutput: dout, g) }
            let (expected, magnitudes) = Self.reference(x, dout, g)
            if let problem = reductionMismatch(direct, expected, magnitudes: magnitudes, terms: n * h * w) {
                XCTFail("\(shape) against the definition: \(problem)")
            }
            for threads in [1, 3] {
                let other = Self.withThreads(threads) { Conv2dKernel.directWeightGradient(input: x, gradOutput: dout, g) }
                XCTAssertEqual(other.scalars, direct.scalars, "\(shape) bytes on \(threads) threads")
            }
            let saved = Conv2dKernel.directWeightGradientEnabled
            Conv2dKernel.directWeightGradientEnabled = false
            let gemm = Conv2dKernel.backward(input: x, weight: random.normal([o, c, 3, 3]), gradOutput: dout, stride: 1, padding: 1,
                                             paddingMode: mode, needsInputGradient: false, hasBias: false).weight
            Conv2dKernel.directWeightGradientEnabled = saved
            if let problem = reductionMismatch(direct, gemm, magnitudes: magnitudes, terms: n * h * w) {
                XCTFail("\(shape) against the GEMM path: \(problem)")
            }
        }
    }

    /// `backward` takes it where the rule says, beside the column input gradient (32 outputs) or the
    /// input gradient as a convolution (3 outputs), which keep their bytes, on one and two threads.
    func testBackwardTakesItAndKeepsTheInputGradient() {
        let random = RandomGenerator(seed: 72, purpose: "direct weight gradient backward")
        for (n, c, o, mode, byConvolution) in [(3, 16, 32, PaddingMode.zeros, false), (2, 8, 3, .reflect, true)] {
            let x = random.normal([n, c, 32, 32]), weight = random.normal([o, c, 3, 3]), dout = random.normal([n, o, 32, 32])
            let g = Conv2dGeometry(input: x.shape, weight: weight.shape, stride: 1, padding: 1, paddingMode: mode)
            XCTAssertTrue(Conv2dKernel.weightGradientIsDirect(g))
            XCTAssertEqual(Conv2dKernel.inputGradientIsConvolution(g), byConvolution)
            func backward(direct: Bool, threads: Int) -> (Tensor, Tensor, Tensor) {
                let saved = Conv2dKernel.directWeightGradientEnabled
                Conv2dKernel.directWeightGradientEnabled = direct
                defer { Conv2dKernel.directWeightGradientEnabled = saved }
                let result = Self.withThreads(threads) {
                    Conv2dKernel.backward(input: x, weight: weight, gradOutput: dout, stride: 1, padding: 1, paddingMode: mode,
                                          needsInputGradient: true, hasBias: true)
                }
                return (result.input!, result.weight, result.bias!)
            }
            let (input, weightGradient, bias) = backward(direct: true, threads: 2)
            let (gemmInput, _, gemmBias) = backward(direct: false, threads: 2)
            XCTAssertEqual(input.scalars, gemmInput.scalars, "input gradient")
            XCTAssertEqual(bias.scalars, gemmBias.scalars, "bias gradient")
            XCTAssertEqual(weightGradient.scalars, Self.withThreads(2) { Conv2dKernel.directWeightGradient(input: x, gradOutput: dout, g) }.scalars)
            let (oneInput, oneWeight, _) = backward(direct: true, threads: 1)
            XCTAssertEqual(oneInput.scalars, input.scalars, "input gradient on one thread")
            XCTAssertEqual(oneWeight.scalars, weightGradient.scalars, "weight gradient on one thread")
        }
    }

    func testTheSameOverTwoProcesses() {
        let random = RandomGenerator(seed: 73, purpose: "direct weight gradient ranks")
        let x = random.normal([6, 5, 12, 12]), dout = random.normal([6, 4, 12, 12])
        let (whole, viaExchange, sent) = TwoProcessExchange.compare(batch: 6) { images, shard in
            let g = Conv2dGeometry(input: x.images(images).shape, weight: [4, 5, 3, 3], stride: 1, padding: 1, paddingMode: .reflect)
            return BatchReduction.withShard(shard) {
                Conv2dKernel.directWeightGradient(input: x.images(images), gradOutput: dout.images(images), g)
            }
        }
        XCTAssertEqual(sent, 3 * 4 * 5 * 9, "three groups' partial sums")
        XCTAssertEqual(viaExchange.scalars, whole.scalars)
    }

    /// Float32 on AVX-512, 3×3 with stride 1 and padding 1, at most 64 outputs, 32×32 pixels and
    /// more, padded copies within 64 MB; in bf16 only layers with at most 4 outputs.
    func testRule() {
        func geometry(_ outputs: Int, size: Int = 32, kernel: Int = 3, stride: Int = 1, padding: Int = 1) -> Conv2dGeometry {
            Conv2dGeometry(input: [2, 16, size, size], weight: [outputs, 16, kernel, kernel], stride: stride, padding: padding,
                           paddingMode: .zeros)
        }
        XCTAssertTrue(Conv2dKernel.weightGradientIsDirect(geometry(64)))
        XCTAssertTrue(Conv2dKernel.weightGradientIsDirect(geometry(1, size: 128)))
        XCTAssertFalse(Conv2dKernel.weightGradientIsDirect(geometry(65)), "more than 64 outputs")
        XCTAssertFalse(Conv2dKernel.weightGradientIsDirect(geometry(32, size: 31)), "fewer than 32×32 pixels")
        XCTAssertTrue(Conv2dKernel.weightGradientIsDirect(geometry(32, size: 512)), "51 MB of padded copies")
        XCTAssertFalse(Conv2dKernel.weightGradientIsDirect(geometry(32, size: 1024)), "202 MB of padded copies")
        XCTAssertFalse(Conv2dKernel.weightGradientIsDirect(geometry(32, stride: 2)))
        XCTAssertFalse(Conv2dKernel.weightGradientIsDirect(geometry(32, padding: 0)))
        XCTAssertFalse(Conv2dKernel.weightGradientIsDirect(geometry(32, kernel: 1, padding: 0)))
        XCTAssertFalse(Conv2dKernel.weightGradientIsDirect(geometry(32, kernel: 5, padding: 1)))
        if BLAS.bf16Available {
            BF16GemmTests.withBF16Kernel(.avx512bf16) {
                XCTAssertTrue(Conv2dKernel.weightGradientIsDirect(geometry(4)), "float32 products in bf16 too")
                XCTAssertFalse(Conv2dKernel.weightGradientIsDirect(geometry(5)), "bf16 products")
            }
        }
    }
}
