/// Layout kernels: nearest-neighbour ×2 upsampling and channel concatenation.
public enum Resampling {
    /// out[n,c,i,j] = x[n,c,i/2,j/2]
    public static func upsampleNearest2x(_ x: Tensor) -> Tensor {
        let (n, c, h, w) = x.nchw
        var y = Tensor(uninitializedShape: [n, c, 2 * h, 2 * w])
        let yp = y.mutablePointer(), xp = x.pointer
        Parallel.forEach(n * c, grain: 2) { plane in
            let src = xp + plane * h * w, dst = yp + plane * 4 * h * w
            for i in 0..<h {
                let row = dst + 2 * i * 2 * w
                for j in 0..<w {
                    let v = src[i * w + j]
                    row[2 * j] = v
                    row[2 * j + 1] = v
                }
                (row + 2 * w).update(from: row, count: 2 * w)
            }
        }
        return y
    }

    /// Sums each 2×2 block of the gradient.
    public static func upsampleNearest2xBackward(_ g: Tensor) -> Tensor {
        let (n, c, h2, w2) = g.nchw
        let h = h2 / 2, w = w2 / 2
        var x = Tensor(uninitializedShape: [n, c, h, w])
        let xp = x.mutablePointer(), gp = g.pointer
        Parallel.forEach(n * c, grain: 2) { plane in
            let src = gp + plane * h2 * w2, dst = xp + plane * h * w
            for i in 0..<h {
                let top = src + 2 * i * w2, bottom = top + w2
                for j in 0..<w {
                    dst[i * w + j] = (top[2 * j] + top[2 * j + 1]) + (bottom[2 * j] + bottom[2 * j + 1])
                }
            }
        }
        return x
    }

    /// torch.cat(parts, dim=1) for NCHW tensors of equal N, H, W.
    /// Images `range` of a batch [N, …].
    public static func batchSlice(_ x: Tensor, _ range: Range<Int>) -> Tensor {
        let perImage = x.count / max(x.shape[0], 1)
        return Tensor(shape: [range.count] + Array(x.shape.dropFirst()),
                      scalars: Array(UnsafeBufferPointer(start: x.pointer + range.lowerBound * perImage, count: range.count * perImage)))
    }

    /// Tensors of equal image shape [Nᵢ, …] stacked along the batch axis.
    public static func concatBatch(_ parts: [Tensor]) -> Tensor {
        let inner = Array(parts[0].shape.dropFirst())
        precondition(parts.allSatisfy { Array($0.shape.dropFirst()) == inner }, "concatBatch needs equal image shapes")
        var result = Tensor(uninitializedShape: [parts.reduce(0) { $0 + $1.shape[0] }] + inner)
        var offset = 0
        let rp = result.mutablePointer()
        for part in parts {
            (rp + offset).update(from: part.pointer, count: part.count)
            offset += part.count
        }
        return result
    }

    public static func concatChannels(_ parts: [Tensor]) -> Tensor {
        let first = parts[0].nchw
        let channels = parts.reduce(0) { total, part in
            precondition(part.rank == 4 && part.shape[0] == first.n && part.shape[2] == first.h && part.shape[3] == first.w,
                         "cat on channels needs equal N, H, W; got \(parts.map(\.shape))")
            return total + part.shape[1]
        }
        let inner = first.h * first.w
        var y = Tensor(uninitializedShape: [first.n, channels, first.h, first.w])
        let yp = y.mutablePointer()
        let sources = parts.map { ($0.pointer, $0.shape[1] * inner) }
        Parallel.forEach(first.n, grain: max(1, 65_536 / max(1, channels * inner))) { image in
            var offset = image * channels * inner
            for (source, size) in sources {
                (yp + offset).update(from: source + image * size, count: size)
                offset += size
            }
        }
        return y
    }

    /// Splits a channel-concatenated gradient back into parts with `channels` channels each.
    public static func splitChannels(_ g: Tensor, _ channels: [Int]) -> [Tensor] {
        let (n, total, h, w) = g.nchw
        let inner = h * w
        var start = 0
        return channels.map { count in
            var part = Tensor(uninitializedShape: [n, count, h, w])
            let pp = part.mutablePointer(), gp = g.pointer, first = start
            Parallel.forEach(n, grain: max(1, 65_536 / max(1, count * inner))) { image in
                (pp + image * count * inner).update(from: gp + (image * total + first) * inner, count: count * inner)
            }
            start += count
            return part
        }
    }

    /// Bilinear resize of [N, C, H, W] to [N, C, height, width], as F.interpolate(mode="bilinear",
    /// align_corners=False): source coordinate (i + ½)·in/out − ½, clamped at 0.
    public static func resizeBilinear(_ x: Tensor, height: Int, width: Int) -> Tensor {
        let (n, c, inH, inW) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        if inH == height && inW == width { return x }
        func taps(_ outSize: Int, _ inSize: Int) -> [(Int, Int, Float)] {
            let scale = Float(inSize) / Float(outSize)
            return (0..<outSize).map { i in
                let source = max(0, (Float(i) + 0.5) * scale - 0.5)
                let low = min(Int(source), inSize - 1)
                return (low, min(low + 1, inSize - 1), source - Float(low))
            }
        }
        let rows = taps(height, inH), columns = taps(width, inW)
        var y = Tensor(uninitializedShape: [n, c, height, width])
        let yp = y.mutablePointer(), xp = x.pointer
        Parallel.forEach(n * c) { plane in
            let input = xp + plane * inH * inW, output = yp + plane * height * width
            for (i, (r0, r1, fy)) in rows.enumerated() {
                for (j, (c0, c1, fx)) in columns.enumerated() {
                    let top = input[r0 * inW + c0] * (1 - fx) + input[r0 * inW + c1] * fx
                    let bottom = input[r1 * inW + c0] * (1 - fx) + input[r1 * inW + c1] * fx
                    output[i * width + j] = top * (1 - fy) + bottom * fy
                }
            }
        }
        return y
    }

    /// Mirrors [N, C, H, W] along the width axis (torch.flip(x, dims=[3])).
    public static func flipWidth(_ x: Tensor) -> Tensor {
        let width = x.shape[x.rank - 1], rows = x.count / max(width, 1)
        var y = Tensor(uninitializedShape: x.shape)
        let yp = y.mutablePointer(), xp = x.pointer
        for row in 0..<rows {
            for j in 0..<width { yp[row * width + j] = xp[row * width + width - 1 - j] }
        }
        return y
    }
}
