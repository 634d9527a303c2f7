import Foundation

/// Full-reference image quality, as scikit-image computes it: PSNR, and SSIM with an 11×11
/// Gaussian window (σ 1.5, truncated at 3.5σ) and population covariances — Wang et al. 2004, i.e.
/// `structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`.
/// Images are planar [C, H, W] values with the given data range (255 for 8-bit).
public enum ImageQuality {
    /// PSNR and SSIM of an 8-bit image against a reference of the same size.
    public static func compare(_ image: Image, _ reference: Image) -> (psnr: Double, ssim: Double) {
        func planar(_ image: Image) -> [Double] {
            let plane = image.width * image.height
            var values = [Double](repeating: 0, count: image.pixels.count)
            for i in 0..<plane {
                for c in 0..<image.channels { values[c * plane + i] = Double(image.pixels[i * image.channels + c]) }
            }
            return values
        }
        let a = planar(image), b = planar(reference)
        return (psnr(a, b), ssim(a, b, channels: image.channels, height: image.height, width: image.width))
    }

    /// 10·log10(range² / MSE); infinite for identical images.
    public static func psnr(_ a: [Double], _ b: [Double], dataRange: Double = 255) -> Double {
        precondition(a.count == b.count && !a.isEmpty, "PSNR of images of different sizes")
        let mse = zip(a, b).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / Double(a.count)
        return 10 * log10(dataRange * dataRange / mse)
    }

    /// Mean SSIM over channels, each the mean of the SSIM map away from a 5-pixel border; NaN for
    /// images smaller than the 11×11 window (where scikit-image raises an error).
    public static func ssim(_ a: [Double], _ b: [Double], channels: Int, height: Int, width: Int, dataRange: Double = 255) -> Double {
        precondition(a.count == b.count && a.count == channels * height * width, "SSIM of images of different sizes")
        let sigma = 1.5, radius = Int(3.5 * sigma + 0.5)
        var kernel = (-radius...radius).map { exp(-0.5 * Double($0 * $0) / (sigma * sigma)) }
        let sum = kernel.reduce(0, +)
        kernel = kernel.map { $0 / sum }
        let c1 = (0.01 * dataRange) * (0.01 * dataRange), c2 = (0.03 * dataRange) * (0.03 * dataRange)
        let plane = height * width
        var total = 0.0
        for channel in 0..<channels {
            let x = Array(a[(channel * plane)..<((channel + 1) * plane)]), y = Array(b[(channel * plane)..<((channel + 1) * plane)])
            let filter = { (v: [Double]) in gaussian(v, height: height, width: width, kernel: kernel, radius: radius) }
            let ux = filter(x), uy = filter(y)
            let uxx = filter(zip(x, x).map(*)), uyy = filter(zip(y, y).map(*)), uxy = filter(zip(x, y).map(*))
            var mean = 0.0, count = 0
            for row in radius..<max(radius, height - radius) {
                for column in radius..<max(radius, width - radius) {
                    let i = row * width + column
                    let vx = uxx[i] - ux[i] * ux[i], vy = uyy[i] - uy[i] * uy[i], vxy = uxy[i] - ux[i] * uy[i]
                    let s = (2 * ux[i] * uy[i] + c1) * (2 * vxy + c2) / ((ux[i] * ux[i] + uy[i] * uy[i] + c1) * (vx + vy + c2))
                    mean += s
                    count += 1
                }
            }
            total += count > 0 ? mean / Double(count) : .nan
        }
        return total / Double(channels)
    }

    /// scipy.ndimage.gaussian_filter (separable; mode "reflect": d c b a | a b c d | d c b a).
    static func gaussian(_ v: [Double], height: Int, width: Int, kernel: [Double], radius: Int) -> [Double] {
        func reflect(_ i: Int, _ n: Int) -> Int {
            let period = 2 * n
            var j = i % period
            if j < 0 { j += period }
            return j < n ? j : period - 1 - j
        }
        var rows = [Double](repeating: 0, count: v.count), out = [Double](repeating: 0, count: v.count)
        for r in 0..<height {
            for c in 0..<width {
                var s = 0.0
                for k in -radius...radius { s += kernel[k + radius] * v[r * width + reflect(c + k, width)] }
                rows[r * width + c] = s
            }
        }
        for r in 0..<height {
            for c in 0..<width {
                var s = 0.0
                for k in -radius...radius { s += kernel[k + radius] * rows[reflect(r + k, height) * width + c] }
                out[r * width + c] = s
            }
        }
        return out
    }
}
