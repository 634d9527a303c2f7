import Foundation
@testable import Tensor
import XCTest

/// The input gradient as a forward convolution of the output gradient with flipped, transposed
/// weights (Conv2dKernel.inputGradientIsConvolution), zero and reflect padding: against the
/// column-gradient path in float32 on every machine, and as bf16 training runs it where the CPU has
/// bf16 products.
final class ConvolutionGradientTests: XCTestCase {
    /// Kernel sizes and paddings the rule accepts (same-size, valid and wider-than-needed padding),
    /// rectangular images and several channels both ways.
    static let shapes: [(kernel: Int, padding: Int, mode: PaddingMode, inChannels: Int, outChannels: Int, height: Int, width: Int)] = [
        (3, 1, .zeros, 5, 7, 9, 13), (3, 0, .zeros, 4, 3, 8, 6), (5, 2, .zeros, 3, 6, 7, 11), (3, 2, .zeros, 2, 3, 5, 4),
        (1, 0, .zeros, 3, 2, 4, 5), (3, 1, .reflect, 5, 7, 9, 13), (5, 2, .reflect, 3, 6, 7, 11), (3, 3, .reflect, 2, 3, 5, 4),
        (3, 1, .reflect, 2, 2, 2, 3), (3, 1, .reflect, 32, 3, 12, 10), (3, 1, .zeros, 16, 1, 9, 9),
        (3, 2, .reflect, 4, 5, 6, 7), (5, 1, .reflect, 3, 4, 8, 6), (5, 3, .reflect, 4, 3, 9, 5), (7, 3, .reflect, 2, 3, 4, 11),
        (3, 0, .reflect, 3, 4, 6, 5),
    ]

    func testEqualsTheColumnGradientInFloat32() {
        let random = RandomGenerator(seed: 21, purpose: "conv input gradient")
        for (kernel, padding, mode, c, o, h, w) in Self.shapes {
            let x = random.normal([2, c, h, w]), weight = random.normal([o, c, kernel, kernel])
            let g = Conv2dGeometry(input: x.shape, weight: weight.shape, stride: 1, padding: padding, paddingMode: mode)
            let gradOut = random.normal([2, o, g.outHeight, g.outWidth])
            Conv2dKernel.inputGradientByConvolutionEnabled = false
            let byColumns = Conv2dKernel.backward(input: x, weight: weight, gradOutput: gradOut, stride: 1, padding: padding,
                                                  paddingMode: mode, needsInputGradient: true, hasBias: false).input!
            Conv2dKernel.inputGradientByConvolutionEnabled = true
            // Reflect padding both ways: the border ring added separately (where 1 ≤ p ≤ kh − 1) and the
            // padded input's gradient folded back.
            for separately in mode == .reflect ? [true, false] : [false] {
                let byConvolution = Self.withReflectBorder(separately: separately) {
                    XCTAssertEqual(Conv2dKernel.addsReflectBorderSeparately(g), separately && padding >= 1 && padding <= kernel - 1)
                    return Conv2dKernel.inputGradientByConvolution(gradOut, weight: weight, g)
                }
                XCTAssertEqual(byConvolution.shape, x.shape)
                let scale = byColumns.scalars.map { abs($0) }.max()!
                let worst = zip(byColumns.scalars, byConvolution.scalars).map { abs($0 - $1) }.max()!
                XCTAssertLessThan(worst, 1e-5 * scale, "kernel \(kernel) padding \(padding) \(mode), border separately: \(separately)")
            }
        }
    }

    /// Runs `body` with reflect borders added separately at every size (`separately`) or never.
    static func withReflectBorder<R>(separately: Bool, _ body: () throws -> R) rethrows -> R {
        let saved = Conv2dKernel.reflectBorderMinimumPixels
        Conv2dKernel.reflectBorderMinimumPixels = separately ? 0 : Int.max
        defer { Conv2dKernel.reflectBorderMinimumPixels = saved }
        return try body()
    }

    /// Groups of one image whose products are single GEMM slices are summed in order through the
    /// GEMM's beta = 1 (no partial sum per image): the same bytes as the group sums two processes add
    /// after exchanging them, on one and two threads, for 3×3 (8×8, 16×16) and 1×1 layers; and the
    /// group sums where a product takes several slices (32×32).
    func testWeightGradientSummedInOrderEqualsTheGroupSums() {
        let random = RandomGenerator(seed: 23, purpose: "conv weight gradient in order")
        for (c, o, size, kernel) in [(24, 20, 8, 3), (12, 40, 16, 3), (16, 8, 16, 1), (8, 70, 32, 3)] {
            let x = random.normal([4, c, size, size]), dout = random.normal([4, o, size, size])
            let weight = random.normal([o, c, kernel, kernel])
            func gradient(_ images: Range<Int>, shard: BatchReduction.Shard?, threads: Int = 2) -> Tensor {
                ConvolutionWeightGradientTests.withThreads(threads) {
                    BatchReduction.withShard(shard) {
                        Conv2dKernel.backward(input: x.images(images), weight: weight, gradOutput: dout.images(images), stride: 1,
                                              padding: kernel / 2, paddingMode: .zeros, needsInputGradient: true, hasBias: false).weight
                    }
                }
            }
            let (whole, viaExchange, _) = TwoProcessExchange.compare(batch: 4) { gradient($0, shard: $1) }
            let oneThread = gradient(0..<4, shard: nil, threads: 1)
            XCTAssertTrue(viaExchange.scalars == whole.scalars, "\(c)→\(o) at \(size)×\(size), \(kernel)×\(kernel): two processes")
            XCTAssertTrue(oneThread.scalars == whole.scalars, "\(c)→\(o) at \(size)×\(size), \(kernel)×\(kernel): one thread")
        }
    }

    /// The reflect border's ring (added separately at every size here) is summed by products whose
    /// width follows how the images are split (whole images after each on AMX tiles, ranges per
    /// thread elsewhere): the input gradient is the same bytes on one, two and three threads, in
    /// float32 and, where the CPU has them, in bf16 (AMX tiles and the bf16 GEMM), with batches that
    /// split unevenly. The workbench's GEMMs sum independently of a product's width; OpenBLAS's edge
    /// kernels do not (as for Winograd's bands).
    func testReflectInputGradientIsTheSameOnAnyThreads() throws {
        try XCTSkipUnless(BLAS.ownKernel, "independence of the product's width needs the workbench's GEMM (OpenBLAS is selected)")
        let random = RandomGenerator(seed: 24, purpose: "reflect border threads")
        var precisions: [(String, (() -> Tensor) throws -> Tensor)] = [("float32", { $0() })]
        if BLAS.bf16Available && BLAS.backend == .avx512 {
            precisions.append(("bf16", { body in try BLAS.withPrecision(.bf16) { body() } }))
        }
        for (c, o, size, batch) in [(64, 32, 16, 5), (24, 20, 8, 3), (16, 40, 18, 1), (32, 16, 4, 7)] {
            let x = random.normal([batch, c, size, size]), weight = random.normal([o, c, 3, 3])
            let dout = random.normal([batch, o, size, size])
            for (name, precision) in precisions {
                func gradient(_ threads: Int) throws -> Tensor {
                    try ConvolutionWeightGradientTests.withThreads(threads) {
                        try precision {
                            Conv2dKernel.backward(input: x, weight: weight, gradOutput: dout, stride: 1, padding: 1, paddingMode: .reflect,
                                                  needsInputGradient: true, hasBias: false).input!
                        }
                    }
                }
                let (one, two, three) = try Self.withReflectBorder(separately: true) {
                    (try gradient(1), try gradient(2), try gradient(3))
                }
                let label = "\(c)→\(o) at \(size)×\(size), batch \(batch), \(name)"
                XCTAssertTrue(one.scalars == two.scalars, "\(label): one thread")
                XCTAssertTrue(three.scalars == two.scalars, "\(label): three threads")
            }
        }
    }

    func testFlippedTransposedWeights() {
        let weight = Tensor(shape: [2, 3, 2, 2], scalars: (0..<(2 * 3 * 2 * 2)).map(Float.init))
        let flipped = Conv2dKernel.flippedTransposed(weight)
        XCTAssertEqual(flipped.shape, [3, 2, 2, 2])
        // W̃[c=1, o=0] is W[o=0, c=1] rotated by 180°: [4,5,6,7] → [7,6,5,4].
        XCTAssertEqual(Array(flipped.scalars[8..<12]), [7, 6, 5, 4])
        XCTAssertEqual(Array(flipped.scalars[12..<16]), [19, 18, 17, 16])
    }

    /// bf16 training takes the convolution path for stride-1 zero-padded kernels (and the column path
    /// otherwise); its input gradient stays within bf16's rounding of the float32 one.
    func testBF16BackwardUsesTheConvolutionAndStaysClose() throws {
        try XCTSkipUnless(BLAS.bf16Available && BLAS.backend == .avx512, "needs bf16 products")
        let random = RandomGenerator(seed: 22, purpose: "conv input gradient")
        for (kernel, padding, mode, c, o, h, w) in Self.shapes + [(3, 1, .reflect, 64, 32, 20, 24)] {
            let x = random.normal([2, c, h, w]), weight = random.normal([o, c, kernel, kernel])
            let g = Conv2dGeometry(input: x.shape, weight: weight.shape, stride: 1, padding: padding, paddingMode: mode)
            let gradOut = random.normal([2, o, g.outHeight, g.outWidth])
            func inputGradient() -> Tensor {
                Conv2dKernel.backward(input: x, weight: weight, gradOutput: gradOut, stride: 1, padding: padding,
                                      paddingMode: mode, needsInputGradient: true, hasBias: false).input!
            }
            let float32 = inputGradient()
            let (bf16, takesConvolution) = try BLAS.withPrecision(.bf16) {
                (inputGradient(), Conv2dKernel.inputGradientIsConvolution(g))
            }
            XCTAssertEqual(takesConvolution, kernel > 1, "kernel \(kernel)")
            // Products of bf16 operands: relative error per term 2⁻⁸ at most, summed over C_out·kh·kw terms.
            let scale = float32.scalars.map { abs($0) }.max()!
            let worst = zip(float32.scalars, bf16.scalars).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(worst, 0.02 * scale, "kernel \(kernel) padding \(padding) \(mode)")
            // Products of at most 4 rows run in float32 (the skinny path) at either precision: the 1×1
            // case, and the convolution float32 takes too for ≤ 4 outputs when it writes ≤ 4 channels.
            let sameProducts = kernel == 1 || (c <= 4 && Conv2dKernel.inputGradientIsConvolution(g))
            if !sameProducts { XCTAssertGreaterThan(worst, 0, "bf16 products round") }
        }
        let strided = Conv2dGeometry(input: [1, 2, 8, 8], weight: [3, 2, 3, 3], stride: 2, padding: 1, paddingMode: .zeros)
        let rectangular = Conv2dGeometry(input: [1, 2, 8, 8], weight: [3, 2, 3, 1], stride: 1, padding: 1, paddingMode: .zeros)
        try BLAS.withPrecision(.bf16) {
            XCTAssertFalse(Conv2dKernel.inputGradientIsConvolution(strided))
            XCTAssertFalse(Conv2dKernel.inputGradientIsConvolution(rectangular))
        }
        XCTAssertFalse(Conv2dKernel.inputGradientIsConvolution(Conv2dGeometry(input: [1, 2, 8, 8], weight: [5, 2, 3, 3], stride: 1,
                                                                              padding: 1, paddingMode: .zeros)), "float32 keeps its path")
    }

    /// float32 layers with at most 4 outputs take the convolution (9·C_out column rows instead of
    /// 9·C_in); their gradient is checked against the column gradient above.
    func testFewOutputsTakeTheConvolutionInFloat32() {
        for outputs in [1, 3, 4] {
            XCTAssertTrue(Conv2dKernel.inputGradientIsConvolution(Conv2dGeometry(input: [1, 32, 16, 16], weight: [outputs, 32, 3, 3],
                                                                                 stride: 1, padding: 1, paddingMode: .reflect)), "\(outputs)")
        }
        XCTAssertFalse(Conv2dKernel.inputGradientIsConvolution(Conv2dGeometry(input: [1, 32, 16, 16], weight: [5, 32, 3, 3],
                                                                              stride: 1, padding: 1, paddingMode: .reflect)))
        XCTAssertFalse(Conv2dKernel.inputGradientIsConvolution(Conv2dGeometry(input: [1, 32, 16, 16], weight: [3, 32, 3, 3],
                                                                              stride: 2, padding: 1, paddingMode: .zeros)), "strides")
    }
}
