import CBLAS

/// Matrix products through OpenBLAS. Row-major throughout.
public enum BLAS {
    /// C = alpha·op(A)·op(B) + beta·C with op(A) m×k, op(B) k×n, C m×n.
    @inline(__always)
    public static func sgemm(transposeA: Bool = false, transposeB: Bool = false,
                             m: Int, n: Int, k: Int, alpha: Float = 1,
                             a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        cblas_sgemm(WBBlasRowMajor, transposeA ? WBBlasTrans : WBBlasNoTrans, transposeB ? WBBlasTrans : WBBlasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Sets OpenBLAS's thread count (and the workbench's own, so both agree).
    public static func setThreadCount(_ count: Int) {
        openblas_set_num_threads(Int32(count))
        Parallel.threadCount = count
    }

    public static var threadCount: Int { Int(openblas_get_num_threads()) }

    /// OpenBLAS's build description, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64".
    public static var configuration: String { String(cString: openblas_get_config()) }

    /// The core type OpenBLAS selected at run time, e.g. "Haswell".
    public static var coreName: String { String(cString: openblas_get_corename()) }
}
