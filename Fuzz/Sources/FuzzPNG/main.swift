import Foundation
import ImageIO

/// PNG decoding (as images and as label maps): any bytes give an image or an error, never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPNG(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let data = Data(bytes: start, count: count)
    if let image = try? PNG.decode(data, path: "fuzz.png") {
        precondition(image.pixels.count == image.width * image.height * image.channels, "decoded size disagrees with its shape")
    }
    _ = try? PNG.decodeIndices(data, path: "fuzz.png")
    return 0
}
