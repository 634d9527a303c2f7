import XCTest
@testable import Tensor

/// im2col and col2im against their definitions, bit for bit: on every path (the long shifted copies
/// and additions of stride 1, the per-row ones, strided rows), both padding modes, odd, even, tiny
/// images and rectangular kernels, and bands that start and end inside the padding.
final class Im2colTests: XCTestCase {
    static let cases: [(c: Int, h: Int, w: Int, kh: Int, kw: Int, stride: Int, padding: Int)] = [
        (3, 32, 32, 3, 3, 1, 1), (2, 7, 5, 3, 3, 1, 1), (2, 2, 2, 3, 3, 1, 1), (1, 1, 1, 3, 3, 1, 1), (2, 9, 8, 3, 3, 2, 1),
        (2, 6, 6, 5, 5, 1, 2), (2, 5, 9, 3, 3, 1, 0), (2, 8, 3, 1, 1, 1, 0), (1, 4, 4, 4, 4, 1, 1), (2, 12, 12, 3, 3, 1, 2),
        (2, 5, 6, 1, 3, 1, 1), (2, 6, 5, 3, 1, 1, 1), (1, 3, 7, 2, 3, 1, 1),
    ]

    func testColumnsEqualTheDefinition() {
        let random = RandomGenerator(seed: 9, purpose: "im2col")
        for (c, h, w, kh, kw, stride, padding) in Self.cases {
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

    /// col2im adds every column gradient into the pixel it came from, each pixel receiving its
    /// additions in the order of a row-by-row pass (left edge columns, interior, right edge
    /// columns; rows in order): the result must have the bits of that pass, signed zeros included.
    func testColumnGradientsAddUpAsRowByRow() {
        let random = RandomGenerator(seed: 10, purpose: "col2im")
        for (c, h, w, kh, kw, stride, padding) in Self.cases {
            for mode in [PaddingMode.zeros, .reflect] where mode == .zeros || padding < min(h, w) {
                let g = Conv2dGeometry(input: [1, c, h, w], weight: [1, c, kh, kw], stride: stride, padding: padding, paddingMode: mode)
                var bands = Conv2dKernel.bands(g).map { $0 }
                bands += (0..<g.outHeight).map { $0..<($0 + 1) }
                if g.outHeight > 2 { bands.append(1..<(g.outHeight - 1)) }
                for band in bands {
                    let width = band.count * g.outWidth
                    var columns = random.normal([g.columnRows * width]).scalars
                    for index in Swift.stride(from: 0, to: columns.count, by: 7) { columns[index] = index % 2 == 0 ? 0 : -0.0 }
                    var start = random.normal([c * h * w]).scalars
                    for index in Swift.stride(from: 0, to: start.count, by: 5) { start[index] = index % 2 == 0 ? 0 : -0.0 }
                    var expected = start
                    for channel in 0..<c {
                        for i in 0..<kh {
                            for j in 0..<kw {
                                for y in band {
                                    let sy = g.source(y * stride + i - padding, size: h)
                                    if sy < 0 { continue }
                                    let row = (channel * kh + i) * kw + j
                                    // Left edge, interior, right edge: the columns whose source lies in the padding first.
                                    let xs = (0..<g.outWidth).map { ($0, $0 * stride + j - padding) }
                                    let ordered = xs.filter { $0.1 < 0 } + xs.filter { $0.1 >= 0 && $0.1 < w } + xs.filter { $0.1 >= w }
                                    for (ox, p) in ordered {
                                        let sx = g.source(p, size: w)
                                        if sx < 0 { continue }
                                        expected[(channel * h + sy) * w + sx] += columns[row * width + (y - band.lowerBound) * g.outWidth + ox]
                                    }
                                }
                            }
                        }
                    }
                    var image = start
                    columns.withUnsafeMutableBufferPointer { columns in
                        image.withUnsafeMutableBufferPointer {
                            Conv2dKernel.col2im(columns.baseAddress!, $0.baseAddress!, g, rows: g.rowSources(), cols: g.columnSources(),
                                                band: band, parallel: false)
                        }
                    }
                    let mismatches = zip(image, expected).filter { $0.bitPattern != $1.bitPattern }.count
                    XCTAssertEqual(mismatches, 0, "\(c)×\(h)×\(w), kernel \(kh)×\(kw), stride \(stride), padding \(padding) \(mode), band \(band)")
                }
            }
        }
    }
}
