import CKernels
import Foundation

/// Matrix products, row-major throughout: the workbench's AVX-512 kernel or OpenBLAS (see `Backend`).
///
/// Both backends run single-threaded; the workbench splits large products into column (or row)
/// blocks on its own threads. Two thread pools on two cores fight (OpenBLAS's idle threads spin
/// and yield while ours work), which costs more than it gains; one pool does not. Each output
/// element is computed by one call over the full inner dimension, so results never depend on
/// scheduling; with the AVX-512 kernel they do not depend on the thread count either (each dot
/// product is summed in the same order however C is split), while OpenBLAS's edge kernels can
/// round a split product differently.
public enum BLAS {
    /// Products below this many multiply-adds run on the calling thread.
    static let parallelThreshold = 1 << 18

    /// C = alpha·op(A)·op(B) + beta·C with op(A) m×k, op(B) k×n, C m×n.
    public static func sgemm(transposeA: Bool = false, transposeB: Bool = false,
                             m: Int, n: Int, k: Int, alpha: Float = 1,
                             a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        let threads = Parallel.threadCount
        if threads <= 1 || m * n * k < parallelThreshold {
            serialSgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                        a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        if n >= m {
            // Column blocks of C: B's columns (or rows of Bᵀ) and C's columns.
            let blocks = min(threads, max(1, n / 16))
            Parallel.forEach(blocks) { block in
                let start = n * block / blocks, end = n * (block + 1) / blocks
                guard start < end else { return }
                let bBlock = transposeB ? b + start * ldb : b + start
                serialSgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: end - start, k: k, alpha: alpha,
                            a: a, lda: lda, b: bBlock, ldb: ldb, beta: beta, c: c + start, ldc: ldc)
            }
        } else {
            let blocks = min(threads, max(1, m / 16))
            Parallel.forEach(blocks) { block in
                let start = m * block / blocks, end = m * (block + 1) / blocks
                guard start < end else { return }
                let aBlock = transposeA ? a + start : a + start * lda
                serialSgemm(transposeA: transposeA, transposeB: transposeB, m: end - start, n: n, k: k, alpha: alpha,
                            a: aBlock, lda: lda, b: b, ldb: ldb, beta: beta, c: c + start * ldc, ldc: ldc)
            }
        }
    }

    /// Which implementation runs a product.
    public enum Backend: String, Sendable, CaseIterable {
        /// The workbench's own AVX-512 kernel (Sources/CKernels/gemm_avx512.c).
        case avx512
        /// The workbench's own AVX2 + FMA kernel for CPUs without AVX-512 (gemm_avx2.c): the same
        /// panels and summation order, so the same bits as `avx512`.
        case avx2
        /// OpenBLAS's cblas_sgemm.
        case openblas
    }

    /// Whether this CPU can run the AVX-512 kernel.
    public static let avx512Available = wb_avx512_available() != 0

    /// Whether this CPU can run the AVX2 kernel (and WORKBENCH_AVX2=0 is not set).
    public static let avx2Available = wb_avx2_available() != 0

    /// Whether `backend` is one of the workbench's own kernels (which sum every element of C in
    /// the same order however C is split over threads).
    public static var ownKernel: Bool { backend != .openblas }

    /// The backend products use: the workbench's AVX-512 kernel where the CPU has it, else its AVX2
    /// kernel, else OpenBLAS; WORKBENCH_GEMM=avx512|avx2|openblas chooses (among those the CPU can
    /// run). On the AMD Zen 4 machines, OpenBLAS 0.3.21 is pinned to its AVX2 kernels.
    nonisolated(unsafe) public static var backend: Backend = {
        // Without AVX-512 the AVX2 kernel is the default although OpenBLAS's Zen sgemm ran faster
        // on an AMD Zen 3 (README, Performance): OpenBLAS rounds a product differently when it is
        // split over threads or ranks, which breaks the promise that neither changes a result.
        let automatic: Backend = avx512Available ? .avx512 : avx2Available ? .avx2 : .openblas
        guard let name = ProcessInfo.processInfo.environment["WORKBENCH_GEMM"], let choice = Backend(rawValue: name) else {
            return automatic
        }
        switch choice {
        case .avx512: return avx512Available ? .avx512 : automatic
        case .avx2: return avx2Available ? .avx2 : .openblas
        case .openblas: return .openblas
        }
    }()

    /// The arithmetic of matrix products (and so of convolutions and linear layers).
    public enum Precision: String, Sendable, CaseIterable, Codable {
        /// float32 throughout: the default, bit-identical to every earlier version.
        case float32
        /// Operands rounded to bfloat16 (nearest even) and products summed in float32 (by AMX tiles
        /// where the CPU has them, else by vdpbf16ps; see `BF16Kernel`): mixed precision as
        /// PyTorch's bf16 autocast runs it. Everything outside the products
        /// (weights, optimiser state, normalisations, losses, activations) stays float32.
        case bf16
    }

    /// Why a precision cannot run on this machine.
    public struct PrecisionUnavailable: Error, CustomStringConvertible {
        public let description: String
    }

    /// Whether this CPU has AVX512_BF16 (and the AVX-512 kernels are on).
    public static let bf16Available = wb_avx512_bf16_available() != 0

    /// Which instructions run bf16 products.
    public enum BF16Kernel: String, Sendable, CaseIterable {
        /// TDPBF16PS on AMX tiles (Intel Sapphire Rapids onwards; gemm_amx.c).
        case amx
        /// vdpbf16ps on AVX-512 registers (gemm_bf16.c).
        case avx512bf16
    }

    /// Whether this CPU has AMX tiles with bf16, Linux grants them, and WORKBENCH_AMX=0 is not set.
    public static let amxAvailable = wb_amx_available() != 0

    /// The kernel bf16 products run on: AMX where available (several times vdpbf16ps's rate on
    /// Intel's cores), else vdpbf16ps. The two sum a product's pairs in different orders, so their
    /// results differ in the last bits; each is reproducible on its own, and the manifest names it.
    /// (`.amx` where AMX is not available runs vdpbf16ps.)
    nonisolated(unsafe) public static var bf16Kernel: BF16Kernel = amxAvailable ? .amx : .avx512bf16

    /// The precision products run at; set by `setPrecision` (float32 until then).
    nonisolated(unsafe) public private(set) static var precision: Precision = .float32

    /// Selects the precision of every following product; bf16 needs the workbench's AVX-512 GEMM on
    /// a CPU with AVX512_BF16, and anything else is an error that says why.
    public static func setPrecision(_ requested: Precision) throws {
        if requested == .bf16 {
            if !bf16Available {
                let reason = ProcessInfo.processInfo.environment["WORKBENCH_AVX512"] == "0"
                    ? "WORKBENCH_AVX512=0 turns the AVX-512 kernels off"
                    : "this CPU has no AVX512_BF16 instructions (vdpbf16ps; Intel Cooper Lake/Sapphire Rapids and AMD Zen 4 onwards have them)"
                throw PrecisionUnavailable(description: "bf16 precision is not available here: \(reason); use precision float32")
            }
            if backend != .avx512 {
                throw PrecisionUnavailable(description: "bf16 precision runs on the workbench's AVX-512 GEMM, but WORKBENCH_GEMM=\(backend.rawValue) selects another; unset WORKBENCH_GEMM or use precision float32")
            }
        }
        precision = requested
    }

    /// Runs `body` at `requested` precision and restores the previous one.
    public static func withPrecision<T>(_ requested: Precision, _ body: () throws -> T) throws -> T {
        let previous = precision
        try setPrecision(requested)
        defer { precision = previous }
        return try body()
    }

    /// `values` rounded to the nearest bfloat16 (ties to even), as the bf16 products round their
    /// operands; needs `bf16Available`.
    public static func roundedToBF16(_ values: [Float]) -> [Float] {
        precondition(bf16Available, "roundedToBF16 needs AVX512_BF16")
        var rounded = [Float](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { x in
            rounded.withUnsafeMutableBufferPointer { y in wb_round_to_bf16(x.baseAddress, y.baseAddress, values.count) }
        }
        return rounded
    }

    /// The kernel that runs a product: the backend's, at the current precision.
    enum Kernel: Equatable {
        case float32AVX512, float32AVX2, bf16AVX512, bf16AMX, openBLAS

        /// A number for the kernel in the keys of prepared weights.
        var code: Int {
            switch self {
            case .float32AVX512: 0
            case .float32AVX2: 1
            case .bf16AVX512: 2
            case .bf16AMX: 3
            case .openBLAS: 4
            }
        }
    }

    static var kernel: Kernel {
        switch (backend, precision) {
        case (.openblas, _): return .openBLAS
        case (.avx2, _): return .float32AVX2
        case (.avx512, .float32): return .float32AVX512
        case (.avx512, .bf16): return bf16Kernel == .amx && amxAvailable ? .bf16AMX : .bf16AVX512
        }
    }

    /// The instructions products run on, for manifests and benchmark reports.
    public static var instructionPath: String {
        switch kernel {
        case .openBLAS: return "OpenBLAS \(coreName) sgemm"
        case .float32AVX512: return "workbench AVX-512 float32 GEMM (vfmadd231ps)"
        case .bf16AVX512: return "workbench AVX-512 bf16 GEMM (vdpbf16ps, float32 sums)"
        case .bf16AMX: return "workbench AMX bf16 GEMM (tdpbf16ps tiles, float32 sums)"
        case .float32AVX2: return "workbench AVX2 float32 GEMM (vfmadd231ps ymm)"
        }
    }

    /// One product on the calling thread, by the current backend and precision.
    @inline(__always)
    public static func serialSgemm(transposeA: Bool = false, transposeB: Bool = false,
                                   m: Int, n: Int, k: Int, alpha: Float = 1,
                                   a: UnsafePointer<Float>, lda: Int,
                                   b: UnsafePointer<Float>, ldb: Int,
                                   beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        let (ta, tb): (Int32, Int32) = (transposeA ? 1 : 0, transposeB ? 1 : 0)
        switch kernel {
        case .bf16AMX:
            wb_gemm_amx(ta, tb, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        case .bf16AVX512:
            wb_gemm_bf16(ta, tb, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        case .float32AVX2:
            wb_gemm_avx2(ta, tb, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        case .float32AVX512:
            wb_gemm(ta, tb, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        case .openBLAS:
            openBLASSgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                          a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        }
    }

    /// op(A), m×k, prepared once for several products with different B: a convolution's weights
    /// across the images and bands of one call. The AVX-512 backend packs it into its panel layout
    /// (in a workspace slot), so that each product only packs its B.
    public struct SharedOperand {
        public let transposed: Bool, rows: Int, depth: Int
        /// op(A) as it is (nil where only the packing is kept); read when there is no packing.
        let source: UnsafePointer<Float>?, lda: Int
        let packed: UnsafeMutablePointer<Float>?
        /// The kernel the packing was made for.
        let kernel: Kernel
    }

    /// Prepares op(A) for `sgemm(shared:…)`; `slot` is the workspace slot that holds the packing.
    public static func share(transposeA: Bool, m: Int, k: Int, a: UnsafePointer<Float>, lda: Int, slot: Int) -> SharedOperand {
        let count = packedCount(m: m, k: k)
        guard count > 0 else { return shared(transposeA: transposeA, m: m, k: k, a: a, lda: lda, packed: nil) }
        let buffer = Workspace.shared.buffer(slot, count: count)
        pack(transposeA: transposeA, m: m, k: k, a: a, lda: lda, into: buffer)
        return shared(transposeA: transposeA, m: m, k: k, a: a, lda: lda, packed: buffer)
    }

    /// Prepares op(weight) (m×k, rows of `k` floats) for `sgemm(shared:…)`, keeping the packing
    /// between calls while the weight does not change (`PreparedWeights`); else as `share(…slot:)`.
    public static func share(weight: Tensor, transposeA: Bool, m: Int, k: Int, slot: Int) -> SharedOperand {
        let a = weight.pointer, count = packedCount(m: m, k: k)
        guard count > 0 else { return shared(transposeA: transposeA, m: m, k: k, a: a, lda: k, packed: nil) }
        let form = [0, kernel.code, transposeA ? 1 : 0, m, k]
        let packed = PreparedWeights.shared.form(of: weight, form, count: count, slot: slot) { buffer in
            pack(transposeA: transposeA, m: m, k: k, a: a, lda: k, into: buffer)
        }
        return shared(transposeA: transposeA, m: m, k: k, a: a, lda: k, packed: packed)
    }

    /// Floats that the current kernel's packing of an m×k op(A) takes (0: its products read A as it is).
    static func packedCount(m: Int, k: Int) -> Int {
        guard m > 0 && k > 0 else { return 0 }
        let (m32, k32) = (Int32(m), Int32(k))
        switch kernel {
        case .float32AVX2: return wb_gemm_avx2_packed_a_count(m32, k32)
        case .float32AVX512: return wb_gemm_packed_a_count(m32, k32)
        case .bf16AVX512: return wb_gemm_bf16_packed_a_count(m32, k32)
        case .bf16AMX: return wb_gemm_amx_packed_a_count(m32, k32)
        case .openBLAS: return 0
        }
    }

    /// Packs op(A) into `buffer` (`packedCount(m:k:)` floats) for the current kernel.
    static func pack(transposeA: Bool, m: Int, k: Int, a: UnsafePointer<Float>, lda: Int, into buffer: UnsafeMutablePointer<Float>) {
        let (m32, k32, trans, lda32) = (Int32(m), Int32(k), Int32(transposeA ? 1 : 0), Int32(lda))
        switch kernel {
        case .float32AVX2: wb_gemm_avx2_pack_a(trans, m32, k32, a, lda32, buffer)
        case .float32AVX512: wb_gemm_pack_a(trans, m32, k32, a, lda32, buffer)
        case .bf16AVX512: wb_gemm_bf16_pack_a(trans, m32, k32, a, lda32, buffer)
        case .bf16AMX: wb_gemm_amx_pack_a(trans, m32, k32, a, lda32, buffer)
        case .openBLAS: break
        }
    }

    /// op(A) with its packing for the current kernel already in `packed` (nil: read from `a` as it is).
    static func shared(transposeA: Bool, m: Int, k: Int, a: UnsafePointer<Float>?, lda: Int,
                       packed: UnsafeMutablePointer<Float>?) -> SharedOperand {
        precondition(a != nil || packed != nil, "a shared operand needs its matrix or its packing")
        return SharedOperand(transposed: transposeA, rows: m, depth: k, source: a, lda: lda, packed: packed, kernel: kernel)
    }

    /// C = op(A)·op(B) + beta·C with a shared op(A); `parallel` splits C's columns across threads.
    public static func sgemm(shared a: SharedOperand, transposeB: Bool = false, n: Int,
                             b: UnsafePointer<Float>, ldb: Int, beta: Float = 0,
                             c: UnsafeMutablePointer<Float>, ldc: Int, parallel: Bool) {
        let (m, k) = (a.rows, a.depth)
        if m == 0 || n == 0 { return }
        func product(_ columns: Range<Int>) {
            let bBlock = transposeB ? b + columns.lowerBound * ldb : b + columns.lowerBound
            if let packed = a.packed {
                let product = switch a.kernel {
                case .float32AVX2: wb_gemm_avx2_packed
                case .bf16AVX512: wb_gemm_bf16_packed
                case .bf16AMX: wb_gemm_amx_packed
                case .float32AVX512, .openBLAS: wb_gemm_packed
                }
                product(Int32(m), Int32(columns.count), Int32(k), 1, packed, transposeB ? 1 : 0, bBlock, Int32(ldb),
                        beta, c + columns.lowerBound, Int32(ldc))
            } else {
                serialSgemm(transposeA: a.transposed, transposeB: transposeB, m: m, n: columns.count, k: k,
                            a: a.source!, lda: a.lda, b: bBlock, ldb: ldb, beta: beta, c: c + columns.lowerBound, ldc: ldc)
            }
        }
        let threads = Parallel.threadCount
        guard parallel, threads > 1, m * n * k >= parallelThreshold else { return product(0..<n) }
        let blocks = min(threads, max(1, n / 32))
        Parallel.forEach(blocks) { block in
            let start = n * block / blocks, end = n * (block + 1) / blocks
            if start < end { product(start..<end) }
        }
    }

    /// Whether products with `a` can read a convolution's columns from its image (`sgemm(shared:columns:…)`)
    /// instead of from a written-out im2col matrix: the AVX-512 kernels (float32, vdpbf16ps, AMX),
    /// with more than 4 rows (fewer run the skinny float32 path).
    public static func readsColumnsInPlace(_ a: SharedOperand) -> Bool {
        a.packed != nil && [.float32AVX512, .bf16AVX512, .bf16AMX].contains(a.kernel) && a.rows > 4
    }

    /// C = op(A)·B with B columns [0, n) of one image's im2col matrix, read from the image (see
    /// `wb_convolution_columns`): the bytes of `sgemm(shared:…)` on the written-out matrix. Needs
    /// `readsColumnsInPlace(a)`; `parallel` splits C's columns across threads.
    public static func sgemm(shared a: SharedOperand, columns: UnsafePointer<wb_convolution_columns>, n: Int,
                             c: UnsafeMutablePointer<Float>, ldc: Int, parallel: Bool) {
        precondition(readsColumnsInPlace(a), "a product over convolution columns needs an AVX-512 kernel and packed weights")
        let (m, k) = (a.rows, a.depth)
        if n == 0 { return }
        let product = switch a.kernel {
        case .bf16AMX: wb_gemm_amx_packed_columns
        case .bf16AVX512: wb_gemm_bf16_packed_columns
        default: wb_gemm_packed_columns
        }
        func run(_ block: Range<Int>) {
            product(Int32(m), Int32(block.count), Int32(k), a.packed, columns, Int32(block.lowerBound), c + block.lowerBound, Int32(ldc))
        }
        let threads = Parallel.threadCount
        guard parallel, threads > 1, m * n * k >= parallelThreshold else { return run(0..<n) }
        // Blocks of whole 32-column panels (the panels' read positions are prepared per panel).
        let panels = (n + 31) / 32, blocks = min(threads, panels)
        Parallel.forEach(blocks) { block in
            let start = 32 * (panels * block / blocks), end = min(n, 32 * (panels * (block + 1) / blocks))
            if start < end { run(start..<end) }
        }
    }

    /// One cblas_sgemm call, on as many threads as OpenBLAS is set to (one, outside `bench`).
    @inline(__always)
    public static func openBLASSgemm(transposeA: Bool = false, transposeB: Bool = false,
                                     m: Int, n: Int, k: Int, alpha: Float = 1,
                                     a: UnsafePointer<Float>, lda: Int,
                                     b: UnsafePointer<Float>, ldb: Int,
                                     beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        cblas_sgemm(WBBlasRowMajor, transposeA ? WBBlasTrans : WBBlasNoTrans, transposeB ? WBBlasTrans : WBBlasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Sets the workbench's thread count (OpenBLAS itself stays at one thread, see above).
    public static func setThreadCount(_ count: Int) {
        openblas_set_num_threads(1)
        Parallel.threadCount = max(1, count)
    }

    /// Lets OpenBLAS use its own threads (for measuring raw sgemm, as a reference).
    public static func setOpenBLASThreads(_ count: Int) { openblas_set_num_threads(Int32(count)) }

    public static var threadCount: Int { Parallel.threadCount }

    /// OpenBLAS's build description, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64".
    public static var configuration: String { String(cString: openblas_get_config()) }

    /// The core type OpenBLAS selected at run time, e.g. "Haswell".
    public static var coreName: String { String(cString: openblas_get_corename()) }
}
