import XCTest
@testable import Tensor

/// im2col is a pure copy, so its columns must equal, element for element, the columns read one by
/// one through the padding rule: on every path (the long shifted copies of stride 1, the per-row
/// copies, strided rows), both padding modes, odd, even and tiny images, and bands that start and
/// end inside the padding.
final class Im2colTests: XCTestCase {
    func testColumnsEqualTheDefinition() {
        let random = RandomGenerator(seed: 9, purpose: "im2col")
        let cases: [(c: Int, h: Int, w: Int, kh: Int, kw: Int, stride: Int, padding: Int)] = [
            (3, 32, 32, 3, 3, 1, 1), (2, 7, 5, 3, 3, 1, 1), (2, 2, 2, 3, 3, 1, 1), (1, 1, 1, 3, 3, 1, 1), (2, 9, 8, 3, 3, 2, 1),
            (2, 6, 6, 5, 5, 1, 2), (2, 5, 9, 3, 3, 1, 0), (2, 8, 3, 1, 1, 1, 0), (1, 4, 4, 4, 4, 1, 1), (2, 12, 12, 3, 3, 1, 2),
            (2, 5, 6, 1, 3, 1, 1), (2, 6, 5, 3, 1, 1, 1), (1, 3, 7, 2, 3, 1, 1),
        ]
        for (c, h, w, kh, kw, stride, padding) in cases {
            for mode in [PaddingMode.zeros, .reflect] where mode == .zeros || padding < min(h, w) {
                let x = random.normal([1, c, h, w])
                let g = Conv2dGeometry(input: x.shape, weight: [1, c, kh, kw], stride: stride, padding: padding, paddingMode: mode)
                var bands = Conv2dKernel.bands(g).map { $0 }
                bands += (0..<g.outHeight).map { $0..<($0 + 1) }  // every single row, the first and last in the padding
                if g.outHeight > 2 { bands.append(1..<(g.outHeight - 1)) }
                for band in bands {
                    let width = band.count * g.outWidth
                    var columns = [Float](repeating: .nan, count: g.columnRows * width)
                    columns.withUnsafeMutableBufferPointer {
                        Conv2dKernel.im2col(x.pointer, $0.baseAddress!, g, rows: g.rowSources(), cols: g.columnSources(),
                                            band: band, parallel: false)
                    }
                    var mismatches = 0
                    for channel in 0..<c {
                        for i in 0..<kh {
                            for j in 0..<kw {
                                for y in band {
                                    for ox in 0..<g.outWidth {
                                        let sy = g.source(y * stride + i - padding, size: h), sx = g.source(ox * stride + j - padding, size: w)
                                        let expected = sy < 0 || sx < 0 ? 0 : x[flat: (channel * h + sy) * w + sx]
                                        let row = (channel * kh + i) * kw + j
                                        let actual = columns[row * width + (y - band.lowerBound) * g.outWidth + ox]
                                        if actual.bitPattern != expected.bitPattern { mismatches += 1 }
                                    }
                                }
                            }
                        }
                    }
                    XCTAssertEqual(mismatches, 0, "\(c)×\(h)×\(w), kernel \(kh)×\(kw), stride \(stride), padding \(padding) \(mode), band \(band)")
                }
            }
        }
    }
}
