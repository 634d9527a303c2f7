import Foundation
import ImageIO

/// JPEG decoding (with EXIF orientation): any bytes give an image or an error, never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJPEG(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    if let image = try? JPEG.decode(Data(bytes: start, count: count), path: "fuzz.jpg") {
        precondition(image.pixels.count == image.width * image.height * image.channels, "decoded size disagrees with its shape")
    }
    return 0
}
