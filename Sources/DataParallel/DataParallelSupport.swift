import CMPI
import Foundation

/// Whether this build can run data-parallel on this machine (for `--version` and the manifest).
public enum DataParallelSupport {
    /// "Open MPI (libmpi found)" or why not.
    public static let description: String = {
        var error = [CChar](repeating: 0, count: 512)
        if wb_mpi_load(&error, error.count) == 0 { return "mpirun -np N: Open MPI found" }
        return "single process only: " + String(cString: error)
    }()
}
