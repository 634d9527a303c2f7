import Foundation
import Tensor

/// The workbench's version, recorded in every run manifest.
public enum WorkbenchVersion {
    public static let string = "0.1.0"
}

/// Process-wide settings.
public enum Runtime {
    /// Sets the kernel and OpenBLAS thread count (0: every core).
    public static func configureThreads(_ requested: Int) {
        let count = requested > 0 ? requested : max(1, ProcessInfo.processInfo.activeProcessorCount)
        BLAS.setThreadCount(count)
    }
}
