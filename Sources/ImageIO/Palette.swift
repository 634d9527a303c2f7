/// Colour palettes for label maps.
public enum Palette {
    /// The PASCAL VOC colormap (256 RGB triplets): class k's colour spreads the bits of k over
    /// R, G and B from the most significant bit down; 255 ("void") is (224, 224, 192).
    public static let voc: [UInt8] = {
        var table = [UInt8](repeating: 0, count: 256 * 3)
        for index in 0..<256 {
            var r = 0, g = 0, b = 0, c = index
            for bit in 0..<8 {
                r |= ((c >> 0) & 1) << (7 - bit)
                g |= ((c >> 1) & 1) << (7 - bit)
                b |= ((c >> 2) & 1) << (7 - bit)
                c >>= 3
            }
            table[3 * index] = UInt8(r)
            table[3 * index + 1] = UInt8(g)
            table[3 * index + 2] = UInt8(b)
        }
        return table
    }()

    /// The RGB colour of class `index` in the VOC palette.
    public static func vocColour(_ index: Int) -> (UInt8, UInt8, UInt8) {
        (voc[3 * index], voc[3 * index + 1], voc[3 * index + 2])
    }

    /// Colours a one-channel index image with `palette`.
    public static func colourize(_ indices: Image, palette: [UInt8] = voc) -> Image {
        precondition(indices.channels == 1, "colourize needs a one-channel index image")
        var out = Image(width: indices.width, height: indices.height, channels: 3)
        for i in 0..<(indices.width * indices.height) {
            let k = Int(indices.pixels[i])
            out.pixels[3 * i] = palette[3 * k]
            out.pixels[3 * i + 1] = palette[3 * k + 1]
            out.pixels[3 * i + 2] = palette[3 * k + 2]
        }
        return out
    }

    /// Alpha-blends a colourized mask over an RGB image (index 0, background, stays transparent).
    public static func overlay(_ image: Image, indices: Image, alpha: Float = 0.5, palette: [UInt8] = voc) -> Image {
        let base = image.rgb()
        precondition(base.width == indices.width && base.height == indices.height, "overlay needs equal sizes")
        var out = base
        for i in 0..<(base.width * base.height) {
            let k = Int(indices.pixels[i])
            if k == 0 { continue }
            for c in 0..<3 {
                let blended = (1 - alpha) * Float(base.pixels[3 * i + c]) + alpha * Float(palette[3 * k + c])
                out.pixels[3 * i + c] = UInt8(max(0, min(255, blended.rounded())))
            }
        }
        return out
    }
}
