import CKernels

/// The float32 weight gradient of 3×3 "same" convolutions as dot products over the pixels
/// (convolution_weight_gradient.c), without im2col columns or transposed GEMM operands.
extension Conv2dKernel {
    /// Whether weight gradients may run as dot products (`weightGradientIsDirect`); the tests turn it
    /// off to compare with the GEMM path.
    nonisolated(unsafe) static var directWeightGradientEnabled = true

    /// Whether the weight gradient runs as dot products over the pixels: float32 products on CPUs
    /// with AVX-512 (and, in bf16, layers with at most 4 outputs, whose products stay float32 there),
    /// a 3×3 kernel with stride 1 and padding 1 (zeros or reflect), at most 64 outputs and images of
    /// at least 32×32 pixels. The GEMM path's weight-gradient product has the pixels as its inner
    /// dimension, contiguous in both operands, so it transposes both while packing them (and packs
    /// columns that im2col wrote first): with few outputs that costs about as much as the products,
    /// with many it is spread over more of them. Dot products of contiguous runs need neither, but
    /// add each sum's 16 lanes once per group of images, which small images do not amortise.
    /// Measured (Intel Xeon with AVX-512, two threads, backward time per step, GEMM → dot products,
    /// best of alternating runs): the DDPM's (batch 64) 32→32 at 32×32 66.9 → 37.8 ms, 64→32 at
    /// 32×32 54.8 → 38.1, its 32→1 output layer 10.2 → 1.7; the seed U-Net's (batch 4) 128→64 at
    /// 64×64 29.4 → 23.4, 32→3 at 128×128 7.4 → 3.0; but the DDPM's 64→64 at 16×16 38.7 → 47.5, and
    /// with 128 outputs at 32×32 the GEMM is as fast or faster (one thread, one image: 128→128
    /// 92 against 83 GFLOP/s).
    ///
    /// A worker's padded copies of a group (`directWeightGradientFloats`) are bounded by 64 MB: larger
    /// images (64 channels at 1024×1024 would need 0.5 GB per worker) keep the GEMM's columns, which
    /// im2col builds a band of about 1 MB at a time.
    static func weightGradientIsDirect(_ g: Conv2dGeometry) -> Bool {
        directWeightGradientEnabled && BLAS.backend == .avx512 && (BLAS.precision == .float32 || g.outChannels <= 4)
            && g.stride == 1 && g.kernelHeight == 3
            && g.kernelWidth == 3 && g.padding == 1 && g.outChannels <= 64 && g.outHeight * g.outWidth >= 32 * 32
            && directWeightGradientFloats(g) <= 16 << 20
    }

    /// Floats of one worker's padded images and output gradients for the largest group of the batch.
    static func directWeightGradientFloats(_ g: Conv2dGeometry) -> Int {
        let largest = Int32(BatchReduction.localGroups(localBatch: g.batch).map(\.count).max() ?? 0)
        guard largest > 0 else { return 0 }
        return g.inChannels * wb_conv_weight_gradient_plane_count(largest, Int32(g.inHeight), Int32(g.inWidth))
            + g.outChannels * wb_conv_weight_gradient_row_count(largest, Int32(g.inHeight), Int32(g.inWidth))
    }

    /// dW [O, C, 3, 3] for the geometries `weightGradientIsDirect` accepts. Each group of images
    /// (`BatchReduction`) is summed by one run over its images; the group sums are added in order.
    static func directWeightGradient(input: Tensor, gradOutput: Tensor, _ g: Conv2dGeometry) -> Tensor {
        let (cin, cout, h, w) = (g.inChannels, g.outChannels, g.inHeight, g.inWidth)
        let weightCount = cout * cin * 9
        var gradWeight = Tensor(uninitializedShape: [cout, cin, 3, 3])
        let gw = gradWeight.mutablePointer()
        let groups = BatchReduction.localGroups(localBatch: g.batch)
        guard !groups.isEmpty else {
            gw.update(repeating: 0, count: weightCount)
            return gradWeight
        }
        let largest = Int32(groups.map(\.count).max() ?? 0)
        let planesCount = cin * wb_conv_weight_gradient_plane_count(largest, Int32(h), Int32(w))
        let rowsCount = cout * wb_conv_weight_gradient_row_count(largest, Int32(h), Int32(w))
        let reflect: Int32 = g.paddingMode == .reflect ? 1 : 0
        let x = input.pointer, dout = gradOutput.pointer
        let imageSize = cin * h * w, outputSize = cout * h * w
        let direct = groups.count == 1 && BatchReduction.shard == nil
        let partials = direct ? gw : Workspace.shared.buffer(Workspace.sharedOperandSlot + 1, count: groups.count * weightCount)
        // A worker's padded images and output gradients (a group's), and its sums.
        func images(_ worker: Int) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
            let slot = Workspace.sharedOperandSlot + 16 + 3 * worker
            return (Workspace.shared.buffer(slot, count: planesCount), Workspace.shared.buffer(slot + 1, count: rowsCount))
        }
        func sums(_ worker: Int) -> UnsafeMutablePointer<Float> {
            Workspace.shared.buffer(Workspace.sharedOperandSlot + 18 + 3 * worker,
                                    count: wb_conv_weight_gradient_sums_count(Int32(cin), Int32(cout)))
        }
        // Image n of `group`, padded into its place in the group's layout.
        func pad(_ group: Range<Int>, _ n: Int, _ planes: UnsafeMutablePointer<Float>, _ rows: UnsafeMutablePointer<Float>) {
            let image = group.lowerBound + n, count = Int32(group.count)
            wb_conv_weight_gradient_pad_input(x + image * imageSize, Int32(cin), Int32(h), Int32(w), reflect, Int32(n), count, planes)
            wb_conv_weight_gradient_pad_output(dout + image * outputSize, Int32(cout), Int32(h), Int32(w), Int32(n), count, rows)
        }
        func sum(_ group: Int, channels: Range<Int>, _ planes: UnsafeMutablePointer<Float>, _ rows: UnsafeMutablePointer<Float>,
                 _ sums: UnsafeMutablePointer<Float>) {
            wb_conv_weight_gradient(planes, rows, Int32(groups[group].count), Int32(cin), Int32(cout), Int32(h), Int32(w),
                                    Int32(channels.lowerBound), Int32(channels.count), sums, partials + group * weightCount)
        }
        let threads = Parallel.threadCount
        if threads > 1 && groups.count >= threads {
            // Whole groups per thread: no data shared between cores.
            Parallel.forEach(threads) { worker in
                let (planes, rows) = images(worker), scratch = sums(worker)
                for index in (groups.count * worker / threads)..<(groups.count * (worker + 1) / threads) {
                    for n in groups[index].indices { pad(groups[index], n - groups[index].lowerBound, planes, rows) }
                    sum(index, channels: 0..<cin, planes, rows, scratch)
                }
            }
        } else {
            // Few groups: each group padded by all threads, its input channels split between them.
            let (planes, rows) = images(0)
            let workers = min(threads, cin)
            for (index, group) in groups.enumerated() {
                Parallel.forEach(group.count) { n in pad(group, n, planes, rows) }
                Parallel.forEach(workers) { worker in
                    sum(index, channels: (cin * worker / workers)..<(cin * (worker + 1) / workers), planes, rows, sums(worker))
                }
            }
        }
        if !direct { BatchReduction.sumOverGroups(partials, localGroups: groups.count, count: weightCount, into: gw) }
        return gradWeight
    }
}
