import Foundation
import Segmentation

/// How hard a synthetic VOC set is (classes, object sizes, class by shape).
public typealias SyntheticVOCOptions = SyntheticVOC.Options

/// Data-set commands.
public enum DataJobs {
    public static func synthesizeVOC(root: URL, count: Int, seed: UInt64, options: SyntheticVOC.Options = .init()) throws {
        try SyntheticVOC.generate(root: root, count: count, seed: seed, options: options)
    }
}
