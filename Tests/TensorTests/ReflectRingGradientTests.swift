import CKernels
import Foundation
@testable import Tensor
import XCTest

/// `wb_reflect_ring_gradient` (reflect_ring_gradient.c), the share of a reflect-padded convolution's
/// input gradient that passes through the padding ring, against the definition: the terms of the
/// convolution whose input pixel is a reflection, over bf16-rounded operands, summed in float64.
/// Plain C, so it runs on every CPU.
final class ReflectRingGradientTests: XCTestCase {
    func testRingShareMatchesTheDefinition() {
        let random = RandomGenerator(seed: 67, purpose: "reflect ring")
        for (c, o, h, w, k) in [(3, 2, 5, 7, 3), (17, 33, 8, 8, 3), (20, 5, 6, 9, 5), (1, 1, 2, 3, 3), (40, 24, 4, 34, 3)] {
            let weight = random.normal([o, c, k, k]), dout = random.normal([2, o, h, w])
            let g = Conv2dGeometry(input: [1, c, h, w], weight: [o, c, k, k], stride: 1, padding: (k - 1) / 2, paddingMode: .reflect)
            let wr = weight.scalars.map(referenceBF16), dr = dout.scalars.map(referenceBF16)
            var ringWeights = [Float](repeating: .nan, count: k * k * o * c)
            wb_reflect_ring_weights(weight.scalars, Int32(o), Int32(c), Int32(k), &ringWeights)
            for image in 0..<2 {
                var expected = [Double](repeating: 0, count: c * h * w), magnitudes = expected
                DirectConvolutionAMXTests.forEachTerm(g) { out, ch, i, j, y, x, input in
                    let (py, px) = (y + i - g.padding, x + j - g.padding)
                    guard py < 0 || py >= h || px < 0 || px >= w else { return }
                    let term = Double(wr[((out * c + ch) * k + i) * k + j]) * Double(dr[(image * o + out) * h * w + y * w + x])
                    expected[input] += term
                    magnitudes[input] += abs(term)
                }
                let base = random.normal([c, h, w]).scalars
                var got = base
                dout.scalars.withUnsafeBufferPointer { dy in
                    wb_reflect_ring_gradient(dy.baseAddress! + image * o * h * w, Int32(o), Int32(h), Int32(w), ringWeights, Int32(c),
                                             Int32(k), &got)
                }
                for index in 0..<got.count {
                    let bound = 1e-6 * (magnitudes[index] + abs(Double(base[index]))) + 1e-30
                    XCTAssertLessThanOrEqual(abs(Double(got[index]) - (Double(base[index]) + expected[index])), bound,
                                             "\((c, o, h, w, k)) image \(image) element \(index)")
                }
                XCTAssertGreaterThan(magnitudes.filter { $0 > 0 }.count, c * (h + w), "the ring reaches the border pixels")
            }
        }
    }
}
