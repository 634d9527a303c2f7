import CKernels
import CKernelsEmulated
import Foundation
@testable import Tensor
import XCTest

/// The direct AMX convolution (convolution_amx.c, `Conv2dKernel.directAMXForward` and
/// `directAMXWeightGradient`): compiled against emulated AMX instructions it is checked on every
/// x86-64 CPU against the definition over bf16-rounded operands (float64 sums), and where the CPU
/// has AMX the real kernels are checked against float32 (within bf16's rounding), against the im2col
/// path, and for bytes that depend neither on threads nor on how the rows are split.
final class DirectConvolutionAMXTests: XCTestCase {
    /// Images narrower than a tile (8×8, 5×7: tiles span rows), pixel counts that are not multiples of
    /// 16 or 32, rows of whole tiles (16 and 32 wide: the planes hold the padded rows once), input
    /// channels that are not multiples of 32 (odd too), 1 to 48 outputs, kernels 3 and 5.
    static let shapes: [(inChannels: Int, outChannels: Int, height: Int, width: Int, kernel: Int, mode: PaddingMode)] = [
        (16, 3, 5, 7, 3, .zeros), (40, 33, 8, 8, 3, .reflect), (32, 32, 6, 20, 3, .zeros), (17, 16, 9, 11, 5, .reflect),
        (64, 40, 4, 4, 3, .zeros), (33, 1, 3, 37, 3, .reflect), (24, 20, 5, 32, 3, .reflect), (32, 48, 4, 16, 3, .zeros),
        (16, 8, 6, 32, 5, .zeros),
    ]

    /// Every term of a convolution of one image with geometry g: output channel, input channel,
    /// kernel row and column, output pixel (y, x), and the input pixel it reads (reflect or inside).
    static func forEachTerm(_ g: Conv2dGeometry, _ body: (_ out: Int, _ ch: Int, _ i: Int, _ j: Int, _ y: Int, _ x: Int,
                                                         _ input: Int) -> Void) {
        for out in 0..<g.outChannels {
            for y in 0..<g.outHeight {
                for x in 0..<g.outWidth {
                    for ch in 0..<g.inChannels {
                        for i in 0..<g.kernelHeight {
                            let sy = g.source(y + i - g.padding, size: g.inHeight)
                            if sy < 0 { continue }
                            for j in 0..<g.kernelWidth {
                                let sx = g.source(x + j - g.padding, size: g.inWidth)
                                if sx >= 0 { body(out, ch, i, j, y, x, (ch * g.inHeight + sy) * g.inWidth + sx) }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Σ_{c,t} w·x + bias over the bf16-rounded operands in float64, and Σ |terms| (for the bound).
    static func reference(_ x: [Float], _ w: [Float], _ bias: [Float]?, _ s: (Int, Int, Int, Int, Int, PaddingMode),
                          padding: Int? = nil) -> (values: [Double], magnitudes: [Double]) {
        let (c, o, h, wd, k, mode) = s
        let g = Conv2dGeometry(input: [1, c, h, wd], weight: [o, c, k, k], stride: 1, padding: padding ?? (k - 1) / 2,
                               paddingMode: mode)
        let (oh, ow) = (g.outHeight, g.outWidth)
        let xr = BF16GemmTests.emulatedRounding(x), wr = BF16GemmTests.emulatedRounding(w)
        var values = [Double](repeating: 0, count: o * oh * ow), magnitudes = values
        for out in 0..<o {
            for pixel in 0..<(oh * ow) {
                values[out * oh * ow + pixel] = Double(bias?[out] ?? 0)
                magnitudes[out * oh * ow + pixel] = abs(values[out * oh * ow + pixel])
            }
        }
        forEachTerm(g) { out, ch, i, j, y, xo, input in
            let term = Double(wr[((out * c + ch) * k + i) * k + j]) * Double(xr[input])
            values[(out * oh + y) * ow + xo] += term
            magnitudes[(out * oh + y) * ow + xo] += abs(term)
        }
        return (values, magnitudes)
    }

    /// The emulated forward kernel against the definition, with "same", full and no (zero) padding, and
    /// the same bytes however the rows are split into bands.
    func testEmulatedForwardMatchesTheDefinition() {
        let random = RandomGenerator(seed: 61, purpose: "direct amx")
        // Each shape with its "same" padding, and zero-padded shapes with the full padding k − 1 and none.
        let zeros = Self.shapes.filter { $0.mode == .zeros }
        let cases = Self.shapes.map { ($0, ($0.kernel - 1) / 2) } + zeros.map { ($0, $0.kernel - 1) } + zeros.map { ($0, 0) }
        for (shape, padding) in cases {
            let (c, o, h, w, k, mode) = shape
            let (oh, ow) = (h + 2 * padding - k + 1, w + 2 * padding - k + 1)
            let x = random.normal([c, h, w]).scalars, weight = random.normal([o, c, k, k]).scalars, bias = random.normal([o]).scalars
            var packed = [UInt32](repeating: 0xFFFF_FFFF, count: emu_wb_conv_amx_weights_count(Int32(o), Int32(c), Int32(k)))
            emu_wb_conv_amx_weights(weight, Int32(o), Int32(c), Int32(k), 0, &packed)
            // The flipped form read from W̃'s source equals the form of a flipped copy.
            let source = random.normal([c, o, k, k])
            var fromCopy = packed, flipped = packed
            emu_wb_conv_amx_weights(Conv2dKernel.flippedTransposed(source).scalars, Int32(o), Int32(c), Int32(k), 0, &fromCopy)
            emu_wb_conv_amx_weights(source.scalars, Int32(o), Int32(c), Int32(k), 1, &flipped)
            XCTAssertTrue(flipped == fromCopy, "flipped AMX weights differ from those of a flipped copy, \(shape)")
            func run(bandRows: Int) -> [Float] {
                var out = [Float](repeating: .nan, count: o * oh * ow)
                var band = [UInt32](repeating: 0x7FC0_7FC0,
                                    count: emu_wb_conv_amx_band_count(Int32(c), Int32(w), Int32(k), Int32(padding), Int32(bandRows)))
                for first in stride(from: 0, to: oh, by: bandRows) {
                    emu_wb_conv_amx_forward(x, Int32(c), Int32(h), Int32(w), Int32(k), Int32(padding), mode == .reflect ? 1 : 0, packed,
                                            bias, Int32(o), Int32(first), Int32(min(bandRows, oh - first)), &band, &out)
                }
                return out
            }
            let whole = run(bandRows: oh)
            let (expected, magnitudes) = Self.reference(x, weight, bias, shape, padding: padding)
            for i in whole.indices {
                // float32 sums of c·k² terms, one rounding per block of 32 products and per addition.
                let bound = 1e-6 * Double(c * k * k / 32 + 4) * magnitudes[i]
                XCTAssertLessThanOrEqual(abs(Double(whole[i]) - expected[i]), bound, "\(shape) padding \(padding) element \(i)")
            }
            XCTAssertEqual(run(bandRows: 2), whole, "\(shape) padding \(padding): bands of two rows")
        }
    }

    /// The emulated weight gradient against the definition over two images, and the same bytes however
    /// its work units are split.
    func testEmulatedWeightGradientMatchesTheDefinition() {
        let random = RandomGenerator(seed: 62, purpose: "direct amx gradient")
        for shape in Self.shapes {
            let (c, o, h, w, k, mode) = shape
            let images = 2, taps = k * k
            let x = random.normal([images, c, h, w]).scalars, dout = random.normal([images, o, h, w]).scalars
            let planesCount = emu_wb_conv_amx_gradient_planes_count(Int32(c), Int32(h), Int32(w), Int32(k))
            let pairsCount = emu_wb_conv_amx_gradient_pairs_count(Int32(o), Int32(h), Int32(w))
            var planes = [UInt16](repeating: 0x7FC0, count: 2 * images * planesCount)
            var pairs = [UInt32](repeating: 0x7FC0_7FC0, count: images * pairsCount)
            let paddedIn = (c + 15) / 16 * 16, paddedOut = (o + 15) / 16 * 16
            for n in 0..<images {
                x.withUnsafeBufferPointer { xs in
                    planes.withUnsafeMutableBufferPointer { p in
                        // In two calls, as the caller splits the channels.
                        emu_wb_conv_amx_gradient_planes(xs.baseAddress! + n * c * h * w, Int32(c), Int32(h), Int32(w), Int32(k),
                                                        mode == .reflect ? 1 : 0, 0, 16, p.baseAddress! + 2 * n * planesCount)
                        emu_wb_conv_amx_gradient_planes(xs.baseAddress! + n * c * h * w, Int32(c), Int32(h), Int32(w), Int32(k),
                                                        mode == .reflect ? 1 : 0, 16, Int32(paddedIn - 16), p.baseAddress! + 2 * n * planesCount)
                    }
                }
                dout.withUnsafeBufferPointer { d in
                    pairs.withUnsafeMutableBufferPointer { p in
                        emu_wb_conv_amx_gradient_pairs(d.baseAddress! + n * o * h * w, Int32(o), Int32(h), Int32(w), p.baseAddress! + n * pairsCount)
                    }
                }
            }
            let units = emu_wb_conv_amx_gradient_units(Int32(c), Int32(o), Int32(k))
            func run(split: Int) -> [Float] {
                var sums = [Float](repeating: .nan, count: taps * paddedIn * paddedOut)
                for part in 0..<split {
                    let first = units * part / split, end = units * (part + 1) / split
                    emu_wb_conv_amx_weight_gradient(planes, 2 * planesCount, pairs, pairsCount, Int32(images), Int32(c), Int32(o),
                                                    Int32(h), Int32(w), Int32(k), Int32(first), Int32(end - first), 0, &sums)
                }
                var gradient = [Float](repeating: .nan, count: o * c * taps)
                emu_wb_conv_amx_weight_gradient_store(sums, Int32(c), Int32(o), Int32(k), &gradient)
                return gradient
            }
            let whole = run(split: 1)
            let g = Conv2dGeometry(input: [1, c, h, w], weight: [o, c, k, k], stride: 1, padding: (k - 1) / 2, paddingMode: mode)
            let xr = BF16GemmTests.emulatedRounding(x), dr = BF16GemmTests.emulatedRounding(dout)
            var totals = [Double](repeating: 0, count: o * c * taps), sizes = totals
            for n in 0..<images {
                Self.forEachTerm(g) { out, ch, i, j, y, xo, input in
                    let term = Double(dr[((n * o + out) * h + y) * w + xo]) * Double(xr[n * c * h * w + input])
                    totals[((out * c + ch) * k + i) * k + j] += term
                    sizes[((out * c + ch) * k + i) * k + j] += abs(term)
                }
            }
            for index in totals.indices {
                let bound = 1e-6 * Double(images * h * w / 32 + 4) * sizes[index]
                XCTAssertLessThanOrEqual(abs(Double(whole[index]) - totals[index]), bound, "\(shape) dW element \(index)")
            }
            XCTAssertEqual(run(split: 3), whole, "\(shape): units in three parts")
        }
    }

    /// On AMX hardware: the forward pass and the weight gradient (batch 3, through the gradient
    /// groups) within bf16's rounding of float32 and of the im2col path, the same bytes on one and two
    /// threads and run to run.
    func testHardwareConvolutionsAgreeWithFloat32AndIm2col() throws {
        try XCTSkipUnless(BLAS.amxAvailable && BLAS.backend == .avx512, "needs AMX tiles")
        let random = RandomGenerator(seed: 63, purpose: "direct amx hardware")
        for (c, o, h, w, k, mode) in Self.shapes where o > 4 {
            let x = random.normal([3, c, h, w]), weight = random.normal([o, c, k, k]), bias = random.normal([o])
            let dout = random.normal([3, o, h, w])
            let p = (k - 1) / 2
            let g = Conv2dGeometry(input: x.shape, weight: weight.shape, stride: 1, padding: p, paddingMode: mode)
            func direct(threads: Int) -> (Tensor, Tensor) {
                let saved = Parallel.threadCount
                Parallel.threadCount = threads
                defer { Parallel.threadCount = saved }
                return BF16GemmTests.withBF16Kernel(.amx) {
                    XCTAssertTrue(Conv2dKernel.directAMXApplies(g))
                    return (Conv2dKernel.directAMXForward(input: x, weight: weight, flipped: false, bias: bias, g),
                            Conv2dKernel.directAMXWeightGradient(input: x, gradOutput: dout, g))
                }
            }
            let (im2col, im2colWeight) = BF16GemmTests.withBF16Kernel(.amx) {
                let saved = Conv2dKernel.directAMXEnabled
                Conv2dKernel.directAMXEnabled = false
                defer { Conv2dKernel.directAMXEnabled = saved }
                return (Conv2dKernel.forward(input: x, weight: weight, bias: bias, stride: 1, padding: p, paddingMode: mode),
                        Conv2dKernel.backward(input: x, weight: weight, gradOutput: dout, stride: 1, padding: p, paddingMode: mode,
                                              needsInputGradient: false, hasBias: false).weight)
            }
            let float32Forward = Conv2dKernel.forward(input: x, weight: weight, bias: bias, stride: 1, padding: p, paddingMode: mode)
            let float32Weight = Conv2dKernel.backward(input: x, weight: weight, gradOutput: dout, stride: 1, padding: p,
                                                      paddingMode: mode, needsInputGradient: false, hasBias: false).weight
            let (forward, weightGradient) = direct(threads: 2)
            // An input gradient's weights converted straight from W: the bytes of converting the flipped copy.
            let source = random.normal([c, o, k, k])
            BF16GemmTests.withBF16Kernel(.amx) {
                let straight = Conv2dKernel.directAMXForward(input: x, weight: source, flipped: true, bias: bias, g)
                let copied = Conv2dKernel.directAMXForward(input: x, weight: Conv2dKernel.flippedTransposed(source), flipped: false,
                                                           bias: bias, g)
                XCTAssertTrue(straight.scalars == copied.scalars, "flipped weights on AMX tiles, \((c, o, h, w, k, mode))")
            }
            for (name, got, float32, other) in [("forward", forward, float32Forward, im2col),
                                                ("weight gradient", weightGradient, float32Weight, im2colWeight)] {
                let scale = float32.scalars.map { abs($0) }.max()!
                // Each product of bf16-rounded operands is within 2⁻⁷ of the float32 one (relative); sums of
                // random terms keep the error within a few 2⁻⁷ of the largest value.
                let fromFloat32 = zip(got.scalars, float32.scalars).map { abs($0 - $1) }.max()!
                let fromIm2col = zip(got.scalars, other.scalars).map { abs($0 - $1) }.max()!
                XCTAssertLessThan(fromFloat32, 4 * 0.0078125 * scale, "\((c, o, h, w, k, mode)) \(name) against float32")
                XCTAssertLessThan(fromIm2col, 1e-4 * scale, "\((c, o, h, w, k, mode)) \(name) against im2col (same rounded operands)")
            }
            let (oneThread, oneThreadWeight) = direct(threads: 1)
            let (again, againWeight) = direct(threads: 2)
            XCTAssertEqual(oneThread.scalars, forward.scalars, "forward bytes on one and two threads")
            XCTAssertEqual(oneThreadWeight.scalars, weightGradient.scalars, "weight gradient bytes on one and two threads")
            XCTAssertEqual(again.scalars, forward.scalars)
            XCTAssertEqual(againWeight.scalars, weightGradient.scalars)
        }
    }

    /// A reflect-padded layer's input gradient on the tiles, its inner part (a "same" convolution)
    /// with the border ring added image by image right after each image (two images: whole images
    /// per work item) or after the convolution (one image split between the threads), or the padded
    /// input's gradient (padding k − 1, without a zero-padded copy of dout) folded back: within
    /// float32's rounding of the im2col path's (same rounded operands), on the direct path.
    func testHardwareReflectInputGradient() throws {
        try XCTSkipUnless(BLAS.amxAvailable && BLAS.backend == .avx512, "needs AMX tiles")
        let random = RandomGenerator(seed: 65, purpose: "direct amx reflect")
        for (batch, separately) in [(2, true), (1, true), (2, false)] {
            let x = random.normal([batch, 40, 18, 20]), weight = random.normal([24, 40, 3, 3])
            let dout = random.normal([batch, 24, 18, 20])
            func inputGradient(direct: Bool) -> Tensor {
                let saved = Conv2dKernel.directAMXEnabled
                Conv2dKernel.directAMXEnabled = direct
                defer { Conv2dKernel.directAMXEnabled = saved }
                return BF16GemmTests.withBF16Kernel(.amx) {
                    ConvolutionGradientTests.withReflectBorder(separately: separately) {
                        Conv2dKernel.backward(input: x, weight: weight, gradOutput: dout, stride: 1, padding: 1, paddingMode: .reflect,
                                              needsInputGradient: true, hasBias: false).input!
                    }
                }
            }
            let convolution = Conv2dGeometry(input: dout.shape, weight: [40, 24, 3, 3], stride: 1, padding: separately ? 1 : 2,
                                             paddingMode: .zeros)
            XCTAssertTrue(BF16GemmTests.withBF16Kernel(.amx) { Conv2dKernel.usesDirectAMX(convolution) })
            let direct = inputGradient(direct: true), im2col = inputGradient(direct: false)
            let scale = im2col.scalars.map { abs($0) }.max()!
            XCTAssertLessThan(zip(direct.scalars, im2col.scalars).map { abs($0 - $1) }.max()!, 1e-4 * scale,
                              "batch \(batch), border separately: \(separately)")
        }
    }

    /// The seed U-Net's layer shapes at 64×64 (reflect padding, batch 2) that take the direct path
    /// (its 8×8 and 4×4 layers do not): forward pass, weight gradient and input gradient through
    /// `Conv2dKernel` within float32's rounding of the im2col path (the same bf16-rounded operands,
    /// summed in another order).
    func testHardwareSeedUNetShapesAgreeWithIm2col() throws {
        try XCTSkipUnless(BLAS.amxAvailable && BLAS.backend == .avx512, "needs AMX tiles")
        let random = RandomGenerator(seed: 66, purpose: "direct amx unet")
        for (c, o, size) in [(32, 32, 64), (64, 32, 64), (32, 64, 32), (64, 64, 32), (128, 64, 32), (64, 128, 16), (128, 128, 16),
                             (256, 128, 16)] {
            let x = random.normal([2, c, size, size]), weight = random.normal([o, c, 3, 3]), dout = random.normal([2, o, size, size])
            let g = Conv2dGeometry(input: x.shape, weight: weight.shape, stride: 1, padding: 1, paddingMode: .reflect)
            BF16GemmTests.withBF16Kernel(.amx) {
                XCTAssertTrue(Conv2dKernel.usesDirectAMX(g), "\(c)→\(o) at \(size)×\(size) runs its forward pass on the tiles")
            }
            func run(direct: Bool) -> [Tensor] {
                let saved = Conv2dKernel.directAMXEnabled
                Conv2dKernel.directAMXEnabled = direct
                defer { Conv2dKernel.directAMXEnabled = saved }
                return BF16GemmTests.withBF16Kernel(.amx) {
                    let y = Conv2dKernel.forward(input: x, weight: weight, bias: nil, stride: 1, padding: 1, paddingMode: .reflect)
                    let grads = Conv2dKernel.backward(input: x, weight: weight, gradOutput: dout, stride: 1, padding: 1,
                                                      paddingMode: .reflect, needsInputGradient: true, hasBias: false)
                    return [y, grads.weight, grads.input!]
                }
            }
            for (name, (got, expected)) in zip(["forward", "weight gradient", "input gradient"], zip(run(direct: true), run(direct: false))) {
                let scale = expected.scalars.map { abs($0) }.max()!
                let worst = zip(got.scalars, expected.scalars).map { abs($0 - $1) }.max()!
                XCTAssertLessThan(worst, 1e-4 * scale, "\(c)→\(o) at \(size)×\(size): \(name)")
            }
        }
    }

    /// Two processes holding three images each give the bytes of one process holding all six: each
    /// group's sums are rearranged before the exchange and the groups are added in order.
    func testHardwareWeightGradientIsTheSameOverTwoProcesses() throws {
        try XCTSkipUnless(BLAS.amxAvailable && BLAS.backend == .avx512, "needs AMX tiles")
        let random = RandomGenerator(seed: 64, purpose: "direct amx ranks")
        let x = random.normal([6, 24, 12, 12]), dout = random.normal([6, 20, 12, 12]), weight = random.normal([20, 24, 3, 3])
        let (whole, viaExchange, sent) = TwoProcessExchange.compare(batch: 6) { images, shard in
            let g = Conv2dGeometry(input: x.images(images).shape, weight: weight.shape, stride: 1, padding: 1, paddingMode: .zeros)
            return BF16GemmTests.withBF16Kernel(.amx) {
                BatchReduction.withShard(shard) {
                    Conv2dKernel.directAMXWeightGradient(input: x.images(images), gradOutput: dout.images(images), g)
                }
            }
        }
        XCTAssertEqual(sent, 3 * 20 * 24 * 9, "three groups' partial sums in the weight's layout")
        XCTAssertEqual(viaExchange.scalars, whole.scalars)
    }

    /// The rules: bf16 on AMX only, stride 1, odd square kernels with "same" padding, 16 inputs and
    /// more, more than 4 outputs; the forward pass on images of 16×16 and more, the weight gradient on
    /// 16×16 and more or where its sums fit in 1 MB; and `forward` and `backward` take it.
    func testRules() throws {
        try XCTSkipUnless(BLAS.amxAvailable && BLAS.backend == .avx512, "needs AMX tiles")
        func geometry(_ c: Int, _ k: Int, size: Int = 16, stride: Int = 1, padding: Int? = nil, outputs: Int = 8) -> Conv2dGeometry {
            Conv2dGeometry(input: [1, c, size, size], weight: [outputs, c, k, k], stride: stride,
                           padding: padding ?? (k - 1) / 2, paddingMode: .zeros)
        }
        func applies(_ g: Conv2dGeometry, kernel: BLAS.BF16Kernel = .amx) -> Bool {
            BF16GemmTests.withBF16Kernel(kernel) { Conv2dKernel.directAMXApplies(g) }
        }
        XCTAssertTrue(applies(geometry(16, 3)))
        XCTAssertTrue(applies(geometry(64, 5)))
        XCTAssertFalse(applies(geometry(15, 3)), "fewer than 16 inputs")
        XCTAssertTrue(applies(geometry(16, 3, outputs: 5)))
        XCTAssertFalse(applies(geometry(16, 3, outputs: 4)), "skinny products stay float32")
        XCTAssertFalse(applies(geometry(32, 3, stride: 2)))
        XCTAssertTrue(applies(geometry(32, 3, padding: 0)), "zero padding 0 to k − 1")
        XCTAssertTrue(applies(geometry(32, 3, padding: 2)))
        XCTAssertFalse(applies(geometry(32, 3, padding: 3)))
        XCTAssertFalse(applies(geometry(32, 1)), "pointwise")
        XCTAssertFalse(applies(geometry(32, 3), kernel: .avx512bf16), "vdpbf16ps")
        XCTAssertFalse(Conv2dKernel.directAMXApplies(geometry(32, 3)), "float32")
        BF16GemmTests.withBF16Kernel(.amx) {
            XCTAssertTrue(Conv2dKernel.usesDirectAMX(geometry(32, 3, size: 16)))
            XCTAssertFalse(Conv2dKernel.usesDirectAMX(geometry(32, 3, size: 8)), "forward on 8×8")
            XCTAssertTrue(Conv2dKernel.weightGradientUsesDirectAMX(geometry(512, 3, size: 32, outputs: 512)))
            XCTAssertTrue(Conv2dKernel.weightGradientUsesDirectAMX(geometry(256, 3, size: 16, outputs: 256)), "16×16")
            XCTAssertFalse(Conv2dKernel.weightGradientUsesDirectAMX(geometry(512, 3, size: 8, outputs: 512)), "9.4 MB of sums on 8×8")
            XCTAssertTrue(Conv2dKernel.weightGradientUsesDirectAMX(geometry(64, 3, size: 8, outputs: 64)), "sums in L2")
            XCTAssertFalse(Conv2dKernel.weightGradientUsesDirectAMX(geometry(64, 3, size: 32, padding: 2, outputs: 64)),
                           "outputs the size of the input")
            XCTAssertEqual(Conv2dKernel.forwardAlgorithm(input: [2, 32, 16, 16], weight: [32, 32, 3, 3], stride: 1, padding: 1,
                                                         paddingMode: .reflect), "amx-direct")
        }
    }
}

/// The exchange of the first of two processes: its own partial sums, then the second's (`later`).
final class TwoProcessExchange: PartialSumExchange {
    var sent: [Float] = [], later: [Float] = []
    func allGather(_ local: [Double]) -> [Double] { local }
    func allGather(_ local: UnsafeBufferPointer<Float>) -> [Float] {
        sent = Array(local)
        return sent + later
    }

    /// A batch-reducing kernel run by one process on a batch of `batch` images, and by two processes on
    /// its halves (the second's partial sums handed to the first): both results, and how many floats
    /// the first process sent. `run(images, shard)` computes on images `images` of the batch.
    static func compare(batch: Int, _ run: (Range<Int>, BatchReduction.Shard?) -> Tensor)
        -> (oneProcess: Tensor, twoProcesses: Tensor, sent: Int) {
        let whole = run(0..<batch, nil)
        let second = TwoProcessExchange(), first = TwoProcessExchange()
        _ = run((batch / 2)..<batch, BatchReduction.Split(rank: 1, ranks: 2).shard(batch: batch, exchange: second))
        first.later = second.sent
        let split = run(0..<(batch / 2), BatchReduction.Split(rank: 0, ranks: 2).shard(batch: batch, exchange: first))
        return (whole, split, first.sent.count)
    }
}

extension Tensor {
    /// Images `range` of a batch [N, …].
    func images(_ range: Range<Int>) -> Tensor {
        let size = count / shape[0]
        return Tensor(shape: [range.count] + shape.dropFirst(), scalars: Array(scalars[(range.lowerBound * size)..<(range.upperBound * size)]))
    }
}
