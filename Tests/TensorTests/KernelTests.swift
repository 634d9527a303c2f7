import Foundation
import Tensor
import XCTest

final class KernelTests: XCTestCase {
    func testSgemmAgainstNaiveProduct() {
        let g = RandomGenerator(seed: 1, purpose: "gemm")
        let (m, n, k) = (7, 5, 9)
        let a = g.normal([m, k]), b = g.normal([k, n])
        var c = Tensor(zeros: [m, n])
        BLAS.sgemm(m: m, n: n, k: k, a: a.pointer, lda: k, b: b.pointer, ldb: n, c: c.mutablePointer(), ldc: n)
        for i in 0..<m {
            for j in 0..<n {
                var expected: Float = 0
                for p in 0..<k { expected += a[flat: i * k + p] * b[flat: p * n + j] }
                XCTAssertEqual(c[flat: i * n + j], expected, accuracy: 1e-4)
            }
        }
    }

    /// Every backend against the float64 product, within the float32 summation bound (`checkGemm`).
    func testEveryGemmBackendAgainstFloat64Product() {
        let saved = BLAS.backend
        defer { BLAS.backend = saved }
        var backends: [BLAS.Backend] = [.openblas]
        if BLAS.avx2Available { backends.append(.avx2) }
        if BLAS.avx512Available { backends.append(.avx512) }
        for backend in backends {
            BLAS.backend = backend
            checkGemm("\(backend)", { ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc in
                BLAS.serialSgemm(transposeA: ta != 0, transposeB: tb != 0, m: Int(m), n: Int(n), k: Int(k), alpha: alpha,
                                 a: a!, lda: Int(lda), b: b!, ldb: Int(ldb), beta: beta, c: c!, ldc: Int(ldc))
            }, bf16: false)
        }
    }

    /// The threaded product splits C into blocks but sums each element in the same order: its bytes
    /// equal the single-threaded product's.
    func testThreadedGemmEqualsSerialBytes() throws {
        var backends: [BLAS.Backend] = []
        if BLAS.avx512Available { backends.append(.avx512) }
        if BLAS.avx2Available { backends.append(.avx2) }
        try XCTSkipIf(backends.isEmpty, "OpenBLAS rounds a product split into column blocks differently")
        let (savedThreads, savedBackend) = (Parallel.threadCount, BLAS.backend)
        defer { Parallel.threadCount = savedThreads; BLAS.backend = savedBackend }
        let g = RandomGenerator(seed: 3, purpose: "gemm")
        let (m, n, k) = (96, 1000, 700)
        let a = g.normal([m, k]), b = g.normal([k, n])
        for backend in backends {
            BLAS.backend = backend
            Parallel.threadCount = 1
            var serial = Tensor(zeros: [m, n]), threaded = Tensor(zeros: [m, n])
            BLAS.serialSgemm(m: m, n: n, k: k, a: a.pointer, lda: k, b: b.pointer, ldb: n, c: serial.mutablePointer(), ldc: n)
            Parallel.threadCount = 3
            BLAS.sgemm(m: m, n: n, k: k, a: a.pointer, lda: k, b: b.pointer, ldb: n, c: threaded.mutablePointer(), ldc: n)
            XCTAssertEqual(serial.scalars, threaded.scalars, "\(backend)")
        }
    }

    /// The vectorised sigmoid, SiLU and SiLU backward against float64, over the whole float range
    /// that matters (and past it, where they saturate), with a length that leaves a partial vector.
    func testVectorisedActivationsAgainstFloat64() {
        var values: [Float] = [0, -0, 1e-30, -1e-30, 88, -88, 89, -89, 100, -100, 1e10, -1e10]
        var x: Float = -30
        while x <= 30 { values.append(x); x += 0.0137 }
        let input = Tensor(shape: [values.count], scalars: values)
        let gradient = RandomGenerator(seed: 4, purpose: "g").normal([values.count])
        let sigmoid = Activation.sigmoid(input), silu = Activation.silu(input)
        let siluGrad = Activation.siluBackward(input, gradient)
        XCTAssertNotEqual(values.count % 16, 0)
        let nan = Tensor(shape: [3], scalars: [1, .nan, 2])
        XCTAssertTrue(Activation.sigmoid(nan)[flat: 1].isNaN && Activation.silu(nan)[flat: 1].isNaN, "NaN propagates")
        for (i, v) in values.enumerated() {
            let x = Double(v), g = Double(gradient[flat: i])
            let s = 1 / (1 + Foundation.exp(-x))
            XCTAssertEqual(Double(sigmoid[flat: i]), s, accuracy: 3e-7 * s + 1e-37, "sigmoid(\(v))")
            XCTAssertEqual(Double(silu[flat: i]), x * s, accuracy: 3e-7 * abs(x * s) + 1e-36, "silu(\(v))")
            let exact = g * s * (1 + x * (1 - s))
            XCTAssertEqual(Double(siluGrad[flat: i]), exact, accuracy: 3e-7 * abs(g) * (1 + min(abs(x), 30)), "silu'(\(v))")
        }
    }

    func testReflectPaddingDoesNotRepeatTheEdge() {
        // A 1×1 kernel of weight 1 at offset (0,0) of a 3×3 window reads x[-1] = x[1].
        var w = Tensor(zeros: [1, 1, 3, 3])
        w[flat: 3] = 1 // row 1 (centre row), column 0 (left neighbour)
        let y = Conv2dKernel.forward(input: Tensor(shape: [1, 1, 3, 3], scalars: [10, 20, 30, 10, 20, 30, 10, 20, 30]),
                                     weight: w, bias: nil, stride: 1, padding: 1, paddingMode: .reflect)
        XCTAssertEqual(Array(y.scalars[0..<3]), [20, 10, 20])
    }

    func testStrideTwoOnOddSizesGivesCeil() {
        let y = Conv2dKernel.forward(input: Tensor(zeros: [1, 1, 7, 5]), weight: Tensor(zeros: [1, 1, 3, 3]), bias: nil,
                                     stride: 2, padding: 1, paddingMode: .reflect)
        XCTAssertEqual(y.shape, [1, 1, 4, 3])
    }

    func testReductionsAreIndependentOfThreadCount() {
        let saved = Parallel.threadCount
        defer { Parallel.threadCount = saved }
        let x = RandomGenerator(seed: 5, purpose: "sum").normal([1_000_001])
        Parallel.threadCount = 1
        let one = Reduction.sum(x)
        Parallel.threadCount = 3
        XCTAssertEqual(one, Reduction.sum(x))
    }

    func testCopyOnWrite() {
        let a = Tensor(shape: [2], scalars: [1, 2])
        var b = a
        b[flat: 0] = 5
        XCTAssertEqual(a.scalars, [1, 2])
        XCTAssertEqual(b.scalars, [5, 2])
    }
}

/// The im2col path against a direct loop, on an image wide enough that the columns are built in
/// several row bands (the bounded workspace), for the forward pass and both gradients.
final class BandedConvolutionTests: XCTestCase {
    func testMatchesDirectConvolution() {
        let random = RandomGenerator(seed: 4, purpose: "banded")
        for (stride, mode) in [(1, PaddingMode.reflect), (2, .zeros)] {
            let (n, c, h, w, o) = (2, 64, 6, 4000, 2)
            let x = random.normal([n, c, h, w]), weight = random.normal([o, c, 3, 3], std: 0.1)
            let g = Conv2dGeometry(input: x.shape, weight: weight.shape, stride: stride, padding: 1, paddingMode: mode)
            XCTAssertGreaterThan(2 * g.columnRows * g.outWidth, 1 << 21, "one output row per band")
            let y = Conv2dKernel.forward(input: x, weight: weight, bias: nil, stride: stride, padding: 1, paddingMode: mode)
            let gradOut = random.normal(y.shape)
            let grads = Conv2dKernel.backward(input: x, weight: weight, gradOutput: gradOut, stride: stride, padding: 1,
                                              paddingMode: mode, needsInputGradient: true, hasBias: false)
            var expectedY = [Double](repeating: 0, count: y.count)
            var expectedDX = [Double](repeating: 0, count: x.count), expectedDW = [Double](repeating: 0, count: weight.count)
            func source(_ p: Int, _ size: Int) -> Int {
                if p >= 0 && p < size { return p }
                if mode == .zeros { return -1 }
                return p < 0 ? -p : 2 * size - 2 - p
            }
            // While loops: the tests build without optimisation, where ranges' generic iterators (and
            // map/zip over the 3M results) made the 55 million steps here most of the test's time,
            // in the portable passes too.
            let xs = x.scalars, ws = weight.scalars, gs = gradOut.scalars
            for image in 0..<n {
                for oy in 0..<g.outHeight {
                    let rows = (0..<3).map { source(oy * stride + $0 - 1, h) }
                    for ox in 0..<g.outWidth {
                        let columns = (0..<3).map { source(ox * stride + $0 - 1, w) }
                        for out in 0..<o {
                            let yIndex = ((image * o + out) * g.outHeight + oy) * g.outWidth + ox
                            let gy = Double(gs[yIndex])
                            var total = 0.0, tap = 0
                            while tap < 9 {
                                let (i, j) = (tap / 3, tap % 3)
                                tap += 1
                                if rows[i] < 0 || columns[j] < 0 { continue }
                                var xIndex = (image * c * h + rows[i]) * w + columns[j], wIndex = (out * c * 3 + i) * 3 + j
                                var channel = 0
                                while channel < c {
                                    let (xv, wv) = (Double(xs[xIndex]), Double(ws[wIndex]))
                                    total += xv * wv
                                    expectedDX[xIndex] += gy * wv
                                    expectedDW[wIndex] += gy * xv
                                    xIndex += h * w
                                    wIndex += 9
                                    channel += 1
                                }
                            }
                            expectedY[yIndex] = total
                        }
                    }
                }
            }
            func close(_ actual: Tensor, _ expected: [Double], _ what: String) {
                let got = actual.scalars
                var scale = 0.0, worst = 0.0, index = 0
                while index < min(got.count, expected.count) {
                    scale = max(scale, abs(expected[index]))
                    worst = max(worst, abs(Double(got[index]) - expected[index]))
                    index += 1
                }
                XCTAssertEqual(actual.count, expected.count, "\(what), stride \(stride)")
                XCTAssertLessThan(worst, 1e-5 * scale, "\(what), stride \(stride)")
            }
            close(y, expectedY, "output")
            close(grads.input!, expectedDX, "input gradient")
            close(grads.weight, expectedDW, "weight gradient")
        }
    }
}

extension KernelTests {
    /// `AttentionKernel.batchedMatmul` against the float64 product of each batch item: with fewer items
    /// than threads (each product split over the threads) and with more (one whole product per
    /// thread), all four transposes, on one and on two threads with the same bytes.
    func testBatchedMatmulBothSchedules() {
        let random = RandomGenerator(seed: 71, purpose: "batched matmul")
        let saved = Parallel.threadCount
        defer { Parallel.threadCount = saved }
        for batch in [1, 5] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let (m, n, k) = (70, 66, 40)
                let a = random.normal(ta ? [batch, k, m] : [batch, m, k]), b = random.normal(tb ? [batch, n, k] : [batch, k, n])
                var results: [Tensor] = []
                for threads in [1, 2] {
                    Parallel.threadCount = threads
                    results.append(AttentionKernel.batchedMatmul(a, b, transposeA: ta, transposeB: tb, alpha: 0.5))
                }
                XCTAssertEqual(results[0].shape, [batch, m, n])
                XCTAssertEqual(results[0].scalars, results[1].scalars, "batch \(batch) \((ta, tb)): bytes on one and two threads")
                let (av, bv, c) = (a.scalars, b.scalars, results[1].scalars)
                for item in 0..<batch {
                    for i in 0..<m {
                        for j in 0..<n {
                            var sum = 0.0
                            for p in 0..<k {
                                let x = av[item * m * k + (ta ? p * m + i : i * k + p)]
                                let y = bv[item * k * n + (tb ? j * k + p : p * n + j)]
                                sum += Double(x) * Double(y)
                            }
                            let got = Double(c[(item * m + i) * n + j])
                            XCTAssertEqual(got, 0.5 * sum, accuracy: 1e-4 * (1 + abs(sum)), "batch \(batch) \((ta, tb)) [\(item), \(i), \(j)]")
                        }
                    }
                }
            }
        }
    }
}
