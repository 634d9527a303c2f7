import Foundation

/// Resampling filters, with Pillow's definitions so that resized images match what the seed's
/// `Image.resize` produced.
public enum ResampleFilter: String, Codable, Sendable {
    case nearest, bilinear, bicubic

    var support: Double {
        switch self {
        case .nearest: return 0.5
        case .bilinear: return 1
        case .bicubic: return 2
        }
    }

    func weight(_ x: Double) -> Double {
        let x = abs(x)
        switch self {
        case .nearest: return x < 0.5 ? 1 : 0
        case .bilinear: return x < 1 ? 1 - x : 0
        case .bicubic:
            let a = -0.5
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        }
    }
}

extension Image {
    /// Resizes to `width`×`height`. Bilinear and bicubic are Pillow's separable convolution
    /// (antialiased when shrinking, fixed-point 22-bit weights, horizontal pass first);
    /// nearest reads source pixel floor((x + 0.5)·scale), as Pillow does (use it for label maps).
    public func resized(width newWidth: Int, height newHeight: Int, filter: ResampleFilter) -> Image {
        if newWidth == width && newHeight == height { return self }
        if filter == .nearest {
            var out = Image(width: newWidth, height: newHeight, channels: channels)
            let sx = Double(width) / Double(newWidth), sy = Double(height) / Double(newHeight)
            let columns = (0..<newWidth).map { min(width - 1, Int((Double($0) + 0.5) * sx)) }
            for y in 0..<newHeight {
                let source = min(height - 1, Int((Double(y) + 0.5) * sy))
                for x in 0..<newWidth {
                    for c in 0..<channels { out[x, y, c] = self[columns[x], source, c] }
                }
            }
            return out
        }
        let horizontal = resampledHorizontally(to: newWidth, filter: filter)
        return horizontal.transposed().resampledHorizontally(to: newHeight, filter: filter).transposed()
    }

    private func transposed() -> Image {
        var out = Image(width: height, height: width, channels: channels)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels { out[y, x, c] = self[x, y, c] }
            }
        }
        return out
    }

    private func resampledHorizontally(to newWidth: Int, filter: ResampleFilter) -> Image {
        if newWidth == width { return self }
        let precision = 22
        let scale = Double(width) / Double(newWidth)
        let filterScale = max(scale, 1)
        let support = filter.support * filterScale
        var bounds: [(start: Int, weights: [Int32])] = []
        for x in 0..<newWidth {
            let centre = (Double(x) + 0.5) * scale
            let start = max(Int(centre - support + 0.5), 0)
            let end = min(Int(centre + support + 0.5), width)
            var weights = (start..<end).map { filter.weight((Double($0) - centre + 0.5) / filterScale) }
            let total = weights.reduce(0, +)
            if total != 0 { weights = weights.map { $0 / total } }
            let fixed = weights.map { Int32(($0 * Double(1 << precision) + ($0 < 0 ? -0.5 : 0.5)).rounded(.towardZero)) }
            bounds.append((start, fixed))
        }
        var out = Image(width: newWidth, height: height, channels: channels)
        for y in 0..<height {
            for x in 0..<newWidth {
                let (start, weights) = bounds[x]
                for c in 0..<channels {
                    var sum = Int64(1 << (precision - 1))
                    for (k, w) in weights.enumerated() { sum += Int64(self[start + k, y, c]) * Int64(w) }
                    out[x, y, c] = UInt8(clamping: sum >> precision)
                }
            }
        }
        return out
    }

    /// The seed's `keep_same_size`: paste at the top-left of a black square of side max(w, h),
    /// then resize to size×size. `fill` is the pad value (label maps pad with void, 255).
    public func keepSameSize(_ size: Int, filter: ResampleFilter, fill: UInt8 = 0) -> Image {
        let side = max(width, height)
        var square = Image(width: side, height: side, channels: channels, fill: fill)
        square.paste(self)
        return square.resized(width: size, height: size, filter: filter)
    }
}
