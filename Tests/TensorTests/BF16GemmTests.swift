import CKernelsEmulated
import Foundation
import Tensor
import XCTest

/// The bf16 GEMM (gemm_bf16.c) against the float32 path: its operands are the float32 operands
/// rounded to bfloat16, and each product is summed in float32 in a fixed order. Every check runs on
/// the kernels compiled against emulated AVX-512 instructions (Tests/CKernelsEmulated), so it runs
/// on every x86-64 CPU, and on the real instructions where the CPU has them.
final class BF16GemmTests: XCTestCase {
    /// The bf16 products to test: both kernels emulated always, the hardware's where it has them
    /// (vdpbf16ps where it has AVX512_BF16, AMX tiles where it also has AMX).
    static var bf16Kernels: [(name: String, gemm: Gemm)] {
        var kernels: [(name: String, gemm: Gemm)] = [("emulated", emu_wb_gemm_bf16), ("emulated AMX", emu_wb_gemm_amx)]
        for kernel in hardwareBF16Kernels {
            kernels.append((kernel.rawValue, { ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc in
                withBF16Kernel(kernel) {
                    BLAS.serialSgemm(transposeA: ta != 0, transposeB: tb != 0, m: Int(m), n: Int(n), k: Int(k), alpha: alpha,
                                     a: a!, lda: Int(lda), b: b!, ldb: Int(ldb), beta: beta, c: c!, ldc: Int(ldc))
                }
            }))
        }
        return kernels
    }

    /// The bf16 kernels this CPU runs.
    static var hardwareBF16Kernels: [BLAS.BF16Kernel] {
        guard BLAS.bf16Available && BLAS.backend == .avx512 else { return [] }
        return BLAS.amxAvailable ? [.avx512bf16, .amx] : [.avx512bf16]
    }

    /// Runs `body` at bf16 precision on `kernel`, then restores the precision and kernel.
    static func withBF16Kernel<T>(_ kernel: BLAS.BF16Kernel, _ body: () throws -> T) rethrows -> T {
        let saved = BLAS.bf16Kernel
        BLAS.bf16Kernel = kernel
        defer { BLAS.bf16Kernel = saved }
        return try! BLAS.withPrecision(.bf16) { try body() }
    }

    static func emulatedRounding(_ values: [Float]) -> [Float] {
        var rounded = [Float](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { x in
            rounded.withUnsafeMutableBufferPointer { y in emu_wb_round_to_bf16(x.baseAddress, y.baseAddress, values.count) }
        }
        return rounded
    }

    func testRoundingIsNearestEven() throws {
        var roundings: [(String, ([Float]) -> [Float])] = [("emulated", Self.emulatedRounding)]
        if BLAS.bf16Available { roundings.append(("AVX512_BF16", BLAS.roundedToBF16)) }
        for (name, roundedToBF16) in roundings { try checkRounding(name, roundedToBF16) }
    }

    func checkRounding(_ name: String, _ roundedToBF16: ([Float]) -> [Float]) throws {
        // Exact ties go to the even bf16; values just past a tie go up; huge values round to infinity.
        var values: [Float] = [1, -1, 0, -0, .infinity, -.infinity, .greatestFiniteMagnitude, 1e-30,
                               Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000), Float(bitPattern: 0x3F80_8001),
                               Float(bitPattern: 0x3F80_7FFF), Float(bitPattern: 0xBF81_8000)]
        let g = RandomGenerator(seed: 11, purpose: "bf16")
        values += g.normal([1000]).scalars.map { $0 * 1000 }
        let rounded = roundedToBF16(values)
        for (x, y) in zip(values, rounded) {
            XCTAssertEqual(y.bitPattern, referenceBF16(x).bitPattern, "\(name): \(x) (0x\(String(x.bitPattern, radix: 16)))")
        }
        XCTAssertEqual(roundedToBF16([Float(bitPattern: 0x3F80_8000)]), [1], name)        // tie, even below
        XCTAssertEqual(roundedToBF16([Float(bitPattern: 0x3F81_8000)]), [Float(bitPattern: 0x3F82_0000)], name)  // tie, even above
        XCTAssertEqual(roundedToBF16([1.5, 3, -2, 0.25]), [1.5, 3, -2, 0.25], name)  // bf16 values stay
        XCTAssertTrue(roundedToBF16([.nan])[0].isNaN, name)
        XCTAssertEqual(roundedToBF16(Array(repeating: 1.0009765625, count: 37)), Array(repeating: 1, count: 37), name)  // partial vectors
    }

    /// Every shape class (edge tiles, odd inner sizes that pad the last pair, several slices, column
    /// blocks, the ≤ 4-row float32 path), all four transposes, alpha and beta (beta = 0 over NaNs):
    /// within the float32 summation bound of the exact product of the rounded operands, and clearly
    /// farther than that from the float32 product of the unrounded ones (so the operands really are bf16).
    func testBF16ProductOfRoundedOperands() throws {
        for (name, gemm) in Self.bf16Kernels { checkGemm(name, gemm, bf16: true) }
    }

    /// The AVX-512 float32 GEMM on emulated instructions, by the same checks: the portable path
    /// covers the code that only AVX-512 machines run.
    func testEmulatedFloat32Products() {
        checkGemm("emulated float32", emu_wb_gemm, bf16: false)
    }

    /// Packed-once weights (a convolution's shared operand) and threaded column blocks give the same
    /// bytes as one serial call: bf16 results do not depend on packing reuse or thread count.
    func testSharedAndThreadedProductsEqualSerialBytes() throws {
        try XCTSkipIf(Self.hardwareBF16Kernels.isEmpty, "needs AVX512_BF16 and the AVX-512 GEMM")
        for kernel in Self.hardwareBF16Kernels { Self.withBF16Kernel(kernel) { checkSharedAndThreaded(kernel) } }
    }

    func checkSharedAndThreaded(_ kernel: BLAS.BF16Kernel) {
        let saved = Parallel.threadCount
        defer { Parallel.threadCount = saved }
        let g = RandomGenerator(seed: 13, purpose: "bf16 gemm")
        for (m, n, k) in [(96, 1000, 700), (64, 300, 27), (3, 500, 64), (45, 333, 1100)] {
            for transposeA in [false, true] {
                let a = g.normal(transposeA ? [k, m] : [m, k]), b = g.normal([k, n])
                let lda = transposeA ? m : k
                var serial = Tensor(zeros: [m, n]), threaded = Tensor(zeros: [m, n]), shared = Tensor(zeros: [m, n])
                var rowBlocks = Tensor(zeros: [m, n])
                Parallel.threadCount = 1
                BLAS.serialSgemm(transposeA: transposeA, m: m, n: n, k: k, a: a.pointer, lda: lda, b: b.pointer, ldb: n,
                                 c: serial.mutablePointer(), ldc: n)
                Parallel.threadCount = 3
                BLAS.sgemm(transposeA: transposeA, m: m, n: n, k: k, a: a.pointer, lda: lda, b: b.pointer, ldb: n,
                           c: threaded.mutablePointer(), ldc: n)
                let packed = BLAS.share(transposeA: transposeA, m: m, k: k, a: a.pointer, lda: lda, slot: Workspace.sharedOperandSlot)
                BLAS.sgemm(shared: packed, n: n, b: b.pointer, ldb: n, c: shared.mutablePointer(), ldc: n, parallel: true)
                // Rows in blocks of 13 (ranks or threads that split C by rows): each row lands elsewhere in a tile.
                for start in stride(from: 0, to: m, by: 13) {
                    let rows = min(13, m - start)
                    BLAS.serialSgemm(transposeA: transposeA, m: rows, n: n, k: k, a: transposeA ? a.pointer + start : a.pointer + start * lda,
                                     lda: lda, b: b.pointer, ldb: n, c: rowBlocks.mutablePointer() + start * n, ldc: n)
                }
                let label = "\(kernel) m=\(m) n=\(n) k=\(k) tA=\(transposeA)"
                XCTAssertEqual(serial.scalars, threaded.scalars, label)
                XCTAssertEqual(serial.scalars, shared.scalars, label)
                // (A last block of at most 4 rows would run the float32 path.)
                if !(m > 13 && (1...4).contains(m % 13)) { XCTAssertEqual(serial.scalars, rowBlocks.scalars, label) }
            }
        }
    }

    /// A shallow product that overwrites a C of more than STREAM_C_MIN elements (1 << 20) writes it
    /// with non-temporal stores (AMX; gemm_driver.c says when): the bytes of the same product in row
    /// blocks too small to stream, and none past column n; with a row stride that breaks the
    /// stores' alignment it takes the cached stores, to the same bytes.
    func testStreamedCEqualsCachedStores() {
        var kernels: [(name: String, gemm: Gemm)] = [("emulated AMX", emu_wb_gemm_amx)]
        kernels += Self.bf16Kernels.filter { $0.name == BLAS.BF16Kernel.amx.rawValue }
        let g = RandomGenerator(seed: 15, purpose: "streamed C")
        let (m, n, k) = (128, 8192, 32)
        let a = g.normal([m, k]), b = g.normal([n, k])  // Bᵀ as a weight gradient reads it
        for (name, gemm) in kernels {
            for ldc in [n, n + 1] {
                var whole = Tensor(repeating: .nan, shape: [m, ldc]), blocks = Tensor(repeating: .nan, shape: [m, ldc])
                gemm(0, 1, Int32(m), Int32(n), Int32(k), 1, a.pointer, Int32(k), b.pointer, Int32(k), 0, whole.mutablePointer(), Int32(ldc))
                for start in stride(from: 0, to: m, by: 32) {
                    gemm(0, 1, 32, Int32(n), Int32(k), 1, a.pointer + start * k, Int32(k), b.pointer, Int32(k), 0,
                         blocks.mutablePointer() + start * ldc, Int32(ldc))
                }
                XCTAssertFalse(whole.scalars.enumerated().contains { $0.offset % ldc < n && $0.element.isNaN }, "\(name) ldc=\(ldc)")
                XCTAssertEqual(whole.scalars.map(\.bitPattern), blocks.scalars.map(\.bitPattern), "\(name) ldc=\(ldc)")
            }
        }
    }

    /// The emulated kernel's packed-once operand gives the bytes of its plain product, and the
    /// emulated AVX-512 float32 GEMM gives the bytes of the real one where the CPU has AVX-512 and
    /// of the AVX2 one (fused multiply-adds in the same order round the same everywhere): the
    /// emulation is faithful where it can be checked, and the two float32 kernels agree to the bit.
    func testEmulatedKernelsAgreeWithThemselvesAndTheHardware() {
        let g = RandomGenerator(seed: 14, purpose: "bf16 gemm")
        for (m, n, k) in [(40, 300, 531), (64, 77, 27), (3, 100, 64)] {
            for transposeA in [false, true] {
                let a = g.normal(transposeA ? [k, m] : [m, k]), b = g.normal([k, n])
                let lda = transposeA ? m : k
                // Both emulated bf16 kernels: plain product, and A packed once then reused.
                let kernels: [(name: String, gemm: Gemm, count: (Int32, Int32) -> Int,
                               pack: (Int32, Int32, Int32, UnsafePointer<Float>?, Int32, UnsafeMutablePointer<Float>?) -> Void,
                               packed: (Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32, UnsafePointer<Float>?, Int32, Float,
                                        UnsafeMutablePointer<Float>?, Int32) -> Void)] = [
                    ("vdpbf16ps", emu_wb_gemm_bf16, emu_wb_gemm_bf16_packed_a_count, emu_wb_gemm_bf16_pack_a, emu_wb_gemm_bf16_packed),
                    ("AMX", emu_wb_gemm_amx, emu_wb_gemm_amx_packed_a_count, emu_wb_gemm_amx_pack_a, emu_wb_gemm_amx_packed),
                ]
                for kernel in kernels {
                    var plain = Tensor(zeros: [m, n]), shared = Tensor(zeros: [m, n])
                    kernel.gemm(transposeA ? 1 : 0, 0, Int32(m), Int32(n), Int32(k), 1, a.pointer, Int32(lda), b.pointer, Int32(n),
                                0, plain.mutablePointer(), Int32(n))
                    var packed = [Float](repeating: .nan, count: kernel.count(Int32(m), Int32(k)))
                    kernel.pack(transposeA ? 1 : 0, Int32(m), Int32(k), a.pointer, Int32(lda), &packed)
                    kernel.packed(Int32(m), Int32(n), Int32(k), 1, packed, 0, b.pointer, Int32(n), 0, shared.mutablePointer(), Int32(n))
                    XCTAssertEqual(plain.scalars, shared.scalars, "\(kernel.name) m=\(m) n=\(n) k=\(k) tA=\(transposeA)")
                }
                // The AVX-512 float32 kernel (emulated) against the real AVX-512 and AVX2 kernels: same bits.
                var emulated = Tensor(zeros: [m, n])
                emu_wb_gemm(transposeA ? 1 : 0, 0, Int32(m), Int32(n), Int32(k), 1, a.pointer, Int32(lda), b.pointer, Int32(n),
                            0, emulated.mutablePointer(), Int32(n))
                let saved = BLAS.backend
                defer { BLAS.backend = saved }
                for backend in [BLAS.Backend.avx512, .avx2] where backend == .avx512 ? BLAS.avx512Available : BLAS.avx2Available {
                    BLAS.backend = backend
                    var real = Tensor(zeros: [m, n])
                    BLAS.serialSgemm(transposeA: transposeA, m: m, n: n, k: k, a: a.pointer, lda: lda, b: b.pointer, ldb: n,
                                     c: real.mutablePointer(), ldc: n)
                    XCTAssertEqual(emulated.scalars, real.scalars, "\(backend) float32 m=\(m) n=\(n) k=\(k) tA=\(transposeA)")
                }
            }
        }
    }

    /// Where bf16 cannot run, asking for it is an error that says why and what to do.
    func testBF16IsAClearErrorWhereUnavailable() throws {
        try XCTSkipIf(BLAS.bf16Available && BLAS.backend == .avx512, "bf16 runs here")
        XCTAssertThrowsError(try BLAS.setPrecision(.bf16)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("bf16") && text.contains("float32"), text)
        }
        XCTAssertEqual(BLAS.precision, .float32)
    }
}
