import CImageCodecs
import Tensor
import Foundation

private func takeImage(_ raw: wb_image) -> Image {
    let count = Int(raw.width) * Int(raw.height) * Int(raw.channels)
    let pixels = Array(UnsafeBufferPointer(start: raw.pixels, count: count))
    wb_free(raw.pixels)
    return Image(width: Int(raw.width), height: Int(raw.height), channels: Int(raw.channels), pixels: pixels)
}

private func takeBuffer(_ buffer: wb_buffer) -> Data {
    let data = Data(bytes: buffer.data, count: buffer.size)
    wb_free(buffer.data)
    return data
}

private func readFile(_ url: URL) throws -> Data {
    var isFolder: ObjCBool = false
    if FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder), isFolder.boolValue {
        throw ImageIOError(path: url.path, message: "is a folder; give image files (for example \(url.path)/*.jpg)")
    }
    do {
        return try Data(contentsOf: url)
    } catch {
        throw ImageIOError(path: url.path, message: FileManager.default.fileExists(atPath: url.path)
            ? "cannot read the file (\(error.localizedDescription))" : "no such file")
    }
}

/// PNG through libpng.
public enum PNG {
    /// Decodes to 8-bit gray/GA/RGB/RGBA (palettes expanded to RGB).
    public static func decode(_ data: Data, path: String) throws -> Image {
        try decode(data, path: path, mode: Int32(WB_PNG_COLOURS)).image
    }

    /// Decodes a label map: the stored palette indices (or gray values), never colours.
    public static func decodeIndices(_ data: Data, path: String) throws -> Image {
        try decode(data, path: path, mode: Int32(WB_PNG_INDICES)).image
    }

    static func decode(_ data: Data, path: String, mode: Int32) throws -> (image: Image, wasPalette: Bool) {
        var raw = wb_image()
        var message = [CChar](repeating: 0, count: 512)
        let status = data.withUnsafeBytes { bytes in
            wb_png_decode(bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count, mode, &raw, &message, message.count)
        }
        guard status == 0 else {
            throw ImageIOError(path: path, message: "corrupt or unsupported PNG: \(String(cString: message))")
        }
        return (takeImage(raw), raw.was_palette != 0)
    }

    public static func read(_ url: URL) throws -> Image { try decode(readFile(url), path: url.path) }

    /// Whether PNG data stores a palette (colour type 3), as VOC label maps do.
    public static func isPalette(_ data: Data, path: String = "<png>") throws -> Bool {
        try decode(data, path: path, mode: Int32(WB_PNG_INDICES)).wasPalette
    }

    public static func readIndices(_ url: URL) throws -> Image { try decodeIndices(readFile(url), path: url.path) }

    /// Encodes an image; with `palette` (RGB triplets), a one-channel image becomes a palette PNG.
    public static func encode(_ image: Image, palette: [UInt8]? = nil) throws -> Data {
        var buffer = wb_buffer()
        var message = [CChar](repeating: 0, count: 512)
        let status = image.pixels.withUnsafeBufferPointer { pixels in
            if let palette {
                return palette.withUnsafeBufferPointer {
                    wb_png_encode(pixels.baseAddress, Int32(image.width), Int32(image.height), Int32(image.channels),
                                  $0.baseAddress, Int32(palette.count / 3), &buffer, &message, message.count)
                }
            }
            return wb_png_encode(pixels.baseAddress, Int32(image.width), Int32(image.height), Int32(image.channels),
                                 nil, 0, &buffer, &message, message.count)
        }
        guard status == 0 else { throw ImageIOError(path: "<png>", message: String(cString: message)) }
        return takeBuffer(buffer)
    }

    /// Writes atomically.
    public static func write(_ image: Image, to url: URL, palette: [UInt8]? = nil) throws {
        try AtomicFile.write(encode(image, palette: palette), to: url)
    }
}

/// JPEG through libjpeg(-turbo).
public enum JPEG {
    /// Decodes to gray or RGB (CMYK and YCCK converted to RGB). With `applyOrientation`, the
    /// EXIF orientation is applied so the image appears upright; without it, pixels come in
    /// stored order, as PIL's `Image.open` gives them (and as VOC's label maps are aligned).
    public static func decode(_ data: Data, path: String, applyOrientation: Bool = true) throws -> Image {
        var raw = wb_image()
        var message = [CChar](repeating: 0, count: 512)
        let status = data.withUnsafeBytes { bytes in
            wb_jpeg_decode(bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count, &raw, &message, message.count)
        }
        guard status == 0 else {
            throw ImageIOError(path: path, message: "corrupt or unsupported JPEG: \(String(cString: message))")
        }
        let orientation = Int(raw.orientation)
        let image = takeImage(raw)
        return applyOrientation ? image.applyingEXIFOrientation(orientation) : image
    }

    public static func read(_ url: URL, applyOrientation: Bool = true) throws -> Image {
        try decode(readFile(url), path: url.path, applyOrientation: applyOrientation)
    }

    public static func encode(_ image: Image, quality: Int = 90) throws -> Data {
        var buffer = wb_buffer()
        var message = [CChar](repeating: 0, count: 512)
        let status = image.pixels.withUnsafeBufferPointer {
            wb_jpeg_encode($0.baseAddress, Int32(image.width), Int32(image.height), Int32(image.channels), Int32(quality),
                           &buffer, &message, message.count)
        }
        guard status == 0 else { throw ImageIOError(path: "<jpeg>", message: String(cString: message)) }
        return takeBuffer(buffer)
    }

    public static func write(_ image: Image, to url: URL, quality: Int = 90) throws {
        try AtomicFile.write(encode(image, quality: quality), to: url)
    }
}

/// Reads PNG or JPEG, chosen by the file's signature (not its name).
public enum ImageFile {
    public static func read(_ url: URL, applyOrientation: Bool = true) throws -> Image {
        let data = try readFile(url)
        if data.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return try PNG.decode(data, path: url.path) }
        if data.starts(with: [0xFF, 0xD8]) { return try JPEG.decode(data, path: url.path, applyOrientation: applyOrientation) }
        throw ImageIOError(path: url.path, message: "neither a PNG nor a JPEG file (unknown signature)")
    }
}
