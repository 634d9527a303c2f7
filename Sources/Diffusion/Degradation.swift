import Foundation
import ImageIO
import Tensor

/// Whether the noise predictor is conditioned on an image (restoration) beside its class, if any.
public enum DiffusionCondition: String, CaseIterable, Sendable {
    case none
    /// The degraded image y concatenated to x_t at the input (seed 003).
    case image
}

/// The degradations an experiment can name (`restoration.degradation`).
public enum DegradationKind: String, CaseIterable, Sendable {
    case noise, downsample, blur, jpeg, inpaint
}

/// What image-conditioned restoration learns to undo (seed 003): the degraded image y is made from
/// the clean one on the fly, with randomness drawn from a generator keyed by the image.
public enum Degradation: Equatable, Sendable {
    /// Additive Gaussian noise with standard deviation σ (in units of the full 0…1 range), rounded to 8 bits.
    case noise(sigma: Double)
    /// Down-sampling by `scale` (Pillow's antialiased bicubic), then bicubic up-sampling to the
    /// original size (super-resolution; the network sees the bicubic image, as SR3 does).
    case downsample(scale: Int)
    /// Gaussian blur with σ in pixels (window ±3.5σ, reflected edges).
    case blur(sigma: Double)
    /// Re-encoding through libjpeg at `quality` (1…100).
    case jpeg(quality: Int)
    /// One random square hole (side `minSize`…`maxSize` pixels) filled with mid-gray.
    case inpaint(minSize: Int, maxSize: Int)

    /// The degraded image (the network's condition), the same size as `image`.
    public func apply(_ image: Image, generator: RandomGenerator) throws -> Image {
        switch self {
        case .noise(let sigma):
            let draws = generator.normal([image.pixels.count])
            var out = image
            for i in out.pixels.indices {
                out.pixels[i] = UInt8(max(0, min(255, (Double(image.pixels[i]) + sigma * 255 * Double(draws[flat: i])).rounded())))
            }
            return out
        case .downsample(let scale):
            let small = image.resized(width: max(1, image.width / scale), height: max(1, image.height / scale), filter: .bicubic)
            return small.resized(width: image.width, height: image.height, filter: .bicubic)
        case .blur(let sigma):
            return Degradation.gaussianBlur(image, sigma: sigma)
        case .jpeg(let quality):
            return try JPEG.decode(JPEG.encode(image, quality: quality), path: "<re-encoded JPEG>")
        case .inpaint(let minSize, let maxSize):
            let side = min(image.width, image.height, minSize + generator.nextInt(below: maxSize - minSize + 1))
            let x = generator.nextInt(below: image.width - side + 1), y = generator.nextInt(below: image.height - side + 1)
            var out = image
            for row in y..<(y + side) {
                for column in x..<(x + side) {
                    for c in 0..<image.channels { out.pixels[(row * image.width + column) * image.channels + c] = 128 }
                }
            }
            return out
        }
    }

    /// The degraded image as a person would look at it: for super-resolution the low-resolution
    /// image blown up with nearest neighbours (the condition itself is the bicubic baseline).
    public func shown(_ image: Image, condition: Image) -> Image {
        guard case .downsample(let scale) = self else { return condition }
        return image.resized(width: max(1, image.width / scale), height: max(1, image.height / scale), filter: .bicubic)
            .resized(width: image.width, height: image.height, filter: .nearest)
    }

    /// Whether the condition is the bicubic baseline of the restoration (super-resolution).
    public var hasBicubicBaseline: Bool {
        if case .downsample = self { return true }
        return false
    }

    static func gaussianBlur(_ image: Image, sigma: Double) -> Image {
        let radius = max(1, Int(3.5 * sigma + 0.5))
        var kernel = (-radius...radius).map { exp(-0.5 * Double($0 * $0) / (sigma * sigma)) }
        let sum = kernel.reduce(0, +)
        kernel = kernel.map { $0 / sum }
        let (w, h, c) = (image.width, image.height, image.channels)
        func reflect(_ i: Int, _ n: Int) -> Int {
            let period = 2 * n
            var j = i % period
            if j < 0 { j += period }
            return j < n ? j : period - 1 - j
        }
        var rows = [Double](repeating: 0, count: image.pixels.count)
        for r in 0..<h {
            for x in 0..<w {
                for channel in 0..<c {
                    var s = 0.0
                    for k in -radius...radius { s += kernel[k + radius] * Double(image.pixels[(r * w + reflect(x + k, w)) * c + channel]) }
                    rows[(r * w + x) * c + channel] = s
                }
            }
        }
        var out = image
        for r in 0..<h {
            for x in 0..<w {
                for channel in 0..<c {
                    var s = 0.0
                    for k in -radius...radius { s += kernel[k + radius] * rows[(reflect(r + k, h) * w + x) * c + channel] }
                    out.pixels[(r * w + x) * c + channel] = UInt8(max(0, min(255, s.rounded())))
                }
            }
        }
        return out
    }
}

extension Image {
    /// Writes the image as CHW floats in [-1, 1] (the diffusion head's range) at `target`.
    public func writeSigned(into target: UnsafeMutablePointer<Float>) {
        let plane = width * height
        for i in 0..<plane {
            for c in 0..<channels { target[c * plane + i] = Float(pixels[i * channels + c]) / 127.5 - 1 }
        }
    }
}
