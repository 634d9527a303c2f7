import Foundation
import Tensor

/// The workbench's version, recorded in every run manifest.
public enum WorkbenchVersion {
    public static let string = "0.1.0"
}

/// The arithmetic of matrix products and convolutions (`train.precision`, `--precision`).
public typealias Precision = BLAS.Precision

/// Process-wide settings.
public enum Runtime {
    /// Sets the precision of every following matrix product and convolution; bf16 where the CPU
    /// cannot run it is an error that names `setting` (where the choice came from) and says why.
    public static func configurePrecision(_ precision: Precision, setting: String) throws {
        do {
            try BLAS.setPrecision(precision)
        } catch let error as BLAS.PrecisionUnavailable {
            throw PrecisionError(description: "\(setting): \(error.description)")
        }
    }

    /// Sets the experiment's `train.precision` and returns the precision that was in force (for the
    /// caller to restore: training and bench leave the process as they found it).
    public static func configureTrainingPrecision(_ experiment: Experiment) throws -> Precision {
        let previous = BLAS.precision
        try configurePrecision(experiment.training.precision, setting: "\(experiment.source.path): train.precision")
        return previous
    }

    /// The matrix-product kernel in use and the precisions this machine can run, for `--version`.
    public static var kernelDescription: String {
        let bf16 = BLAS.bf16Available && BLAS.backend == .avx512
            ? "bf16 available (\(BLAS.bf16Kernel == .amx ? "AMX tiles" : "AVX512_BF16"))"
            : "bf16 not available (needs AVX512_BF16 and the AVX-512 GEMM)"
        return "\(BLAS.instructionPath); float32, \(bf16)"
    }

    /// A precision this machine cannot run.
    public struct PrecisionError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Sets the kernel and OpenBLAS thread count (0: every core, shared evenly by the ranks that
    /// `mpirun` started on this host).
    public static func configureThreads(_ requested: Int) {
        BLAS.setThreadCount(requested > 0 ? requested : automaticThreadCount)
    }

    /// The cores of this machine divided by the data-parallel ranks on it (OMPI_COMM_WORLD_LOCAL_SIZE).
    public static var automaticThreadCount: Int {
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let ranksHere = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap { Int($0) } ?? 1
        return max(1, cores / max(1, ranksHere))
    }
}
