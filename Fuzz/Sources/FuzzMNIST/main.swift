import ImageIO
import Diffusion
import Foundation

/// The MNIST IDX reader (raw or gzip), with and without data.limit, then every image read.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMNIST(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let data = Data(bytes: start, count: count)
    for limit in [nil, 3] as [Int?] {
        guard let source = try? MNISTSource(path: "fuzz-idx3-ubyte", imageSize: 32, limit: limit, read: {
            try maybeGunzip(data, path: "fuzz-idx3-ubyte", prefix: $0)
        }) else { continue }
        var pixels = [Float](repeating: 0, count: 32 * 32)
        for index in 0..<min(source.count, 4) { try? pixels.withUnsafeMutableBufferPointer { try source.write(index, into: $0.baseAddress!) } }
    }
    return 0
}
