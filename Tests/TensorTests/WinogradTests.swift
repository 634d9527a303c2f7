import CKernels
import Foundation
@testable import Tensor
import XCTest

/// Winograd F(2×2, 3×3) forward convolutions (winograd.c, `Conv2dKernel.winogradForward`): against
/// the definition in float64, against im2col, independent of threads and batch, and each transform
/// to the bits of a scalar reference (the CI's portable pass runs the same checks on the portable
/// loops, so both builds of the transforms give these bits).
final class WinogradTests: XCTestCase {
    /// Odd and even sizes (an odd size's last tile is half outside), 2×2 images (reflect's smallest),
    /// rows narrower and wider than sixteen tiles (the AVX-512 loops' masked ends), 1 to 33 outputs (1 and 3: the skinny products).
    static let shapes: [(inChannels: Int, outChannels: Int, height: Int, width: Int, mode: PaddingMode, bias: Bool)] = [
        (3, 5, 7, 9, .zeros, true), (8, 6, 2, 2, .reflect, false), (16, 24, 16, 16, .reflect, true),
        (5, 33, 13, 40, .zeros, false), (20, 8, 3, 35, .reflect, true), (7, 9, 34, 67, .reflect, false),
        (2, 7, 5, 2, .zeros, true), (16, 1, 9, 20, .zeros, true), (17, 3, 6, 6, .reflect, false),
    ]

    func testMatchesTheDefinition() {
        let random = RandomGenerator(seed: 41, purpose: "winograd")
        for (c, o, h, w, mode, hasBias) in Self.shapes {
            let x = random.normal([2, c, h, w]), weight = random.normal([o, c, 3, 3]), bias = hasBias ? random.normal([o]) : nil
            let g = Conv2dGeometry(input: x.shape, weight: weight.shape, stride: 1, padding: 1, paddingMode: mode)
            let y = Conv2dKernel.winogradForward(input: x, weight: weight, bias: bias, g)
            XCTAssertEqual(y.shape, [2, o, h, w])
            var expected = [Double](repeating: 0, count: y.count)
            for n in 0..<2 {
                for out in 0..<o {
                    for oy in 0..<h {
                        for ox in 0..<w {
                            var total = bias.map { Double($0[flat: out]) } ?? 0
                            for channel in 0..<c {
                                for i in 0..<3 {
                                    let sy = g.source(oy + i - 1, size: h)
                                    if sy < 0 { continue }
                                    for j in 0..<3 {
                                        let sx = g.source(ox + j - 1, size: w)
                                        if sx < 0 { continue }
                                        total += Double(x[flat: ((n * c + channel) * h + sy) * w + sx])
                                            * Double(weight[flat: ((out * c + channel) * 3 + i) * 3 + j])
                                    }
                                }
                            }
                            expected[((n * o + out) * h + oy) * w + ox] = total
                        }
                    }
                }
            }
            let scale = expected.map(abs).max()!
            let worst = zip(y.scalars, expected).map { abs(Double($0) - $1) }.max()!
            XCTAssertLessThan(worst, 2e-6 * scale, "\(c)→\(o) \(h)×\(w) \(mode)")
            Conv2dKernel.winogradEnabled = false
            let im2col = Conv2dKernel.forward(input: x, weight: weight, bias: bias, stride: 1, padding: 1, paddingMode: mode)
            Conv2dKernel.winogradEnabled = true
            let differences = zip(y.scalars, im2col.scalars).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(Double(differences), 2e-6 * scale, "against im2col, \(c)→\(o) \(h)×\(w) \(mode)")
        }
    }

    /// Bands of tile rows are independent work items: one thread or two, an image alone or in a
    /// batch, the same bits (with the workbench's GEMMs, whose sums do not depend on a product's width;
    /// OpenBLAS's edge kernels round a product of other widths differently).
    func testIndependentOfThreadsAndBatch() throws {
        try XCTSkipUnless(BLAS.ownKernel, "independence of the product's width needs the workbench's GEMM (OpenBLAS is selected)")
        let random = RandomGenerator(seed: 42, purpose: "winograd")
        let savedThreads = Parallel.threadCount
        defer { Parallel.threadCount = savedThreads }
        for (c, o, h, w, mode, hasBias) in Self.shapes {
            let x = random.normal([3, c, h, w]), weight = random.normal([o, c, 3, 3]), bias = hasBias ? random.normal([o]) : nil
            func forward(_ input: Tensor, threads: Int) -> [UInt32] {
                Parallel.threadCount = threads
                let g = Conv2dGeometry(input: input.shape, weight: weight.shape, stride: 1, padding: 1, paddingMode: mode)
                return Conv2dKernel.winogradForward(input: input, weight: weight, bias: bias, g).scalars.map(\.bitPattern)
            }
            let label = "\(c)→\(o) \(h)×\(w) \(mode)"
            let batch = forward(x, threads: 1)
            XCTAssertEqual(forward(x, threads: 2), batch, label + ", 2 threads")
            let second = Tensor(shape: [1, c, h, w], scalars: Array(x.scalars[(c * h * w)..<(2 * c * h * w)]))
            XCTAssertEqual(forward(second, threads: 2), Array(batch[(o * h * w)..<(2 * o * h * w)]), label + ", image alone")
        }
    }

    /// Which convolutions take Winograd (`usesWinograd`'s rule); bf16 products and other kernels keep im2col.
    func testRule() throws {
        func geometry(_ c: Int, _ o: Int, _ size: Int, kernel: Int = 3, stride: Int = 1, padding: Int = 1, batch: Int = 1)
            -> Conv2dGeometry {
            Conv2dGeometry(input: [batch, c, size, size], weight: [o, c, kernel, kernel], stride: stride, padding: padding,
                           paddingMode: .reflect)
        }
        XCTAssertTrue(Conv2dKernel.usesWinograd(geometry(16, 32, 64)), "large images")
        XCTAssertFalse(Conv2dKernel.usesWinograd(geometry(8, 32, 64)), "few input channels")
        XCTAssertTrue(Conv2dKernel.usesWinograd(geometry(32, 32, 16, batch: 2)), "16×16 images")
        XCTAssertTrue(Conv2dKernel.usesWinograd(geometry(64, 128, 8, batch: 4)), "enough channels")
        XCTAssertFalse(Conv2dKernel.usesWinograd(geometry(96, 64, 8, batch: 4)), "small images, few channels")
        XCTAssertTrue(Conv2dKernel.usesWinograd(geometry(512, 512, 8, batch: 4)))
        XCTAssertFalse(Conv2dKernel.usesWinograd(geometry(512, 512, 8)), "fewer than 64 tiles")
        XCTAssertTrue(Conv2dKernel.usesWinograd(geometry(32, 1, 32)), "skinny products")
        XCTAssertFalse(Conv2dKernel.usesWinograd(geometry(128, 64, 64, stride: 2)))
        XCTAssertFalse(Conv2dKernel.usesWinograd(geometry(128, 64, 64, kernel: 5, padding: 2)))
        XCTAssertFalse(Conv2dKernel.usesWinograd(geometry(128, 64, 64, padding: 0)))
        Conv2dKernel.winogradEnabled = false
        XCTAssertFalse(Conv2dKernel.usesWinograd(geometry(128, 64, 64)))
        Conv2dKernel.winogradEnabled = true
        try XCTSkipUnless(BLAS.bf16Available, "bf16 needs AVX512_BF16")
        try BLAS.withPrecision(.bf16) { XCTAssertFalse(Conv2dKernel.usesWinograd(geometry(128, 64, 64))) }
    }

    /// float32 input gradients of 64 channels and more whose flipped-weight convolution runs as Winograd
    /// take it (large images; many channels on small ones; zero and reflect padding) and stay within
    /// 2e-6 of the column gradient; 32 channels keep the column gradient.
    func testInputGradientByWinogradConvolution() {
        let random = RandomGenerator(seed: 45, purpose: "winograd")
        let shapes: [(c: Int, o: Int, size: Int, batch: Int, mode: PaddingMode)] = [
            (64, 16, 64, 1, .zeros), (64, 16, 63, 1, .reflect), (64, 128, 8, 4, .reflect), (128, 96, 9, 3, .zeros),
        ]
        for (c, o, size, batch, mode) in shapes {
            let x = random.normal([batch, c, size, size]), weight = random.normal([o, c, 3, 3])
            let g = Conv2dGeometry(input: x.shape, weight: weight.shape, stride: 1, padding: 1, paddingMode: mode)
            let gradOut = random.normal([batch, o, size, size])
            func inputGradient() -> Tensor {
                Conv2dKernel.backward(input: x, weight: weight, gradOutput: gradOut, stride: 1, padding: 1, paddingMode: mode,
                                      needsInputGradient: true, hasBias: false).input!
            }
            let label = "\(c)→\(o) \(size)×\(size) batch \(batch) \(mode)"
            XCTAssertTrue(Conv2dKernel.inputGradientIsConvolution(g), label)
            XCTAssertTrue(Conv2dKernel.usesWinograd(Conv2dKernel.inputGradientGeometry(g)), label)
            let winograd = inputGradient()
            Conv2dKernel.winogradEnabled = false
            XCTAssertFalse(Conv2dKernel.inputGradientIsConvolution(g), label)
            let columns = inputGradient()
            Conv2dKernel.winogradEnabled = true
            let scale = columns.scalars.map { abs($0) }.max()!
            let worst = zip(columns.scalars, winograd.scalars).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(worst, 2e-6 * scale, label)
            XCTAssertGreaterThan(worst, 0, label + ": a different summation")
        }
        XCTAssertFalse(Conv2dKernel.inputGradientIsConvolution(
            Conv2dGeometry(input: [1, 32, 64, 64], weight: [32, 32, 3, 3], stride: 1, padding: 1, paddingMode: .reflect)))
    }

    /// The value padded position q reads (−1: zero), as winograd.c defines it.
    static func source(_ q: Int, _ size: Int, reflect: Bool) -> Int {
        if q >= 0 && q < size { return q }
        if !reflect || q < -1 || q > size { return -1 }
        return q < 0 ? 1 : size - 2
    }

    func testTransformsGiveTheScalarReferenceBits() {
        let random = RandomGenerator(seed: 43, purpose: "winograd")
        for (c, o, h, w, mode, hasBias) in Self.shapes {
            let reflect = mode == .reflect
            let image = random.normal([c, h, w]).scalars
            let tileRows = (h + 1) / 2, columns = (w + 1) / 2
            // A band in the middle (or the whole image when it has one or two tile rows).
            let first = tileRows > 2 ? 1 : 0, rows = tileRows > 2 ? tileRows - 2 : tileRows
            let tiles = rows * columns
            var v = [Float](repeating: .nan, count: 16 * c * tiles)
            image.withUnsafeBufferPointer { x in
                wb_winograd_f2x3_input(x.baseAddress, Int32(c), Int32(h), Int32(w), reflect ? 1 : 0, Int32(first), Int32(rows), &v, tiles)
            }
            var expectedV = [Float](repeating: 0, count: v.count)
            for channel in 0..<c {
                for ty in first..<(first + rows) {
                    for tx in 0..<columns {
                        var d = [[Float]](repeating: [Float](repeating: 0, count: 4), count: 4)
                        for r in 0..<4 {
                            for j in 0..<4 {
                                let sy = Self.source(2 * ty + r - 1, h, reflect: reflect), sx = Self.source(2 * tx + j - 1, w, reflect: reflect)
                                d[r][j] = sy < 0 || sx < 0 ? 0 : image[(channel * h + sy) * w + sx]
                            }
                        }
                        var t = [[Float]](repeating: [Float](repeating: 0, count: 4), count: 4)  // Bᵀ·d
                        for j in 0..<4 {
                            t[0][j] = d[0][j] - d[2][j]; t[1][j] = d[1][j] + d[2][j]
                            t[2][j] = d[2][j] - d[1][j]; t[3][j] = d[1][j] - d[3][j]
                        }
                        let tile = (ty - first) * columns + tx
                        for i in 0..<4 {
                            let row = [t[i][0] - t[i][2], t[i][1] + t[i][2], t[i][2] - t[i][1], t[i][1] - t[i][3]]
                            for j in 0..<4 { expectedV[((4 * i + j) * c + channel) * tiles + tile] = row[j] }
                        }
                    }
                }
            }
            let label = "\(c) channels \(h)×\(w) \(mode)"
            XCTAssertEqual(v.map(\.bitPattern), expectedV.map(\.bitPattern), "input transform, " + label)

            let m = random.normal([16 * o * tiles]).scalars, bias = hasBias ? random.normal([o]).scalars : nil
            var out = [Float](repeating: .nan, count: o * h * w), expectedOut = out
            m.withUnsafeBufferPointer { m in
                func run(_ bias: UnsafePointer<Float>?) {
                    wb_winograd_f2x3_output(m.baseAddress, tiles, Int32(o), Int32(h), Int32(w), Int32(first), Int32(rows), bias, &out)
                }
                if let bias { bias.withUnsafeBufferPointer { run($0.baseAddress) } } else { run(nil) }
            }
            for channel in 0..<o {
                let b = bias?[channel] ?? 0
                for ty in first..<(first + rows) {
                    for tx in 0..<columns {
                        let tile = (ty - first) * columns + tx
                        func element(_ i: Int, _ j: Int) -> Float { m[((4 * i + j) * o + channel) * tiles + tile] }
                        var s = [[Float]](repeating: [Float](repeating: 0, count: 4), count: 2)  // Aᵀ·M
                        for j in 0..<4 {
                            s[0][j] = (element(0, j) + element(1, j)) + element(2, j)
                            s[1][j] = (element(1, j) - element(2, j)) - element(3, j)
                        }
                        for a in 0..<2 {
                            let y = [((s[a][0] + s[a][1]) + s[a][2]) + b, ((s[a][1] - s[a][2]) - s[a][3]) + b]
                            for e in 0..<2 where 2 * ty + a < h && 2 * tx + e < w {
                                expectedOut[(channel * h + 2 * ty + a) * w + 2 * tx + e] = y[e]
                            }
                        }
                    }
                }
            }
            XCTAssertEqual(out.map(\.bitPattern), expectedOut.map(\.bitPattern), "output transform (rows outside the band untouched), " + label)
        }
    }

    /// Ranges of kernels transformed apart (as the threads do) give the whole transform's bytes, and the
    /// flipped transform (an input gradient's weights, read straight from W) those of a flipped copy.
    func testWeightTransformRangesAndFlippedGiveTheSameBits() {
        let random = RandomGenerator(seed: 45, purpose: "winograd")
        for (o, c) in [(5, 7), (16, 16), (33, 18)] {
            let weight = random.normal([o, c, 3, 3])
            var whole = [Float](repeating: .nan, count: 16 * o * c), pieces = whole
            wb_winograd_f2x3_weights(weight.scalars, Int32(o), Int32(c), &whole)
            for (first, end) in [(0, 16), (16, 48), (48, o * c)] where first < o * c {
                wb_winograd_f2x3_weights_range(weight.scalars, Int32(o), Int32(c), Int32(first), Int32(min(end, o * c) - first), 0, &pieces)
            }
            XCTAssertEqual(pieces.map(\.bitPattern), whole.map(\.bitPattern), "ranges \(o)×\(c)")
            var copied = whole, flipped = whole.map { _ in Float.nan }
            wb_winograd_f2x3_weights(Conv2dKernel.flippedTransposed(weight).scalars, Int32(c), Int32(o), &copied)
            for (first, end) in [(0, 32), (32, c * o)] where first < c * o {
                wb_winograd_f2x3_weights_range(weight.scalars, Int32(c), Int32(o), Int32(first), Int32(min(end, c * o) - first), 1, &flipped)
            }
            XCTAssertEqual(flipped.map(\.bitPattern), copied.map(\.bitPattern), "flipped \(o)×\(c)")
        }
    }

    func testWeightTransformGivesTheScalarReferenceBits() {
        let random = RandomGenerator(seed: 44, purpose: "winograd")
        let (o, c) = (5, 7)
        let weights = random.normal([o, c, 3, 3]).scalars
        var u = [Float](repeating: .nan, count: 16 * o * c)
        wb_winograd_f2x3_weights(weights, Int32(o), Int32(c), &u)
        var expected = u
        for oc in 0..<(o * c) {
            let g = Array(weights[(9 * oc)..<(9 * oc + 9)])
            var t = [[Float]](repeating: [0, 0, 0], count: 4)  // G·g
            for j in 0..<3 {
                t[0][j] = g[j]; t[1][j] = 0.5 * ((g[j] + g[3 + j]) + g[6 + j])
                t[2][j] = 0.5 * ((g[j] - g[3 + j]) + g[6 + j]); t[3][j] = g[6 + j]
            }
            for i in 0..<4 {
                let row = [t[i][0], 0.5 * ((t[i][0] + t[i][1]) + t[i][2]), 0.5 * ((t[i][0] - t[i][1]) + t[i][2]), t[i][2]]
                for j in 0..<4 { expected[(4 * i + j) * o * c + oc] = row[j] }
            }
        }
        XCTAssertEqual(u.map(\.bitPattern), expected.map(\.bitPattern))
    }
}
