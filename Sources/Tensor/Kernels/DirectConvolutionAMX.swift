import CKernels

/// bf16 convolutions straight on AMX tiles (convolution_amx.c), without im2col columns or GEMM
/// packing: the forward pass (zero padding up to k−1, or "same" reflect padding) and the weight
/// gradient ("same" padding) of stride-1 square kernels.
extension Conv2dKernel {
    /// Whether bf16 convolutions may run directly on AMX tiles (`usesDirectAMX`); the tests turn it
    /// off to compare with the im2col path.
    nonisolated(unsafe) static var directAMXEnabled = true

    /// Whether a convolution can run directly on AMX tiles: bf16 products on the AMX kernel, stride
    /// 1, a square kernel of odd size k > 1 with zero padding up to k−1 (k−1: the "full" convolution
    /// of reflect-padded layers' input gradients) or reflect padding (k−1)/2, at least 16
    /// input channels (the tiles take input channels in blocks of 32; fewer would be mostly zero
    /// padding) and more than 4 outputs (products of at most 4 rows stay float32 on every bf16 path,
    /// as in the GEMMs). The im2col path packs every input element into bf16 pairs once per kernel
    /// tap and reloads its sums for every slice of the inner dimension; here the input is converted
    /// once per kernel column and every 32×32 block of outputs stays in the tiles for its whole sum.
    static func directAMXApplies(_ g: Conv2dGeometry) -> Bool {
        directAMXEnabled && BLAS.kernel == .bf16AMX && g.stride == 1 && g.kernelHeight == g.kernelWidth
            && g.kernelHeight > 1 && g.kernelHeight % 2 == 1 && g.inChannels >= 16
            && (g.paddingMode == .zeros ? g.padding <= g.kernelHeight - 1 : g.padding == (g.kernelHeight - 1) / 2)
            && g.outChannels > 4
    }

    /// Whether `forward` runs directly on AMX tiles: where `directAMXApplies`, on images of 16×16
    /// and more. Measured (Intel Xeon with AMX, two threads, bf16 forward time per batch against
    /// im2col, best of alternating runs): the seed U-Net's (batch 4) 64→32 at 128×128 10.2 → 6.2 ms,
    /// 64→64 at 64×64 7.0 → 5.2, 128→128 at 32×32 6.2 → 3.9, 256→256 at 16×16 5.6 → 4.6; the
    /// DDPM's (batch 64) 32→32 at 32×32 5.8 → 4.3, 64→64 at 16×16 5.3 → 5.0; on 8×8 images the
    /// per-image set-up outweighs the gain (512→512 3.6 → 4.0, the DDPM's 64→64 2.2 → 3.3).
    static func usesDirectAMX(_ g: Conv2dGeometry) -> Bool {
        directAMXApplies(g) && g.outHeight * g.outWidth >= 16 * 16
    }

    /// Whether the weight gradient runs directly on AMX tiles: where `directAMXApplies` with padding
    /// (k−1)/2 (outputs the size of the input), and either the images have at least 16×16 pixels or
    /// the sums (k²·C_in·C_out floats) fit in 1 MB of the core's L2 cache. Each work unit loads and
    /// stores its 32×32 block of sums once per image and 512 pixels; with few pixels per image and
    /// sums larger than the cache that traffic dominates (the seed U-Net's 512→512 at 8×8, backward
    /// per step: 9.7 → 16.9 ms), while the DDPM's layers, whose sums stay cached, gain at every size
    /// (64→64 at 8×8 11.2 → 9.8). At 16×16 the seed U-Net's layers gain too, their 2.4–4.7 MB of sums
    /// notwithstanding (bf16 backward rows per step against the bf16 GEMM, two alternating runs of 5
    /// rounds, Intel Xeon with AMX: 256→256 25.7 → 20.3 and 25.5 → 20.9 ms, 512→256 23.2 → 19.5 and
    /// 21.9 → 20.6, 128→256 5.7 → 5.4 and 6.0 → 5.2).
    static func weightGradientUsesDirectAMX(_ g: Conv2dGeometry) -> Bool {
        let sums = g.kernelHeight * g.kernelWidth * ((g.inChannels + 15) / 16 * 16) * ((g.outChannels + 15) / 16 * 16)
        return directAMXApplies(g) && g.padding == (g.kernelHeight - 1) / 2
            && (g.outHeight * g.outWidth >= 16 * 16 || sums * 4 <= 1 << 20)
    }

    /// `forward` on AMX tiles for the geometries `directAMXApplies` accepts (with `flipped`, by the
    /// weights `flippedTransposed(weight)`, converted straight from `weight`). The weights are converted
    /// once per call, or once while they do not change (`PreparedWeights`). A work item is a band of
    /// one image's output rows whose converted input (the band's planes) is about 1 MB, so that it
    /// stays in the core's L2 cache while the tiles read it once per tap.
    static func directAMXForward(input: Tensor, weight: Tensor, flipped: Bool, bias: Tensor?, _ g: Conv2dGeometry,
                                 afterImages: ImagesHook? = nil) -> Tensor {
        var output = Tensor(uninitializedShape: [g.batch, g.outChannels, g.outHeight, g.outWidth])
        let out = output.mutablePointer()
        let (cin, cout, h, w, k) = (g.inChannels, g.outChannels, g.inHeight, g.inWidth, g.kernelHeight)
        let (oh, ow, p) = (g.outHeight, g.outWidth, g.padding)
        let count = wb_conv_amx_weights_count(Int32(cout), Int32(cin), Int32(k))
        let prepared = PreparedWeights.shared.form(of: weight, [flipped ? 3 : 2, cout, cin, k], count: count,
                                                   slot: Workspace.sharedOperandSlot) { buffer in
            buffer.withMemoryRebound(to: UInt32.self, capacity: count) {
                wb_conv_amx_weights(weight.pointer, Int32(cout), Int32(cin), Int32(k), flipped ? 1 : 0, $0)
            }
        }
        let weights = UnsafeRawPointer(prepared).assumingMemoryBound(to: UInt32.self)
        let threads = Parallel.threadCount
        let bytesPerRow = 4 * (wb_conv_amx_band_count(Int32(cin), Int32(w), Int32(k), Int32(p), 2)
            - wb_conv_amx_band_count(Int32(cin), Int32(w), Int32(k), Int32(p), 1))
        let rowsPerItem = max(1, min(oh, (1 << 20) / max(1, bytesPerRow), (oh * g.batch + threads - 1) / threads))
        let wholeImages = rowsPerItem == oh
        var items: [(image: Int, first: Int, rows: Int)] = []
        for n in 0..<g.batch {
            for first in stride(from: 0, to: oh, by: rowsPerItem) { items.append((n, first, min(rowsPerItem, oh - first))) }
        }
        let bandCount = wb_conv_amx_band_count(Int32(cin), Int32(w), Int32(k), Int32(p), Int32(rowsPerItem))
        let imageSize = cin * h * w, outputSize = cout * oh * ow
        let x = input.pointer, biasPointer = bias?.pointer
        let reflect: Int32 = g.paddingMode == .reflect ? 1 : 0
        let workers = min(threads, items.count)
        Parallel.forEach(workers) { worker in
            let band = UnsafeMutableRawPointer(Workspace.shared.buffer(2 * worker, count: bandCount))
                .assumingMemoryBound(to: UInt32.self)
            for item in items[(items.count * worker / workers)..<(items.count * (worker + 1) / workers)] {
                wb_conv_amx_forward(x + item.image * imageSize, Int32(cin), Int32(h), Int32(w), Int32(k), Int32(p), reflect, weights,
                                    biasPointer, Int32(cout), Int32(item.first), Int32(item.rows), band,
                                    out + item.image * outputSize)
                if wholeImages { afterImages?(out, item.image..<(item.image + 1)) }
            }
        }
        if let afterImages, !wholeImages { Parallel.forRanges(g.batch) { afterImages(out, $0) } }
        return output
    }

    /// The weight gradient on AMX tiles for the geometries `directAMXApplies` accepts. Images are summed
    /// in the fixed groups of `BatchReduction` and the group sums added in order, as on the im2col
    /// path; within a group the tiles sum image after image, and each block of sums belongs to one
    /// work unit whichever thread runs it, so the result depends neither on the thread count nor on
    /// the number of processes.
    static func directAMXWeightGradient(input: Tensor, gradOutput: Tensor, _ g: Conv2dGeometry) -> Tensor {
        let (cin, cout, h, w, k) = (g.inChannels, g.outChannels, g.inHeight, g.inWidth, g.kernelHeight)
        let taps = k * k, paddedIn = (cin + 15) / 16 * 16, paddedOut = (cout + 15) / 16 * 16
        let weightCount = cout * cin * taps
        var gradWeight = Tensor(uninitializedShape: [cout, cin, k, k])
        let gw = gradWeight.mutablePointer()
        let groups = BatchReduction.localGroups(localBatch: g.batch)
        guard let largest = groups.map(\.count).max(), largest > 0 else {
            gw.update(repeating: 0, count: weightCount)
            return gradWeight
        }
        let planesCount = wb_conv_amx_gradient_planes_count(Int32(cin), Int32(h), Int32(w), Int32(k))
        let pairsCount = wb_conv_amx_gradient_pairs_count(Int32(cout), Int32(h), Int32(w))
        // Without other processes the group sums stay in the kernel's layout ([tap][input][output],
        // padded) until the last one is added; with them, each is rearranged before the exchange, so
        // that every process contributes the same layout whatever its CPU runs.
        let sumsCount = taps * paddedIn * paddedOut, local = BatchReduction.shard == nil
        let groupSums = Workspace.shared.buffer(3, count: groups.count * sumsCount)
        let partials = local || groups.count == 1 ? nil
            : Workspace.shared.buffer(Workspace.sharedOperandSlot + 1, count: groups.count * weightCount)
        let units = wb_conv_amx_gradient_units(Int32(cin), Int32(cout), Int32(k))
        let x = input.pointer, dout = gradOutput.pointer
        let imageSize = cin * h * w, outputSize = cout * h * w, channelBlocks = paddedIn / 16
        let reflect: Int32 = g.paddingMode == .reflect ? 1 : 0
        // A worker's buffers for one group's converted inputs.
        func buffers(_ worker: Int) -> (UnsafeMutablePointer<UInt16>, UnsafeMutablePointer<UInt32>) {
            let slot = Workspace.sharedOperandSlot + 16 + 2 * worker
            return (UnsafeMutableRawPointer(Workspace.shared.buffer(slot, count: largest * planesCount)).assumingMemoryBound(to: UInt16.self),
                    UnsafeMutableRawPointer(Workspace.shared.buffer(slot + 1, count: largest * pairsCount)).assumingMemoryBound(to: UInt32.self))
        }
        // Image n of `group`: its input planes (channel blocks [first, first + count) of 16), or its
        // output gradient as pairs (block == channelBlocks).
        func prepare(_ group: Range<Int>, _ n: Int, block: Int, blocks: Int, _ planes: UnsafeMutablePointer<UInt16>,
                     _ pairs: UnsafeMutablePointer<UInt32>) {
            let image = group.lowerBound + n
            if block < channelBlocks {
                wb_conv_amx_gradient_planes(x + image * imageSize, Int32(cin), Int32(h), Int32(w), Int32(k), reflect,
                                            Int32(16 * block), Int32(16 * blocks), planes + 2 * n * planesCount)
            } else {
                wb_conv_amx_gradient_pairs(dout + image * outputSize, Int32(cout), Int32(h), Int32(w), pairs + n * pairsCount)
            }
        }
        func finish(_ index: Int) {
            if !local {
                wb_conv_amx_weight_gradient_store(groupSums + index * sumsCount, Int32(cin), Int32(cout), Int32(k),
                                                  partials.map { $0 + index * weightCount } ?? gw)
            }
        }
        let threads = Parallel.threadCount
        if threads > 1 && groups.count >= threads {
            // Whole groups per thread (each thread converts its own groups' inputs and runs every
            // work unit): one parallel region, no data shared between cores.
            Parallel.forEach(threads) { worker in
                let (planes, pairs) = buffers(worker)
                for index in (groups.count * worker / threads)..<(groups.count * (worker + 1) / threads) {
                    let group = groups[index]
                    for n in 0..<group.count {
                        prepare(group, n, block: 0, blocks: channelBlocks, planes, pairs)
                        prepare(group, n, block: channelBlocks, blocks: 1, planes, pairs)
                    }
                    wb_conv_amx_weight_gradient(planes, 2 * planesCount, pairs, pairsCount, Int32(group.count), Int32(cin),
                                                Int32(cout), Int32(h), Int32(w), Int32(k), 0, Int32(units), 0,
                                                groupSums + index * sumsCount)
                    finish(index)
                }
            }
        } else {
            // Few groups: each group's inputs converted by all threads, its work units split between them.
            let (planes, pairs) = buffers(0)
            let workers = min(threads, units)
            for (index, group) in groups.enumerated() {
                Parallel.forEach(group.count * (channelBlocks + 1)) { task in
                    prepare(group, task / (channelBlocks + 1), block: task % (channelBlocks + 1), blocks: 1, planes, pairs)
                }
                Parallel.forEach(workers) { worker in
                    let first = units * worker / workers, end = units * (worker + 1) / workers
                    wb_conv_amx_weight_gradient(planes, 2 * planesCount, pairs, pairsCount, Int32(group.count), Int32(cin),
                                                Int32(cout), Int32(h), Int32(w), Int32(k), Int32(first), Int32(end - first), 0,
                                                groupSums + index * sumsCount)
                }
                finish(index)
            }
        }
        if local {
            var total = groupSums
            if groups.count > 1 {
                total = Workspace.shared.buffer(Workspace.sharedOperandSlot + 1, count: sumsCount)
                BatchReduction.sumOverGroups(groupSums, localGroups: groups.count, count: sumsCount, into: total)
            }
            wb_conv_amx_weight_gradient_store(total, Int32(cin), Int32(cout), Int32(k), gw)
        } else if let partials {
            BatchReduction.sumOverGroups(partials, localGroups: groups.count, count: weightCount, into: gw)
        }
        return gradWeight
    }
}
