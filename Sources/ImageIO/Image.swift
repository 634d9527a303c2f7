import Foundation
import Tensor

/// An 8-bit image: `channels` interleaved samples per pixel, rows top to bottom.
/// Channels: 1 (gray, or class indices), 2 (gray+alpha), 3 (RGB), 4 (RGBA).
public struct Image: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * channels, "image of \(width)×\(height)×\(channels) needs \(width * height * channels) samples, got \(pixels.count)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    public init(width: Int, height: Int, channels: Int, fill: UInt8 = 0) {
        self.init(width: width, height: height, channels: channels, pixels: [UInt8](repeating: fill, count: width * height * channels))
    }

    @inline(__always)
    public subscript(x: Int, y: Int, channel: Int) -> UInt8 {
        get { pixels[(y * width + x) * channels + channel] }
        set { pixels[(y * width + x) * channels + channel] = newValue }
    }

    /// The image as RGB (gray is replicated, alpha dropped).
    public func rgb() -> Image {
        if channels == 3 { return self }
        var out = Image(width: width, height: height, channels: 3)
        for i in 0..<(width * height) {
            for c in 0..<3 {
                out.pixels[i * 3 + c] = channels >= 3 ? pixels[i * channels + c] : pixels[i * channels]
            }
        }
        return out
    }

    /// The image as a single gray channel (ITU-R 601-2 luma, as Pillow's convert("L")).
    public func gray() -> Image {
        if channels == 1 { return self }
        if channels == 2 {
            return Image(width: width, height: height, channels: 1, pixels: stride(from: 0, to: pixels.count, by: 2).map { pixels[$0] })
        }
        var out = Image(width: width, height: height, channels: 1)
        for i in 0..<(width * height) {
            let r = Int(pixels[i * channels]), g = Int(pixels[i * channels + 1]), b = Int(pixels[i * channels + 2])
            out.pixels[i] = UInt8((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16)
        }
        return out
    }

    /// Pastes `other` with its top-left corner at (x, y); parts outside are clipped.
    public mutating func paste(_ other: Image, x: Int = 0, y: Int = 0) {
        precondition(other.channels == channels, "paste needs equal channel counts")
        for row in 0..<other.height where row + y >= 0 && row + y < height {
            for column in 0..<other.width where column + x >= 0 && column + x < width {
                for c in 0..<channels { self[column + x, row + y, c] = other[column, row, c] }
            }
        }
    }

    /// Horizontal mirror.
    public func flippedHorizontally() -> Image {
        var out = self
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels { out[x, y, c] = self[width - 1 - x, y, c] }
            }
        }
        return out
    }

    /// A crop of `width`×`height` starting at (x, y), which must lie inside the image.
    public func cropped(x: Int, y: Int, width w: Int, height h: Int) -> Image {
        precondition(x >= 0 && y >= 0 && x + w <= width && y + h <= height, "crop outside the image")
        var out = Image(width: w, height: h, channels: channels)
        for row in 0..<h {
            let source = ((y + row) * width + x) * channels
            out.pixels.replaceSubrange((row * w * channels)..<((row + 1) * w * channels),
                                       with: pixels[source..<(source + w * channels)])
        }
        return out
    }

    /// Applies an EXIF orientation (1…8) so that the pixels appear upright.
    public func applyingEXIFOrientation(_ orientation: Int) -> Image {
        if orientation <= 1 || orientation > 8 { return self }
        let transposed = orientation >= 5
        var out = Image(width: transposed ? height : width, height: transposed ? width : height, channels: channels)
        for y in 0..<out.height {
            for x in 0..<out.width {
                let (sx, sy): (Int, Int)
                switch orientation {
                case 2: (sx, sy) = (width - 1 - x, y)
                case 3: (sx, sy) = (width - 1 - x, height - 1 - y)
                case 4: (sx, sy) = (x, height - 1 - y)
                case 5: (sx, sy) = (y, x)
                case 6: (sx, sy) = (y, height - 1 - x)
                case 7: (sx, sy) = (width - 1 - y, height - 1 - x)
                default: (sx, sy) = (width - 1 - y, x)
                }
                for c in 0..<channels { out[x, y, c] = self[sx, sy, c] }
            }
        }
        return out
    }

    /// CHW floats in [0, 1] (torchvision's ToTensor).
    public func tensor() -> Tensor {
        var t = Tensor(uninitializedShape: [channels, height, width])
        writeFloats(into: t.mutablePointer())
        return t
    }

    /// Writes CHW floats in [0, 1] at `target`.
    public func writeFloats(into target: UnsafeMutablePointer<Float>) {
        let plane = width * height
        for i in 0..<plane {
            for c in 0..<channels { target[c * plane + i] = Float(pixels[i * channels + c]) / 255 }
        }
    }

    /// An image from CHW floats in [0, 1] (clamped, rounded), like `(x*255).astype(uint8)` but rounded.
    public init(chw tensor: Tensor) {
        precondition(tensor.rank == 3, "expected a CHW tensor, got \(tensor.shape)")
        let (c, h, w) = (tensor.shape[0], tensor.shape[1], tensor.shape[2])
        self.init(width: w, height: h, channels: c)
        for i in 0..<(w * h) {
            for channel in 0..<c {
                let v = tensor[flat: channel * w * h + i]
                pixels[i * c + channel] = UInt8(max(0, min(255, (v * 255).rounded())))
            }
        }
    }
}

/// An image file that cannot be read or written; names the file and the reason.
public struct ImageIOError: Error, CustomStringConvertible {
    public let path: String
    public let message: String
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }
    public var description: String { "\(path): \(message)" }
}

extension Image {
    /// Tiles equally sized images in rows of `columns`, separated by `padding` pixels of `background`.
    public static func grid(_ images: [Image], columns: Int, padding: Int = 2, background: UInt8 = 0) -> Image {
        precondition(!images.isEmpty, "a grid needs at least one image")
        let first = images[0]
        let rows = (images.count + columns - 1) / columns
        var out = Image(width: columns * first.width + (columns + 1) * padding,
                        height: rows * first.height + (rows + 1) * padding, channels: first.channels, fill: background)
        for (index, image) in images.enumerated() {
            let column = index % columns, row = index / columns
            out.paste(image.channels == first.channels ? image : (first.channels == 3 ? image.rgb() : image.gray()),
                      x: padding + column * (first.width + padding), y: padding + row * (first.height + padding))
        }
        return out
    }
}
