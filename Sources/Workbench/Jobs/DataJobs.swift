import Foundation
import Segmentation

/// Data-set commands.
public enum DataJobs {
    public static func synthesizeVOC(root: URL, count: Int, seed: UInt64) throws {
        try SyntheticVOC.generate(root: root, count: count, seed: seed)
    }
}
