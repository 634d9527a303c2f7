/// The input gradient of a reflect-padded convolution, split into the part a zero-padded layer has
/// and the border ring's part.
///
/// The gradient of the padded input xpad [H+2p, W+2p] is the full convolution of dout with the
/// flipped weights; its inner H×W part is exactly the zero-padded layer's input gradient (a "same"
/// convolution for p = (k−1)/2), and the ring of width p around it mirrors input elements, so its
/// values are added to those. Computing the whole padded gradient and folding it back costs a
/// convolution over (H+2p)×(W+2p) outputs, 1.27 times the pixels at 16×16 and 1.56 times at 8×8, and on
/// AMX tiles a row width that no longer splits into whole tiles (three copies of every input plane
/// instead of one); the ring alone is a thin product per side, each reaching dout through p of the k
/// kernel rows (top, bottom) or columns (left, right) only.
///
/// `ReflectBorder.add` runs on one thread, so that it can follow each image's convolution while the
/// image's dout and dx are still in the core's cache (`Conv2dKernel.forward`'s `afterImages`).
final class ReflectBorder: @unchecked Sendable {
    /// One side of the ring in padded coordinates, and the kernel taps through which it reaches dout.
    struct Side {
        var rows: Range<Int>, columns: Range<Int>, tapRows: Range<Int>, tapColumns: Range<Int>
        var positions: Int { rows.count * columns.count }
        var taps: Int { tapRows.count * tapColumns.count }
    }

    let g: Conv2dGeometry
    /// Top, bottom, left and right (the left and right sides span the inner rows only; the corners
    /// belong to the top and bottom).
    let sides: [Side]
    /// Per side, W_side [C_in, C_out·taps] with W_side[i][o·taps + t] = W[o][i][the side's tap t], one
    /// after another, and their packings for the products (`BLAS.share`), made once for all images.
    private let weights: UnsafeMutablePointer<Float>, packing: UnsafeMutablePointer<Float>
    private let operands: [BLAS.SharedOperand]

    /// The ring of a layer with reflect padding 1 ≤ p ≤ k−1, a square kernel and stride 1.
    init(weight: Tensor, _ g: Conv2dGeometry) {
        precondition(g.paddingMode == .reflect && g.stride == 1 && g.kernelHeight == g.kernelWidth
                     && g.padding >= 1 && g.padding <= g.kernelHeight - 1, "reflect border gradient: geometry \(g)")
        let (p, k, h, w) = (g.padding, g.kernelHeight, g.inHeight, g.inWidth)
        let (allColumns, innerRows) = (0..<(w + 2 * p), p..<(h + p))
        let sides = [Side(rows: 0..<p, columns: allColumns, tapRows: 0..<p, tapColumns: 0..<k),
                     Side(rows: (h + p)..<(h + 2 * p), columns: allColumns, tapRows: (k - p)..<k, tapColumns: 0..<k),
                     Side(rows: innerRows, columns: 0..<p, tapRows: 0..<k, tapColumns: 0..<p),
                     Side(rows: innerRows, columns: (w + p)..<(w + 2 * p), tapRows: 0..<k, tapColumns: (k - p)..<k)]
        let (cin, cout, source) = (g.inChannels, g.outChannels, weight.pointer)
        let depths = sides.map { cout * $0.taps }
        let starts = depths.indices.map { side in depths[..<side].reduce(0, +) * cin }
        let packedCounts = depths.map { BLAS.packedCount(m: cin, k: $0) }
        let weights = UnsafeMutablePointer<Float>.allocate(capacity: cin * depths.reduce(0, +))
        let packing = UnsafeMutablePointer<Float>.allocate(capacity: max(1, packedCounts.reduce(0, +)))
        // Blocks of 16 input channels, so that every (o, i) reads its k² taps in order while the side
        // appends to 16 rows at a time (a scattered write per (o, i) costs a cache line each).
        for (side, start) in zip(sides, starts) {
            let tapOffsets = side.tapRows.flatMap { ky in side.tapColumns.map { ky * k + $0 } }, taps = tapOffsets.count
            tapOffsets.withUnsafeBufferPointer { offsets in
                Parallel.forEach((cin + 15) / 16) { block in
                    for o in 0..<cout {
                        for i in (16 * block)..<min(cin, 16 * block + 16) {
                            let from = source + (o * cin + i) * k * k, to = weights + start + (i * cout + o) * taps
                            for t in 0..<taps { to[t] = from[offsets[t]] }
                        }
                    }
                }
            }
        }
        let packedStarts = packedCounts.indices.map { packedCounts[..<$0].reduce(0, +) }
        Parallel.forEach(sides.count) { side in
            if packedCounts[side] > 0 {
                BLAS.pack(transposeA: false, m: cin, k: depths[side], a: weights + starts[side], lda: depths[side],
                          into: packing + packedStarts[side])
            }
        }
        (self.g, self.sides, self.weights, self.packing) = (g, sides, weights, packing)
        operands = sides.indices.map { side in
            BLAS.shared(transposeA: false, m: cin, k: depths[side], a: weights + starts[side], lda: depths[side],
                        packed: packedCounts[side] > 0 ? packing + packedStarts[side] : nil)
        }
    }

    deinit {
        weights.deallocate()
        packing.deallocate()
    }

    /// Adds the ring gradient of `images` to their dx (`gradInput`, [N, C_in, H, W]) on this thread,
    /// for chunks of images at a time (about 256 KB of dout columns, so that small images make wide
    /// products): per side ring[C_in, images·positions] = W_side · dout_side[C_out·taps, images·positions]
    /// (zeros where a tap falls outside dout), a product at the precision of every other, then in each
    /// plane the top and bottom rows (corners included) added to the rows they mirror (padded row r
    /// reads input row p − r, padded row h+p+r input row h − 2 − r) and the left and right columns to
    /// the columns they mirror.
    func add(images: Range<Int>, gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>) {
        let (cin, cout, p, h, w) = (g.inChannels, g.outChannels, g.padding, g.inHeight, g.inWidth)
        let (oh, ow) = (g.outHeight, g.outWidth)
        let deepest = sides.map { cout * $0.taps * $0.positions }.max()!
        let chunk = max(1, min(images.count, (1 << 16) / deepest))
        let ringPerImage = sides.reduce(0) { $0 + $1.positions }
        let columns = UnsafeMutablePointer<Float>.allocate(capacity: chunk * (deepest + cin * ringPerImage))
        defer { columns.deallocate() }
        let ring = columns + chunk * deepest
        for first in stride(from: images.lowerBound, to: images.upperBound, by: chunk) {
            let count = min(chunk, images.upperBound - first)
            // Each side's ring of the chunk's images, [C_in][count][positions].
            var sideRing: [UnsafeMutablePointer<Float>] = []
            var offset = 0
            for (side, operand) in zip(sides, operands) {
                let depth = cout * side.taps, positions = side.positions, width = count * positions
                let lineWidth = side.columns.count
                columns.update(repeating: 0, count: depth * width)
                // Tap (ky, kx) reads dout[y − ky][x − kx]: the side's rows and columns that reach inside
                // dout, copied as runs (top, bottom) or single values (left, right); the taps of one
                // plane one after another, while its lines are in the core's first-level cache.
                let reaches = (0..<side.taps).map { tap in
                    let ky = side.tapRows.lowerBound + tap / side.tapColumns.count
                    let kx = side.tapColumns.lowerBound + tap % side.tapColumns.count
                    return (ky: ky, kx: kx, rows: max(side.rows.lowerBound, ky)..<min(side.rows.upperBound, ky + oh),
                            run: max(side.columns.lowerBound, kx)..<min(side.columns.upperBound, kx + ow))
                }
                for o in 0..<cout {
                    for n in 0..<count {
                        let plane = gradOutput + ((first + n) * cout + o) * oh * ow
                        for (tap, reach) in reaches.enumerated() where !reach.rows.isEmpty && !reach.run.isEmpty {
                            let target = columns + (o * side.taps + tap) * width + n * positions
                                + (reach.run.lowerBound - side.columns.lowerBound)
                            let source = plane + (reach.run.lowerBound - reach.kx)
                            let (firstRow, ky) = (side.rows.lowerBound, reach.ky)
                            if reach.run.count == 1 {
                                for r in reach.rows { target[(r - firstRow) * lineWidth] = source[(r - ky) * ow] }
                            } else {
                                for r in reach.rows {
                                    (target + (r - firstRow) * lineWidth).update(from: source + (r - ky) * ow, count: reach.run.count)
                                }
                            }
                        }
                    }
                }
                BLAS.sgemm(shared: operand, n: width, b: columns, ldb: width, c: ring + offset, ldc: width, parallel: false)
                sideRing.append(ring + offset)
                offset += cin * width
            }
            let (rowSide, columnSide, wp) = (sides[0].positions, sides[2].positions, w + 2 * p)
            for i in 0..<cin {
                for n in 0..<count {
                    let plane = gradInput + ((first + n) * cin + i) * h * w
                    let top = sideRing[0] + (i * count + n) * rowSide, bottom = sideRing[1] + (i * count + n) * rowSide
                    let left = sideRing[2] + (i * count + n) * columnSide, right = sideRing[3] + (i * count + n) * columnSide
                    func addRow(_ source: UnsafeMutablePointer<Float>, into y: Int) {
                        for c in 0..<p { left[y * p + c] += source[c] }
                        for x in 0..<w { plane[y * w + x] += source[p + x] }
                        for c in 0..<p { right[y * p + c] += source[w + p + c] }
                    }
                    for r in 0..<p {
                        addRow(top + r * wp, into: p - r)
                        addRow(bottom + r * wp, into: h - 2 - r)
                    }
                    for y in 0..<h {
                        for c in 0..<p {
                            plane[y * w + p - c] += left[y * p + c]
                            plane[y * w + w - 2 - c] += right[y * p + c]
                        }
                    }
                }
            }
        }
    }
}
