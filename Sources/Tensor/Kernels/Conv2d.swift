/// How a convolution reads outside its input.
public enum PaddingMode: String, Codable, Sendable {
    /// Zeros outside the input.
    case zeros
    /// Mirror without repeating the edge (PyTorch's `padding_mode='reflect'`): index -1 reads 1.
    case reflect
}

/// Sizes of one 2-D convolution over an NCHW batch.
public struct Conv2dGeometry: Equatable, Sendable {
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

/// 2-D convolution (cross-correlation, PyTorch semantics) as im2col + sgemm.
/// Forward and backward sit side by side.
public enum Conv2dKernel {
    /// Unfolds one image [C,H,W] into columns [C·kh·kw, outH·outW].
    static func im2col(_ image: UnsafePointer<Float>, _ columns: UnsafeMutablePointer<Float>, _ g: Conv2dGeometry,
                       rows: [Int], cols: [Int]) {
        let (kh, kw, oh, ow, h, w) = (g.kernelHeight, g.kernelWidth, g.outHeight, g.outWidth, g.inHeight, g.inWidth)
        rows.withUnsafeBufferPointer { rows in
            cols.withUnsafeBufferPointer { cols in
                Parallel.forEach(g.inChannels, grain: 1) { c in
                    let plane = image + c * h * w
                    for i in 0..<kh {
                        for j in 0..<kw {
                            let target = columns + ((c * kh + i) * kw + j) * oh * ow
                            let colTable = cols.baseAddress! + j * ow
                            for y in 0..<oh {
                                let sy = rows[i * oh + y]
                                let out = target + y * ow
                                if sy < 0 {
                                    out.update(repeating: 0, count: ow)
                                    continue
                                }
                                let line = plane + sy * w
                                for x in 0..<ow {
                                    let sx = colTable[x]
                                    out[x] = sx < 0 ? 0 : line[sx]
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Folds column gradients back into one image gradient [C,H,W] (overwrites it); gradient that
    /// reached a reflected pad cell is added to the pixel it mirrors.
    static func col2im(_ columns: UnsafePointer<Float>, _ image: UnsafeMutablePointer<Float>, _ g: Conv2dGeometry,
                       rows: [Int], cols: [Int]) {
        let (kh, kw, oh, ow, h, w) = (g.kernelHeight, g.kernelWidth, g.outHeight, g.outWidth, g.inHeight, g.inWidth)
        rows.withUnsafeBufferPointer { rows in
            cols.withUnsafeBufferPointer { cols in
                Parallel.forEach(g.inChannels, grain: 1) { c in
                    let plane = image + c * h * w
                    plane.update(repeating: 0, count: h * w)
                    for i in 0..<kh {
                        for j in 0..<kw {
                            let source = columns + ((c * kh + i) * kw + j) * oh * ow
                            let colTable = cols.baseAddress! + j * ow
                            for y in 0..<oh {
                                let sy = rows[i * oh + y]
                                if sy < 0 { continue }
                                let line = plane + sy * w
                                let grad = source + y * ow
                                for x in 0..<ow {
                                    let sx = colTable[x]
                                    if sx >= 0 { line[sx] += grad[x] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// out[n,o,y,x] = bias[o] + Σ_{c,i,j} weight[o,c,i,j] · xpad[n,c,s·y+i,s·x+j]
    public static func forward(input: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int,
                               paddingMode: PaddingMode) -> Tensor {
        let g = Conv2dGeometry(input: input.shape, weight: weight.shape, stride: stride, padding: padding, paddingMode: paddingMode)
        var output = Tensor(uninitializedShape: [g.batch, g.outChannels, g.outHeight, g.outWidth])
        let out = output.mutablePointer()
        let k = g.columnRows, pixels = g.columnCount
        let rows = g.rowSources(), cols = g.columnSources()
        let columns = g.isPointwise ? nil : Workspace.shared.buffer(0, count: k * pixels)
        for n in 0..<g.batch {
            let image = input.pointer + n * g.inChannels * g.inHeight * g.inWidth
            var b = image
            if let columns {
                im2col(image, columns, g, rows: rows, cols: cols)
                b = UnsafePointer(columns)
            }
            BLAS.sgemm(m: g.outChannels, n: pixels, k: k, a: weight.pointer, lda: k, b: b, ldb: pixels,
                       c: out + n * g.outChannels * pixels, ldc: pixels)
        }
        if let bias {
            precondition(bias.count == g.outChannels, "conv2d bias has \(bias.count) values for \(g.outChannels) channels")
            let bp = bias.pointer
            Parallel.forEach(g.batch * g.outChannels, grain: 4) { plane in
                let value = bp[plane % g.outChannels]
                let p = out + plane * pixels
                for i in 0..<pixels { p[i] += value }
            }
        }
        return output
    }

    /// Gradients of `forward` given dL/dout: input (when asked), weight, and bias (when it has one).
    public static func backward(input: Tensor, weight: Tensor, gradOutput: Tensor, stride: Int, padding: Int,
                                paddingMode: PaddingMode, needsInputGradient: Bool, hasBias: Bool)
        -> (input: Tensor?, weight: Tensor, bias: Tensor?) {
        let g = Conv2dGeometry(input: input.shape, weight: weight.shape, stride: stride, padding: padding, paddingMode: paddingMode)
        let k = g.columnRows, pixels = g.columnCount
        let rows = g.rowSources(), cols = g.columnSources()
        var gradWeight = Tensor(uninitializedShape: weight.shape)
        let gw = gradWeight.mutablePointer()
        var gradInput = needsInputGradient ? Tensor(uninitializedShape: input.shape) : nil
        let gx = gradInput?.mutablePointer()
        let columns = g.isPointwise ? nil : Workspace.shared.buffer(0, count: k * pixels)
        let columnGrad = (g.isPointwise || !needsInputGradient) ? nil : Workspace.shared.buffer(1, count: k * pixels)
        let imageSize = g.inChannels * g.inHeight * g.inWidth
        for n in 0..<g.batch {
            let image = input.pointer + n * imageSize
            let gout = gradOutput.pointer + n * g.outChannels * pixels
            var b = image
            if let columns {
                im2col(image, columns, g, rows: rows, cols: cols)
                b = UnsafePointer(columns)
            }
            // dW[O, k] (+)= dOut[O, P] · cols[k, P]ᵀ
            BLAS.sgemm(transposeB: true, m: g.outChannels, n: k, k: pixels, a: gout, lda: pixels, b: b, ldb: pixels,
                       beta: n == 0 ? 0 : 1, c: gw, ldc: k)
            guard let gx else { continue }
            if let columnGrad {
                // dcols[k, P] = Wᵀ[k, O] · dOut[O, P], then fold back.
                BLAS.sgemm(transposeA: true, m: k, n: pixels, k: g.outChannels, a: weight.pointer, lda: k, b: gout, ldb: pixels,
                           c: columnGrad, ldc: pixels)
                col2im(columnGrad, gx + n * imageSize, g, rows: rows, cols: cols)
            } else {
                BLAS.sgemm(transposeA: true, m: k, n: pixels, k: g.outChannels, a: weight.pointer, lda: k, b: gout, ldb: pixels,
                           c: gx + n * imageSize, ldc: pixels)
            }
        }
        if g.batch == 0 { gradWeight = Tensor(zeros: weight.shape) }
        var gradBias: Tensor?
        if hasBias {
            gradBias = Reduction.sumPerChannel(gradOutput)
        }
        return (gradInput, gradWeight, gradBias)
    }
}
