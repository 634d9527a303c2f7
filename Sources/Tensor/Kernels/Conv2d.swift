import CKernels

/// How a convolution reads outside its input.
public enum PaddingMode: String, Codable, Sendable {
    /// Zeros outside the input.
    case zeros
    /// Mirror without repeating the edge (PyTorch's `padding_mode='reflect'`): index -1 reads 1.
    case reflect
}

/// Sizes of one 2-D convolution over an NCHW batch.
public struct Conv2dGeometry: Hashable, Sendable {
    public var batch, inChannels, inHeight, inWidth: Int
    public var outChannels, kernelHeight, kernelWidth, stride, padding: Int
    public var paddingMode: PaddingMode

    public init(input shape: [Int], weight wshape: [Int], stride: Int, padding: Int, paddingMode: PaddingMode) {
        precondition(shape.count == 4 && wshape.count == 4, "conv2d needs NCHW input and OIHW weight, got \(shape) and \(wshape)")
        precondition(shape[1] == wshape[1], "conv2d: input has \(shape[1]) channels, weight expects \(wshape[1])")
        batch = shape[0]; inChannels = shape[1]; inHeight = shape[2]; inWidth = shape[3]
        outChannels = wshape[0]; kernelHeight = wshape[2]; kernelWidth = wshape[3]
        self.stride = stride; self.padding = padding; self.paddingMode = paddingMode
        precondition(inHeight + 2 * padding >= kernelHeight && inWidth + 2 * padding >= kernelWidth,
                     "conv2d: input \(inHeight)×\(inWidth) is smaller than the kernel")
        if paddingMode == .reflect {
            precondition(padding < inHeight && padding < inWidth,
                         "conv2d: reflect padding \(padding) needs every spatial size above it, input is \(inHeight)×\(inWidth)")
        }
    }

    public var outHeight: Int { (inHeight + 2 * padding - kernelHeight) / stride + 1 }
    public var outWidth: Int { (inWidth + 2 * padding - kernelWidth) / stride + 1 }
    /// Rows of the im2col matrix: C·kh·kw.
    public var columnRows: Int { inChannels * kernelHeight * kernelWidth }
    /// Columns of the im2col matrix: output pixels per image.
    public var columnCount: Int { outHeight * outWidth }
    /// A 1×1, stride-1, unpadded convolution is a plain matrix product on the input.
    public var isPointwise: Bool { kernelHeight == 1 && kernelWidth == 1 && stride == 1 && padding == 0 }
    /// Multiply-adds of the forward pass, times two.
    public var forwardFLOPs: Double { 2.0 * Double(batch * outChannels * columnCount) * Double(columnRows) }

    /// Source index along one axis for padded position `p`, or -1 for a zero.
    @inline(__always)
    func source(_ p: Int, size: Int) -> Int {
        if p >= 0 && p < size { return p }
        if paddingMode == .zeros { return -1 }
        return p < 0 ? -p : 2 * size - 2 - p
    }

    /// For each kernel offset i and output row y: the input row read (-1 = zero).
    func rowSources() -> [Int] {
        var table = [Int](repeating: 0, count: kernelHeight * outHeight)
        for i in 0..<kernelHeight {
            for y in 0..<outHeight { table[i * outHeight + y] = source(y * stride + i - padding, size: inHeight) }
        }
        return table
    }

    func columnSources() -> [Int] {
        var table = [Int](repeating: 0, count: kernelWidth * outWidth)
        for j in 0..<kernelWidth {
            for x in 0..<outWidth { table[j * outWidth + x] = source(x * stride + j - padding, size: inWidth) }
        }
        return table
    }
}

/// 2-D convolution (cross-correlation, PyTorch semantics) as im2col + sgemm (on the AVX-512 kernels
/// the forward products read the im2col matrix from the image instead of a column buffer).
/// Forward and backward sit side by side.
public enum Conv2dKernel {
    /// For kernel column j: the output columns [low, high) whose source column x·s + j - p lies
    /// inside the input, so they can be copied without index tables.
    @inline(__always)
    static func interior(_ j: Int, _ g: Conv2dGeometry) -> (low: Int, high: Int) {
        let offset = j - g.padding
        var low = 0
        while low < g.outWidth && low * g.stride + offset < 0 { low += 1 }
        var high = g.outWidth
        while high > low && (high - 1) * g.stride + offset >= g.inWidth { high -= 1 }
        return (low, high)
    }

    /// With stride 1 and as many output as input columns, the output rows of `band` whose source (for
    /// kernel row i) is input row y + i − padding read one contiguous run of the plane, shifted by
    /// the kernel column's offset: those rows, the run's first plane index, and the run's elements
    /// (counted from it) that lie inside the plane. Elements outside are edge columns, which the
    /// callers handle row by row. Nil when the convolution is strided or changes the width, or no
    /// row of the band reads an input row in order.
    static func shiftedRun(_ g: Conv2dGeometry, kernelRow i: Int, offset: Int, band: Range<Int>)
        -> (rows: Range<Int>, planeStart: Int, inside: Range<Int>)? {
        guard g.stride == 1 && g.outWidth == g.inWidth else { return nil }
        let first = max(band.lowerBound, g.padding - i), end = min(band.upperBound, g.inHeight + g.padding - i)
        guard first < end else { return nil }
        let w = g.inWidth, start = (first + i - g.padding) * w + offset, count = (end - first) * w
        let low = max(0, -start), high = max(low, count - max(0, start + count - g.inHeight * w))
        return (first..<end, start, low..<high)
    }

    /// Unfolds output rows `band` of one image [C,H,W] into columns [C·kh·kw, band·outW].
    static func im2col(_ image: UnsafePointer<Float>, _ columns: UnsafeMutablePointer<Float>, _ g: Conv2dGeometry,
                       rows: [Int], cols: [Int], band: Range<Int>, parallel: Bool) {
        let (kh, kw, oh, ow, h, w, s) = (g.kernelHeight, g.kernelWidth, g.outHeight, g.outWidth, g.inHeight, g.inWidth, g.stride)
        let ranges = (0..<kw).map { interior($0, g) }
        let width = band.count * ow
        rows.withUnsafeBufferPointer { rows in
            cols.withUnsafeBufferPointer { cols in
                Parallel.forEach(g.inChannels, grain: parallel ? 1 : Int.max) { c in
                    let plane = image + c * h * w
                    for i in 0..<kh {
                        for j in 0..<kw {
                            let target = columns + ((c * kh + i) * kw + j) * width
                            let colTable = cols.baseAddress! + j * ow
                            let (low, high) = ranges[j]
                            let offset = j - g.padding
                            // The columns outside [low, high) of output row y, read through the index table.
                            func copyEdges(_ out: UnsafeMutablePointer<Float>, _ line: UnsafePointer<Float>) {
                                for x in 0..<low { let sx = colTable[x]; out[x] = sx < 0 ? 0 : line[sx] }
                                for x in high..<ow { let sx = colTable[x]; out[x] = sx < 0 ? 0 : line[sx] }
                            }
                            // The rows of a shifted run are one long copy, then each row's edge columns,
                            // instead of a short copy per row (whose overhead made im2col cost nearly as
                            // much as the GEMM's micro-kernel on 32×32 images).
                            let run = shiftedRun(g, kernelRow: i, offset: offset, band: band)
                            let direct = run?.rows ?? band.lowerBound..<band.lowerBound
                            if let run {
                                let inside = run.inside
                                (target + (direct.lowerBound - band.lowerBound) * ow + inside.lowerBound)
                                    .update(from: plane + run.planeStart + inside.lowerBound, count: inside.count)
                                for y in direct {
                                    copyEdges(target + (y - band.lowerBound) * ow, plane + (y + i - g.padding) * w)
                                }
                            }
                            for y in band where !direct.contains(y) {
                                let sy = rows[i * oh + y]
                                let out = target + (y - band.lowerBound) * ow
                                if sy < 0 {
                                    out.update(repeating: 0, count: ow)
                                    continue
                                }
                                let line = plane + sy * w
                                if s == 1 {
                                    if high > low { (out + low).update(from: line + low + offset, count: high - low) }
                                } else {
                                    for x in low..<high { out[x] = line[x * s + offset] }
                                }
                                copyEdges(out, line)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds column gradients of output rows `band` back into one image gradient [C,H,W]; gradient
    /// that reached a reflected pad cell is added to the pixel it mirrors.
    /// `columns` is scratch: with stride 1 and as many output as input columns its edge columns are
    /// overwritten.
    static func col2im(_ columns: UnsafeMutablePointer<Float>, _ image: UnsafeMutablePointer<Float>, _ g: Conv2dGeometry,
                       rows: [Int], cols: [Int], band: Range<Int>, parallel: Bool) {
        let (kh, kw, oh, ow, h, w, s) = (g.kernelHeight, g.kernelWidth, g.outHeight, g.outWidth, g.inHeight, g.inWidth, g.stride)
        let ranges = (0..<kw).map { interior($0, g) }
        let width = band.count * ow
        rows.withUnsafeBufferPointer { rows in
            cols.withUnsafeBufferPointer { cols in
                Parallel.forEach(g.inChannels, grain: parallel ? 1 : Int.max) { c in
                    let plane = image + c * h * w
                    for i in 0..<kh {
                        for j in 0..<kw {
                            let source = columns + ((c * kh + i) * kw + j) * width
                            let colTable = cols.baseAddress! + j * ow
                            let (low, high) = ranges[j]
                            let offset = j - g.padding
                            func addRow(_ y: Int) {
                                let sy = rows[i * oh + y]
                                if sy < 0 { return }
                                let line = plane + sy * w
                                let grad = source + (y - band.lowerBound) * ow
                                for x in 0..<low { let sx = colTable[x]; if sx >= 0 { line[sx] += grad[x] } }
                                if s == 1 {
                                    let shifted = line + offset
                                    for x in low..<high { shifted[x] += grad[x] }
                                } else {
                                    for x in low..<high { line[x * s + offset] += grad[x] }
                                }
                                for x in high..<ow { let sx = colTable[x]; if sx >= 0 { line[sx] += grad[x] } }
                            }
                            // As in im2col, the rows of a shifted run take one long add over the plane. Each pixel still receives its additions in the per-row
                            // order (left edge columns, interior, right edge columns), and the edge
                            // elements, which the long add would put into a neighbouring row, are −0 then
                            // (x + (−0) is x for every x, so those pixels keep their bits).
                            guard let run = shiftedRun(g, kernelRow: i, offset: offset, band: band) else {
                                for y in band { addRow(y) }
                                continue
                            }
                            let (first, end) = (run.rows.lowerBound, run.rows.upperBound)
                            for y in band.lowerBound..<first { addRow(y) }
                            let right = ow - high
                            withUnsafeTemporaryAllocation(of: Float.self, capacity: max(1, (end - first) * right)) { saved in
                                for y in first..<end {
                                    let line = plane + (y + i - g.padding) * w, grad = source + (y - band.lowerBound) * ow
                                    for x in 0..<low {
                                        let sx = colTable[x]
                                        if sx >= 0 { line[sx] += grad[x] }
                                        grad[x] = -0.0
                                    }
                                    for x in high..<ow {
                                        saved[(y - first) * right + x - high] = grad[x]
                                        grad[x] = -0.0
                                    }
                                }
                                let target = plane + run.planeStart, grad = source + (first - band.lowerBound) * ow
                                for t in run.inside { target[t] += grad[t] }
                                for y in first..<end {
                                    let line = plane + (y + i - g.padding) * w
                                    for x in high..<ow {
                                        let sx = colTable[x]
                                        if sx >= 0 { line[sx] += saved[(y - first) * right + x - high] }
                                    }
                                }
                            }
                            for y in end..<band.upperBound { addRow(y) }
                        }
                    }
                }
            }
        }
    }

    /// Output-row bands whose columns fit in about 1 MB, so that the im2col columns stay in the
    /// core's L2 cache between being written and being packed by the GEMM; but at least 128
    /// columns, since narrower products waste the GEMM's 32-column tiles.
    static func bands(_ g: Conv2dGeometry) -> [Range<Int>] {
        let minimumRows = (128 + g.outWidth - 1) / g.outWidth
        let cacheRows = (1 << 18) / max(1, g.columnRows * g.outWidth)
        let rowsPerBand = max(1, min(g.outHeight, max(minimumRows, cacheRows)))
        return stride(from: 0, to: g.outHeight, by: rowsPerBand).map { $0..<min($0 + rowsPerBand, g.outHeight) }
    }

    /// Image chunks for batch-parallel work: one per thread when there are enough images,
    /// otherwise nil (then the work inside each image runs in parallel instead).
    static func imageChunks(_ batch: Int) -> Int? {
        let threads = Parallel.threadCount
        return threads > 1 && batch >= threads ? threads : nil
    }

    /// Whether forward products read their columns from the image where the kernel can (the AVX-512
    /// kernels: `BLAS.readsColumnsInPlace`; false: through the column buffer, as the AVX2 kernel and
    /// OpenBLAS do; the tests compare the two, which give the same bytes).
    nonisolated(unsafe) static var readsColumnsInPlace = true

    /// out[n,o,y,x] = bias[o] + Σ_{c,i,j} weight[o,c,i,j] · xpad[n,c,s·y+i,s·x+j]
    public static func forward(input: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int,
                               paddingMode: PaddingMode) -> Tensor {
        forward(input: input, weight: weight, flipped: false, bias: bias, stride: stride, padding: padding, paddingMode: paddingMode)
    }

    /// Work on a finished range of images of a convolution's output (the output's base pointer).
    typealias ImagesHook = (UnsafeMutablePointer<Float>, Range<Int>) -> Void

    /// `forward`; with `flipped`, by the weights W̃ = `flippedTransposed(weight)` (an input gradient's
    /// convolution), which Winograd and the AMX tiles convert straight from `weight` and im2col copies
    /// first. `afterImages` is called once for every image when its output is complete: on AMX tiles
    /// by the thread that computed the image, right after it, while it is in the core's cache;
    /// elsewhere on ranges of images split between threads after the convolution.
    static func forward(input: Tensor, weight: Tensor, flipped: Bool, bias: Tensor?, stride: Int, padding: Int,
                        paddingMode: PaddingMode, afterImages: ImagesHook? = nil) -> Tensor {
        let shape = flipped ? [weight.shape[1], weight.shape[0]] + weight.shape.dropFirst(2) : weight.shape
        let g = Conv2dGeometry(input: input.shape, weight: shape, stride: stride, padding: padding, paddingMode: paddingMode)
        let started = Profiler.now()
        defer {
            Profiler.convolutionSeconds += Profiler.now() - started
            Profiler.convolutionFLOPs += g.forwardFLOPs
        }
        if let bias {
            precondition(bias.count == g.outChannels, "conv2d bias has \(bias.count) values for \(g.outChannels) channels")
        }
        if usesDirectAMX(g) {
            return directAMXForward(input: input, weight: weight, flipped: flipped, bias: bias, g, afterImages: afterImages)
        }
        var output = usesWinograd(g) ? winogradForward(input: input, weight: weight, flipped: flipped, bias: bias, g)
            : im2colForward(input: input, weight: weight, flipped: flipped, bias: bias, g)
        if let afterImages {
            let out = output.mutablePointer()
            Parallel.forRanges(g.batch) { afterImages(out, $0) }
        }
        return output
    }

    /// `forward` through im2col columns (read in place by the AVX-512 kernels) and the GEMM.
    static func im2colForward(input: Tensor, weight: Tensor, flipped: Bool, bias: Tensor?, _ g: Conv2dGeometry) -> Tensor {
        let weight = flipped ? flippedTransposed(weight) : weight
        var output = Tensor(uninitializedShape: [g.batch, g.outChannels, g.outHeight, g.outWidth])
        let out = output.mutablePointer()
        let k = g.columnRows, pixels = g.columnCount
        let imageSize = g.inChannels * g.inHeight * g.inWidth
        let x = input.pointer
        let bands = Conv2dKernel.bands(g)
        let bandColumns = (bands.first?.count ?? 0) * g.outWidth
        // out[O, pixels] = W[O, k] · columns[k, pixels]: the weights are packed once for every image and band.
        let weights = BLAS.share(weight: weight, transposeA: false, m: g.outChannels, k: k, slot: Workspace.sharedOperandSlot)
        // The AVX-512 kernels read the columns from the image (the same bytes, without the column buffer).
        let inPlace = readsColumnsInPlace && !g.isPointwise && BLAS.readsColumnsInPlace(weights)
        let tables = inPlace ? ConvolutionColumns.of(g) : nil
        let (rows, cols) = inPlace ? ([], []) : (g.rowSources(), g.columnSources())
        func run(_ images: Range<Int>, slot: Int, parallel: Bool) {
            if let tables {
                for n in images {
                    var image = tables.columns(of: x + n * imageSize)
                    BLAS.sgemm(shared: weights, columns: &image, n: pixels, c: out + n * g.outChannels * pixels,
                               ldc: pixels, parallel: parallel)
                }
                return
            }
            if g.isPointwise {
                for n in images {
                    BLAS.sgemm(shared: weights, n: pixels, b: x + n * imageSize, ldb: pixels,
                               c: out + n * g.outChannels * pixels, ldc: pixels, parallel: parallel)
                }
                return
            }
            let columns = Workspace.shared.buffer(2 * slot, count: k * bandColumns)
            for n in images {
                for band in bands {
                    im2col(x + n * imageSize, columns, g, rows: rows, cols: cols, band: band, parallel: parallel)
                    let width = band.count * g.outWidth
                    BLAS.sgemm(shared: weights, n: width, b: columns, ldb: width,
                               c: out + n * g.outChannels * pixels + band.lowerBound * g.outWidth, ldc: pixels, parallel: parallel)
                }
            }
        }
        if let chunks = imageChunks(g.batch) {
            Parallel.forEach(chunks) { chunk in
                run((g.batch * chunk / chunks)..<(g.batch * (chunk + 1) / chunks), slot: chunk, parallel: false)
            }
        } else {
            run(0..<g.batch, slot: 0, parallel: true)
        }
        if let bias {
            let bp = bias.pointer
            Parallel.forEach(g.batch * g.outChannels, grain: 4) { plane in
                let value = bp[plane % g.outChannels]
                let p = out + plane * pixels
                for i in 0..<pixels { p[i] += value }
            }
        }
        return output
    }

    /// Whether float32 forward convolutions may run as Winograd F(2×2, 3×3) (`usesWinograd`); the
    /// tests turn it off to compare with the im2col path.
    nonisolated(unsafe) static var winogradEnabled = true

    /// Whether a forward convolution runs as Winograd F(2×2, 3×3) (winograd.c): float32 products of
    /// 3×3 kernels with stride 1 and padding 1 (zeros or reflect) and at least 64 tiles in the batch, and then
    /// - images of 16×16 outputs and more with at least 16 input channels, or
    /// - smaller images with at least 192 input and output channels together.
    /// Its sixteen products over C_in have 2.25 times fewer multiply-adds than im2col's product over
    /// 9·C_in, but its transforms add memory traffic in proportion to C_in + C_out per tile, which
    /// the products amortise only over enough channels or tiles; im2col reading its columns in place
    /// is at its best on the smallest images. Measured (Intel Xeon with AVX-512, forward time per
    /// batch, best of alternating runs): the seed U-Net's (batch 4, one thread) 32→32 at 128×128
    /// 55–60 → 37 ms, 64→64 at 64×64 48 → 25–28, 64→128 at 32×32 10–12 → 6–8, 512→512 at 8×8
    /// 22–24 → 14–19, but 3→32 at 128×128 3 → 5–7; the DDPM U-Net's (batch 64, two threads)
    /// 32→32 at 32×32 25.2 → 14.5, 64→32 at 32×32 21.7 → 14.1, 64→64 at 16×16 21.2 → 15.8, 96→64
    /// at 16×16 16.1 → 10.5 (one thread: 40.1 → 29.6, 39.5 → 23.4, 37.7 → 28.1, 27.9 → 20.3; its
    /// sampling batch of 16 gains alike), but 64→64 at 8×8 7.4 → 9.1 and 96→64 at 8×8 3.6 → 4.3.
    /// Its 32→1 output layer (skinny products either way) 5.0–5.6 → 2.8–3.1: Winograd writes 16
    /// transformed values per tile and channel where im2col writes 36.
    /// The results differ from im2col's in the last bits (tested within 2e-6 of the largest output,
    /// against float64 and im2col) and, with the workbench's GEMMs, depend neither on threads nor on
    /// the batch (OpenBLAS's edge kernels round products of other widths differently, and an item's
    /// width follows the thread count). bf16 products keep im2col: rounding the transformed operands
    /// to bf16 would add to the rounding error, and AMX runs the plain product faster than the
    /// transforms would save; but layers with at most 4 outputs, whose products stay float32 at either
    /// precision, take Winograd in bf16 too (the DDPM's 32→1 output layer, forward per step: 4.5 → 2.6 ms).
    static func usesWinograd(_ g: Conv2dGeometry) -> Bool {
        guard winogradEnabled && (BLAS.precision == .float32 || g.outChannels <= 4) && g.kernelHeight == 3 && g.kernelWidth == 3
            && g.stride == 1 && g.padding == 1 && g.inChannels >= 16 else { return false }
        let tiles = g.batch * ((g.outHeight + 1) / 2) * ((g.outWidth + 1) / 2)
        return tiles >= 64 && (g.outHeight * g.outWidth >= 16 * 16 || g.inChannels + g.outChannels >= 192)
    }

    /// The algorithm `forward` runs for these shapes at the current precision, for profiles:
    /// "winograd", "amx-direct" or "im2col" (whose columns may be read in place).
    public static func forwardAlgorithm(input: [Int], weight: [Int], stride: Int, padding: Int,
                                        paddingMode: PaddingMode) -> String {
        let g = Conv2dGeometry(input: input, weight: weight, stride: stride, padding: padding, paddingMode: paddingMode)
        return usesWinograd(g) ? "winograd" : usesDirectAMX(g) ? "amx-direct" : "im2col"
    }

    /// `forward` by Winograd F(2×2, 3×3) for the geometries `usesWinograd` accepts. The weights are
    /// transformed and packed once per call, or once while they do not change (`PreparedWeights`).
    /// A work item transforms its input tiles, runs the sixteen products over them and transforms
    /// the results back into the output; its tiles are a band of one image's tile rows or several
    /// whole images side by side, about 1 MB of transformed input and products (so they stay in the
    /// core's L2 cache) but at least 256 tiles where the batch has them, since each product reads a
    /// transformed weight matrix for its tiles.
    static func winogradForward(input: Tensor, weight: Tensor, flipped: Bool = false, bias: Tensor?, _ g: Conv2dGeometry) -> Tensor {
        var output = Tensor(uninitializedShape: [g.batch, g.outChannels, g.outHeight, g.outWidth])
        let out = output.mutablePointer()
        let (cin, cout, h, w) = (g.inChannels, g.outChannels, g.inHeight, g.inWidth)
        let tileRows = (h + 1) / 2, tileColumns = (w + 1) / 2, imageTiles = tileRows * tileColumns
        // The sixteen transformed weight matrices packed for the GEMM (each 64-byte aligned), or as
        // they are where the products read them unpacked (OpenBLAS); only these are kept.
        let matrix = cout * cin, packing = (BLAS.packedCount(m: cout, k: cin) + 15) / 16 * 16
        let perMatrix = packing > 0 ? packing : matrix
        let prepared = PreparedWeights.shared.form(of: weight, [flipped ? 2 : 1, BLAS.kernel.code, cout, cin], count: 16 * perMatrix,
                                                   slot: Workspace.sharedOperandSlot) { buffer in
            // On all threads: in training the weights change every step, and the seed U-Net's 512→512
            // layer transforms and packs 16.8 MB (5 ms on one thread) for each forward and input gradient.
            let transformed = packing > 0 ? Workspace.shared.buffer(Workspace.sharedOperandSlot + 2, count: 16 * matrix) : buffer
            let ranges = max(1, min(Parallel.threadCount * 4, matrix / 1024))
            Parallel.forEach(ranges) { range in
                let first = matrix * range / ranges / 16 * 16, end = range == ranges - 1 ? matrix : matrix * (range + 1) / ranges / 16 * 16
                wb_winograd_f2x3_weights_range(weight.pointer, Int32(cout), Int32(cin), Int32(first), Int32(end - first),
                                               flipped ? 1 : 0, transformed)
            }
            guard packing > 0 else { return }
            Parallel.forEach(16) { xi in
                BLAS.pack(transposeA: false, m: cout, k: cin, a: transformed + xi * matrix, lda: cin, into: buffer + xi * packing)
            }
        }
        let weights = (0..<16).map { xi in
            packing > 0 ? BLAS.shared(transposeA: false, m: cout, k: cin, a: nil, lda: cin, packed: prepared + xi * packing)
                : BLAS.shared(transposeA: false, m: cout, k: cin, a: prepared + xi * matrix, lda: cin, packed: nil)
        }
        let threads = Parallel.threadCount
        let target = max(256, (1 << 18) / (16 * (cin + cout)))
        // An item is tile rows [first, first + rows) of images [image, image + images).
        var items: [(image: Int, images: Int, first: Int, rows: Int)] = []
        if imageTiles >= target || g.batch == 1 {
            let perThread = (tileRows * g.batch + threads - 1) / threads
            let rowsPerItem = max(1, min(tileRows, target / tileColumns, perThread))
            for n in 0..<g.batch {
                for first in stride(from: 0, to: tileRows, by: rowsPerItem) {
                    items.append((n, 1, first, min(rowsPerItem, tileRows - first)))
                }
            }
        } else {
            let perItem = max(1, min(target / imageTiles, (g.batch + threads - 1) / threads))
            for n in stride(from: 0, to: g.batch, by: perItem) { items.append((n, min(perItem, g.batch - n), 0, tileRows)) }
        }
        let largest = items.map { $0.images * $0.rows * tileColumns }.max() ?? 0
        let imageSize = cin * h * w, outputSize = cout * h * w
        let x = input.pointer, biasPointer = bias?.pointer
        let reflect: Int32 = g.paddingMode == .reflect ? 1 : 0
        let workers = min(threads, items.count)
        Parallel.forEach(workers) { worker in
            let v = Workspace.shared.buffer(2 * worker, count: 16 * cin * largest)
            let m = Workspace.shared.buffer(2 * worker + 1, count: 16 * cout * largest)
            for item in items[(items.count * worker / workers)..<(items.count * (worker + 1) / workers)] {
                let tiles = item.images * item.rows * tileColumns, imageColumns = item.rows * tileColumns
                for n in 0..<item.images {
                    wb_winograd_f2x3_input(x + (item.image + n) * imageSize, Int32(cin), Int32(h), Int32(w), reflect,
                                           Int32(item.first), Int32(item.rows), v + n * imageColumns, tiles)
                }
                for xi in 0..<16 {
                    BLAS.sgemm(shared: weights[xi], n: tiles, b: v + xi * cin * tiles, ldb: tiles,
                               c: m + xi * cout * tiles, ldc: tiles, parallel: false)
                }
                for n in 0..<item.images {
                    wb_winograd_f2x3_output(m + n * imageColumns, tiles, Int32(cout), Int32(h), Int32(w), Int32(item.first),
                                            Int32(item.rows), biasPointer, out + (item.image + n) * outputSize)
                }
            }
        }
        return output
    }

    /// Whether input gradients may run as convolutions (`inputGradientIsConvolution`); the tests turn
    /// it off to compare with the column gradient.
    nonisolated(unsafe) static var inputGradientByConvolutionEnabled = true

    /// Whether the input gradient runs as a forward convolution of the output gradient with the
    /// flipped, transposed weights, dx = conv(dout, W̃) with W̃[c,o,i,j] = W[o,c,kh−1−i,kw−1−j],
    /// instead of the column gradient Wᵀ·dout folded back by col2im. The column gradient is a
    /// product over only C_out (32 for the seed's widest layers) that writes C_in·kh·kw values per
    /// pixel, which col2im then reads back: memory-bound, and at bf16's arithmetic rate most of the
    /// backward pass. The convolution is one deep product that writes dx once. It applies to
    /// stride-1 square kernels (strides would leave holes) with zero padding up to kh−1 or, for odd
    /// kernels, reflect padding (whose border gradients are then added to the rows and columns they
    /// mirror). bf16 products always take it; float32 products where that convolution runs as Winograd
    /// (`usesWinograd`: 2.25 times fewer multiply-adds again) and writes at least 64 channels, and
    /// elsewhere keep the column gradient and its bits. (Measured, seed U-Net, one thread, backward
    /// time per step: 64→32 at 128×128 85 → 80 ms, 512→256 at 16×16 63 → 55, but 32→32 at 128×128
    /// 84 → 90 and 32→64 at 64×64 15 → 18: with 32 input channels the column gradient is cheaper.)
    /// float32 layers with at most 4 outputs take the convolution too: its columns have 9·C_out
    /// rows where the column gradient writes 9·C_in per pixel (two threads, backward per step: the
    /// seed U-Net's 32→3 at 128×128 14.2 → 9.6 ms, the DDPM's 32→1 at 32×32 18.5 → 10.5).
    static func inputGradientIsConvolution(_ g: Conv2dGeometry) -> Bool {
        guard inputGradientByConvolutionEnabled && g.stride == 1 && !g.isPointwise && g.kernelHeight == g.kernelWidth
            && (g.paddingMode == .reflect ? g.kernelHeight % 2 == 1 : g.padding <= g.kernelHeight - 1) else { return false }
        return BLAS.precision == .bf16 || g.outChannels <= 4 || (g.inChannels >= 64 && usesWinograd(inputGradientGeometry(g)))
    }

    /// Whether a reflect-padded layer's input gradient is the zero-padded layer's (a convolution over
    /// H×W outputs) plus its border ring's, added separately (`ReflectBorder`), rather than the padded
    /// input's whole gradient (a convolution over (H+2p)×(W+2p) outputs) folded back. The ring needs
    /// its own copy of W's taps (4/3 of W, gathered and packed per call), which pays off only over
    /// enough of the pixels it saves: padding p ≤ kh−1 and batch·((H+2p)(W+2p) − H·W) ≥ 1024.
    /// Measured (Intel Xeon with AMX, two threads, bf16 backward rows per step against the folded
    /// gradient, alternating runs): the DDPM's (batch 64) 32→32 at 32×32 21.9 → 16.7 ms, 64→32 at
    /// 32×32 19.9 → 14.3, 64→64 at 16×16 22.9 → 18.9, 64→64 at 8×8 14.0 → 11.7, 4×4 4.9 → 4.8; the
    /// seed U-Net's (batch 4) 32→32 at 128×128 21.6 → 15.3, 128→64 at 64×64 16.6 → 11.1, while its
    /// 16×16 and 8×8 layers lose two to three times over to the weights' copy (512→512 at 8×8 15 → 34).
    static func addsReflectBorderSeparately(_ g: Conv2dGeometry) -> Bool {
        let (p, h, w) = (g.padding, g.inHeight, g.inWidth)
        return g.paddingMode == .reflect && p > 0 && p <= g.kernelHeight - 1
            && g.batch * ((h + 2 * p) * (w + 2 * p) - h * w) >= reflectBorderMinimumPixels
    }

    /// The least batch·(border pixels) for `addsReflectBorderSeparately`; the tests move it to take
    /// either path.
    nonisolated(unsafe) static var reflectBorderMinimumPixels = 1024

    /// The convolution `inputGradientByConvolution` runs: over dout with W̃ and zero padding kh−1−p
    /// (reflect padding 0 is no padding); for reflect padding folded back, over dout framed by (kh−1)/2
    /// zeros with padding (kh−1)/2.
    static func inputGradientGeometry(_ g: Conv2dGeometry) -> Conv2dGeometry {
        let folded = g.paddingMode == .reflect && g.padding > 0 && !addsReflectBorderSeparately(g)
        let frame = folded ? (g.kernelHeight - 1) / 2 : 0
        return Conv2dGeometry(input: [g.batch, g.outChannels, g.outHeight + 2 * frame, g.outWidth + 2 * frame],
                              weight: [g.inChannels, g.outChannels, g.kernelHeight, g.kernelWidth], stride: 1,
                              padding: folded ? frame : g.kernelHeight - 1 - g.padding, paddingMode: .zeros)
    }

    /// dx for the geometries `inputGradientIsConvolution` accepts: zero padding p is a convolution
    /// with padding kh−1−p; reflect padding that convolution plus the border ring's gradient
    /// (`addsReflectBorderSeparately`), or the gradient of the padded input (padding kh−1) folded back.
    static func inputGradientByConvolution(_ gradOutput: Tensor, weight: Tensor, _ g: Conv2dGeometry) -> Tensor {
        let dx = inputGradientGeometry(g)
        func convolution(_ input: Tensor, padding: Int, afterImages: ImagesHook? = nil) -> Tensor {
            forward(input: input, weight: weight, flipped: true, bias: nil, stride: 1, padding: padding, paddingMode: .zeros,
                    afterImages: afterImages)
        }
        if g.paddingMode == .zeros || g.padding == 0 { return convolution(gradOutput, padding: dx.padding) }
        if addsReflectBorderSeparately(g) {
            let border = ReflectBorder(weight: weight, g), dout = gradOutput.pointer
            return convolution(gradOutput, padding: dx.padding) { gradInput, images in
                border.add(images: images, gradOutput: dout, gradInput: gradInput)
            }
        }
        // Padding kh−1 in two halves, (kh−1)/2 zeros written around dout and (kh−1)/2 by the
        // convolution, so that it keeps the width and takes im2col's shifted-run path (or Winograd's padding 1);
        // on AMX tiles the convolution pads by kh−1 itself (no copy of dout).
        let full = Conv2dGeometry(input: gradOutput.shape, weight: [g.inChannels, g.outChannels, g.kernelHeight, g.kernelWidth],
                                  stride: 1, padding: g.kernelHeight - 1, paddingMode: .zeros)
        var padded = usesDirectAMX(full)
            ? convolution(gradOutput, padding: full.padding) : convolution(zeroPadded(gradOutput, by: dx.padding), padding: dx.padding)
        return foldReflectPadding(&padded, g)
    }

    /// x [N, C, H, W] inside a frame of `width` zeros: [N, C, H+2·width, W+2·width].
    static func zeroPadded(_ x: Tensor, by width: Int) -> Tensor {
        let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
        let (ph, pw) = (h + 2 * width, w + 2 * width)
        var result = Tensor(zeros: [x.shape[0], x.shape[1], ph, pw])
        let source = x.pointer, target = result.mutablePointer()
        Parallel.forEach(planes, grain: 16) { plane in
            for y in 0..<h {
                (target + (plane * ph + y + width) * pw + width).update(from: source + (plane * h + y) * w, count: w)
            }
        }
        return result
    }

    /// The gradient of a reflect-padded input [N, C, H+2p, W+2p] as the input's [N, C, H, W]: padding
    /// row p−r mirrors input row r, so its gradient is added there (rows first, then the columns of
    /// the input rows, which carries the corners twice over to the element they mirror).
    static func foldReflectPadding(_ padded: inout Tensor, _ g: Conv2dGeometry) -> Tensor {
        let p = g.padding, (h, w) = (g.inHeight, g.inWidth), (hp, wp) = (h + 2 * p, w + 2 * p)
        precondition(padded.shape == [g.batch, g.inChannels, hp, wp], "reflect fold: gradient shape \(padded.shape)")
        var result = Tensor(uninitializedShape: [g.batch, g.inChannels, h, w])
        let source = padded.mutablePointer(), target = result.mutablePointer()
        Parallel.forEach(g.batch * g.inChannels, grain: 4) { plane in
            let grid = source + plane * hp * wp
            func addRow(_ from: Int, into to: Int) {
                let a = grid + from * wp, b = grid + to * wp
                for x in 0..<wp { b[x] += a[x] }
            }
            for r in 0..<p {
                addRow(r, into: 2 * p - r)                   // padded row r reads input row p − r
                addRow(h + p + r, into: h + p - 2 - r)       // padded row h+p+r reads input row h − 2 − r
            }
            let out = target + plane * h * w
            for y in 0..<h {
                let row = grid + (y + p) * wp
                for c in 0..<p {
                    row[2 * p - c] += row[c]
                    row[w + p - 2 - c] += row[w + p + c]
                }
                (out + y * w).update(from: row + p, count: w)
            }
        }
        return result
    }

    /// W̃[c,o,i,j] = W[o,c,kh−1−i,kw−1−j]: the weights of the convolution that maps output gradients to input gradients.
    static func flippedTransposed(_ weight: Tensor) -> Tensor {
        let (o, c, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        var flipped = Tensor(uninitializedShape: [c, o, kh, kw])
        let source = weight.pointer, target = flipped.mutablePointer(), taps = kh * kw
        // Blocks of 16 output channels, so that both the reads (16 rows of W) and the writes stay in cache.
        Parallel.forEach((o + 15) / 16) { block in
            let first = 16 * block
            for cc in 0..<c {
                for oc in first..<min(o, first + 16) {
                    let from = source + (oc * c + cc) * taps, to = target + (cc * o + oc) * taps
                    for t in 0..<taps { to[t] = from[taps - 1 - t] }
                }
            }
        }
        return flipped
    }

    /// Gradients of `forward` given dL/dout: input (when asked), weight, and bias (when it has one).
    /// With batch-parallel chunks, each chunk sums its images' weight gradients in order and the
    /// chunk sums are added in order: deterministic for a given thread count.
    public static func backward(input: Tensor, weight: Tensor, gradOutput: Tensor, stride: Int, padding: Int,
                                paddingMode: PaddingMode, needsInputGradient: Bool, hasBias: Bool)
        -> (input: Tensor?, weight: Tensor, bias: Tensor?) {
        let g = Conv2dGeometry(input: input.shape, weight: weight.shape, stride: stride, padding: padding, paddingMode: paddingMode)
        if needsInputGradient && inputGradientIsConvolution(g) {
            let gradInput = inputGradientByConvolution(gradOutput, weight: weight, g)
            let (_, gradWeight, gradBias) = backward(input: input, weight: weight, gradOutput: gradOutput, stride: stride,
                                                     padding: padding, paddingMode: paddingMode, needsInputGradient: false,
                                                     hasBias: hasBias)
            return (gradInput, gradWeight, gradBias)
        }
        let started = Profiler.now()
        defer {
            Profiler.convolutionSeconds += Profiler.now() - started
            Profiler.convolutionFLOPs += g.forwardFLOPs * (needsInputGradient ? 2 : 1)
        }
        if !needsInputGradient && weightGradientUsesDirectAMX(g) {
            let gradWeight = directAMXWeightGradient(input: input, gradOutput: gradOutput, g)
            return (nil, gradWeight, hasBias ? Reduction.sumPerChannel(gradOutput) : nil)
        }
        let directWeights = weightGradientIsDirect(g)
        let k = g.columnRows, pixels = g.columnCount
        let rows = g.rowSources(), cols = g.columnSources()
        var gradInput = needsInputGradient ? Tensor(uninitializedShape: input.shape) : nil
        let gx = gradInput?.mutablePointer()
        let imageSize = g.inChannels * g.inHeight * g.inWidth
        let x = input.pointer, w = weight.pointer, gOut = gradOutput.pointer
        let weightCount = g.outChannels * k
        let bands = Conv2dKernel.bands(g)
        let bandColumns = (bands.first?.count ?? 0) * g.outWidth
        // Wᵀ[k, O], packed once for the input gradient of every image and band.
        let weightsT = needsInputGradient
            ? BLAS.share(transposeA: true, m: k, k: g.outChannels, a: w, lda: k, slot: Workspace.sharedOperandSlot) : nil
        // The weight gradient of `images` is summed, image after image, into gw (nil: only the input gradient).
        func run(_ images: Range<Int>, slot: Int, gradWeight gw: UnsafeMutablePointer<Float>?, parallel: Bool) {
            let gemm = parallel ? BLAS.sgemm : BLAS.serialSgemm
            var first = true
            if g.isPointwise {
                for n in images {
                    let image = x + n * imageSize, gout = gOut + n * g.outChannels * pixels
                    // dW[O, C] (+)= dOut[O, P] · x[C, P]ᵀ;  dx[C, P] = Wᵀ[C, O] · dOut[O, P]
                    if let gw { gemm(false, true, g.outChannels, k, pixels, 1, gout, pixels, image, pixels, first ? 0 : 1, gw, k) }
                    first = false
                    if let weightsT {
                        BLAS.sgemm(shared: weightsT, n: pixels, b: gout, ldb: pixels, c: gx! + n * imageSize, ldc: pixels, parallel: parallel)
                    }
                }
                return
            }
            let columns = gw == nil ? nil : Workspace.shared.buffer(2 * slot, count: k * bandColumns)
            let columnGrad = gx == nil ? nil : Workspace.shared.buffer(2 * slot + 1, count: k * bandColumns)
            for n in images {
                if let gx { (gx + n * imageSize).update(repeating: 0, count: imageSize) }
                for band in bands {
                    let width = band.count * g.outWidth
                    let gout = gOut + n * g.outChannels * pixels + band.lowerBound * g.outWidth
                    if let gw, let columns {
                        im2col(x + n * imageSize, columns, g, rows: rows, cols: cols, band: band, parallel: parallel)
                        // dW[O, k] (+)= dOut[O, band] · cols[k, band]ᵀ
                        gemm(false, true, g.outChannels, k, width, 1, gout, pixels, columns, width, first ? 0 : 1, gw, k)
                        first = false
                    }
                    guard let gx, let columnGrad, let weightsT else { continue }
                    // dcols[k, band] = Wᵀ[k, O] · dOut[O, band], then folded back into the image.
                    BLAS.sgemm(shared: weightsT, n: width, b: gout, ldb: pixels, c: columnGrad, ldc: width, parallel: parallel)
                    col2im(columnGrad, gx + n * imageSize, g, rows: rows, cols: cols, band: band, parallel: parallel)
                }
            }
        }
        let threads = Parallel.threadCount
        if directWeights {
            let gradWeight = directWeightGradient(input: input, gradOutput: gradOutput, g)
            // Only input gradients are left, one image's independent of another's.
            if needsInputGradient && threads > 1 && g.batch >= threads {
                Parallel.forEach(threads) { worker in
                    run((g.batch * worker / threads)..<(g.batch * (worker + 1) / threads), slot: worker, gradWeight: nil, parallel: false)
                }
            } else if needsInputGradient {
                run(0..<g.batch, slot: 0, gradWeight: nil, parallel: true)
            }
            return (gradInput, gradWeight, hasBias ? Reduction.sumPerChannel(gradOutput) : nil)
        }
        // Images are summed in fixed groups (at most `BatchReduction.groupLimit`, whatever the thread
        // count), and the group sums are added in order: the weight gradient depends neither on how
        // many threads ran nor on how many processes share the batch.
        var summed = Tensor(uninitializedShape: weight.shape)
        let gw = summed.mutablePointer()
        let groups = BatchReduction.localGroups(localBatch: g.batch)
        // Groups of one image whose products are single slices of the float32 AVX-512 GEMM: summing
        // the images in order through the GEMM's beta = 1 rounds sum + product once per image, as
        // adding the group sums does, without a partial sum per image (the seed U-Net's 512→512 at
        // 8×8: four of 9.4 MB, written and read back; its four products 27.7 → 16.4 ms on one thread).
        let summedInOrder = BatchReduction.shard == nil && BLAS.kernel == .float32AVX512 && groups.allSatisfy { $0.count == 1 }
            && bands.count == 1 && pixels <= Int(wb_gemm_float32_slice())
        if (groups.count <= 1 && BatchReduction.shard == nil) || summedInOrder {
            run(0..<g.batch, slot: 0, gradWeight: gw, parallel: true)
            if g.batch == 0 { gw.update(repeating: 0, count: weightCount) }
        } else {
            let partials = Workspace.shared.buffer(Workspace.sharedOperandSlot + 1, count: max(1, groups.count) * weightCount)
            if threads > 1 && groups.count >= threads {
                Parallel.forEach(groups.count) { group in
                    run(groups[group], slot: group, gradWeight: partials + group * weightCount, parallel: false)
                }
            } else {
                for group in groups.indices { run(groups[group], slot: 0, gradWeight: partials + group * weightCount, parallel: true) }
            }
            BatchReduction.sumOverGroups(partials, localGroups: groups.count, count: weightCount, into: gw)
        }
        return (gradInput, summed, hasBias ? Reduction.sumPerChannel(gradOutput) : nil)
    }
}
