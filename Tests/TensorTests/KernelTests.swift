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

    func testReflectPaddingDoesNotRepeatTheEdge() {
        // A 1×1 kernel of weight 1 at offset (0,0) of a 3×3 window reads x[-1] = x[1].
        let x = Tensor(shape: [1, 1, 1, 3], scalars: [10, 20, 30]).reshaped([1, 1, 1, 3])
        var w = Tensor(zeros: [1, 1, 3, 3])
        w[flat: 3] = 1 // row 1 (centre row), column 0 (left neighbour)
        let y = Conv2dKernel.forward(input: Tensor(shape: [1, 1, 3, 3], scalars: [10, 20, 30, 10, 20, 30, 10, 20, 30]),
                                     weight: w, bias: nil, stride: 1, padding: 1, paddingMode: .reflect)
        XCTAssertEqual(Array(y.scalars[0..<3]), [20, 10, 20])
        _ = x
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
