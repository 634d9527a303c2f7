import CKernelsEmulated
import Foundation
import Tensor
import XCTest

/// A GEMM entry point with the C signature (trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc).
typealias Gemm = (Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32, UnsafePointer<Float>?, Int32,
                  Float, UnsafeMutablePointer<Float>?, Int32) -> Void

/// Round to nearest even in plain integer arithmetic, independent of the hardware's conversion;
/// denormals flush to signed zero, as VCVTNEPS2BF16 does.
func referenceBF16(_ x: Float) -> Float {
    if x.isNaN { return x }
    let bits = x.bitPattern
    if bits & 0x7F80_0000 == 0 { return Float(bitPattern: bits & 0x8000_0000) }
    let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
    return Float(bitPattern: rounded & 0xFFFF_0000)
}

extension XCTestCase {
    /// A GEMM against the exact (float64) product of its operands (rounded to bf16 first with `bf16`):
    /// edge tiles, odd inner sizes, several slices, column blocks, products of at most 4 rows, all
    /// four transposes, alpha and beta (beta = 0 over NaNs, which must not be read), padded leading
    /// dimensions; within the float32 summation bound, and C past column n untouched.
    func checkGemm(_ name: String, _ gemm: Gemm, bf16: Bool, file: StaticString = #filePath, line: UInt = #line) {
        let shapes = [(1, 1, 1), (7, 5, 9), (8, 32, 256), (13, 45, 301), (33, 70, 513), (3, 3100, 5), (70, 17, 3), (9, 40, 1)]
        let g = RandomGenerator(seed: 12, purpose: "bf16 gemm")
        var farFromFloat32 = 0
        for (m, n, k) in shapes {
            for (transposeA, transposeB) in [(false, false), (true, false), (false, true), (true, true)] {
                for (alpha, beta) in [(Float(1), Float(0)), (0.5, 0.25)] {
                    let lda = (transposeA ? m : k) + 3, ldb = (transposeB ? k : n) + 1, ldc = n + 2
                    let a = g.normal([transposeA ? k : m, lda]), b = g.normal([transposeB ? n : k, ldb])
                    var c = beta == 0 ? Tensor(repeating: .nan, shape: [m, ldc]) : g.normal([m, ldc])
                    let before = c
                    gemm(transposeA ? 1 : 0, transposeB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, a.pointer, Int32(lda),
                         b.pointer, Int32(ldb), beta, c.mutablePointer(), Int32(ldc))
                    let bf16Operands = bf16 && m > 4  // at most 4 rows: the float32 streaming kernel
                    var worst = 0.0
                    for i in 0..<m {
                        for j in 0..<ldc {
                            let got = Double(c[flat: i * ldc + j])
                            guard j < n else {
                                XCTAssertTrue(got.isNaN ? before[flat: i * ldc + j].isNaN : got == Double(before[flat: i * ldc + j]),
                                              "\(name): C past column n was written", file: file, line: line)
                                continue
                            }
                            var dot = 0.0, magnitude = 0.0, unrounded = 0.0
                            for p in 0..<k {
                                let x = transposeA ? a[flat: p * lda + i] : a[flat: i * lda + p]
                                let y = transposeB ? b[flat: j * ldb + p] : b[flat: p * ldb + j]
                                let (rx, ry) = bf16Operands ? (referenceBF16(x), referenceBF16(y)) : (x, y)
                                dot += Double(rx) * Double(ry)
                                magnitude += abs(Double(rx) * Double(ry))
                                unrounded += Double(x) * Double(y)
                            }
                            var expected = Double(alpha) * dot
                            if beta != 0 { expected += Double(beta) * Double(before[flat: i * ldc + j]) }
                            // float32 sums: each of the k products (unless fused) and additions rounds by at most
                            // 2⁻²⁴ of the running magnitude, in whatever order the kernel sums.
                            // (beta = 0: C held NaNs, which must not enter the bound either.)
                            let previous = beta == 0 ? 0 : abs(Double(beta)) * abs(Double(before[flat: i * ldc + j]))
                            let bound = Double(2 * k + 2) * 0x1p-24 * (Double(abs(alpha)) * magnitude + previous) + 1e-30
                            let ratio = abs(got - expected) / bound
                            worst = ratio.isNaN ? .infinity : max(worst, ratio)
                            if bf16Operands && k >= 9 && abs(got - Double(alpha) * unrounded) > 1e-4 * (magnitude + 1) { farFromFloat32 += 1 }
                        }
                    }
                    XCTAssertLessThanOrEqual(worst, 1, "\(name) m=\(m) n=\(n) k=\(k) tA=\(transposeA) tB=\(transposeB) α=\(alpha) β=\(beta)", file: file, line: line)
                }
            }
        }
        if bf16 { XCTAssertGreaterThan(farFromFloat32, 1000, "\(name): bf16 products should differ from float32 ones by bf16's rounding", file: file, line: line) }
    }

}
