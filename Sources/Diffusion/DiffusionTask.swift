import Autograd
import Foundation
import ImageIO
import NN
import Tensor

/// The diffusion head's training task: Algorithm 1 with warm-up, clipping and an EMA of the
/// weights, the bound in bits/dim for evaluation, and sample grids.
public final class DiffusionTask: TrainingTask {
    public let settings: DiffusionSettings
    public let seed: UInt64
    public let objective: DiffusionObjective
    public let trainSource: ImageSource
    public let testSource: ImageSource?
    private var loader: PrefetchingLoader<DiffusionBatch>!
    private let order: BatchOrder
    public var workSplit: WorkSplit?

    public var diffusion: GaussianDiffusion { objective.diffusion }
    public var network: NoisePredictor { objective.network }
    public var ema: ExponentialMovingAverage { objective.ema }
    public var emaNetwork: NoisePredictor { objective.emaNetwork }

    /// With a data-parallel `split`, `batch(_:)` loads only this process's images of each batch.
    public init(settings: DiffusionSettings, seed: UInt64, withTestData: Bool = true, split: BatchReduction.Split = .whole) throws {
        self.settings = settings
        self.seed = seed
        objective = DiffusionObjective(settings: settings, seed: seed)
        trainSource = try settings.data.source(split: "train")
        testSource = withTestData ? try settings.data.source(split: "test") : nil
        if let classes = settings.model.numClasses {
            for source in [trainSource] + (testSource.map { [$0] } ?? []) {
                try source.checkLabels(classCount: classes, root: settings.data.root, model: "a class-conditional model (model.num_classes)")
            }
        }
        let source = trainSource, degradation = settings.degradation
        order = BatchOrder(seed: seed, count: source.count, batchSize: settings.training.batchSize, split: split, flip: settings.data.flip)
        loader = PrefetchingLoader(depth: settings.data.prefetchBatches) { [order] index in
            let (epoch, indices, flips) = order.batch(index)
            let labels = source.labels.map { labels in indices.map { labels[$0] } }
            guard let degradation else { return DiffusionBatch(images: try source.batch(indices, flip: flips), labels: labels) }
            let pair = try DiffusionTask.degradedPairs(source, indices: indices, flips: flips, degradation: degradation) { index in
                RandomGenerator(seed: seed, purpose: "degrade/epoch\(epoch)/sample\(index)")
            }
            return DiffusionBatch(images: pair.clean, labels: labels, condition: pair.degraded)
        }
    }

    public var batchesPerEpoch: Int { order.batchesPerEpoch }

    public func batch(_ index: Int) throws -> DiffusionBatch { try loader.batch(index, limit: Int.max) }

    public func imagesInBatch(_ index: Int) -> Int { order.imagesInBatch(index) }

    /// Clean images of `source` (flipped where `flips` says) and their degraded copies, as
    /// [B, C, S, S] tensors in [-1, 1]; `generator(index)` keys each image's degradation.
    public static func degradedPairs(_ source: ImageSource, indices: [Int], flips: [Bool]? = nil, degradation: Degradation,
                                     generator: (Int) -> RandomGenerator) throws -> (clean: Tensor, degraded: Tensor, images: [Image], conditions: [Image]) {
        let shape = [indices.count, source.channels, source.imageSize, source.imageSize]
        var clean = Tensor(uninitializedShape: shape), degraded = Tensor(uninitializedShape: shape)
        let size = source.channels * source.imageSize * source.imageSize
        var images: [Image] = [], conditions: [Image] = []
        for (slot, index) in indices.enumerated() {
            var image = try source.image(index)
            if flips?[slot] == true { image = image.flippedHorizontally() }
            let condition = try degradation.apply(image, generator: generator(index))
            image.writeSigned(into: clean.mutablePointer() + slot * size)
            condition.writeSigned(into: degraded.mutablePointer() + slot * size)
            images.append(image)
            conditions.append(condition)
        }
        return (clean, degraded, images, conditions)
    }

    /// The network as a function of (x_t, t) in eval mode, for samplers and the bound. A
    /// class-conditional network is asked for `classes` (one per image; nil: ∅ for all), with
    /// classifier-free guidance of scale `guidance` when it is not 0: both evaluations run as one
    /// batch [x; x] with classes [c; ∅], then ε̂ = (1 + w)·ε(x, c) − w·ε(x, ∅) on the mean channels
    /// (a learned variance is the conditional one, as in GLIDE).
    /// An image-conditioned network is given `condition` (the degraded images) beside x_t.
    public static func denoiser(_ network: NoisePredictor, classes: [Int]? = nil, guidance: Double = 0, condition: Tensor? = nil) -> DenoiseFunction {
        network.eval()
        guard let classes, let nullClass = network.nullClass, guidance != 0 else {
            return { x, t in withNoGrad { network(Variable(x), timesteps: t, classes: classes, condition: condition).value } }
        }
        return { x, t in
            let n = x.shape[0]
            precondition(classes.count == n, "one class per image")
            let both = Resampling.concatBatch([x, x])
            let output = withNoGrad {
                network(Variable(both), timesteps: t + t, classes: classes + Array(repeating: nullClass, count: n),
                        condition: condition.map { Resampling.concatBatch([$0, $0]) }).value
            }
            let half = output.count / 2
            let conditional = Tensor(shape: [n] + Array(output.shape.dropFirst()), scalars: Array(UnsafeBufferPointer(start: output.pointer, count: half)))
            let unconditional = Tensor(shape: conditional.shape, scalars: Array(UnsafeBufferPointer(start: output.pointer + half, count: half)))
            let guided = ClassifierFreeGuidance.combine(conditional: conditional, unconditional: unconditional, scale: guidance,
                                                       meanChannels: network.settings.inChannels)
            return guided
        }
    }

    /// The bound (bits/dim, stratified over `boundTimesteps` timesteps) and the simple loss on
    /// the first `evalImages` test images, with the EMA weights.
    public func evaluate(progress: ((Int, Int) -> Void)?) throws -> [(name: String, value: Double)] {
        guard let testSource else { return [] }
        return try DiffusionTask.evaluate(emaNetwork, diffusion: diffusion, source: testSource, settings: settings, seed: seed,
                                          split: workSplit, progress: progress)
    }

    /// With `split`, each process evaluates its part of the batches and the sums are gathered in
    /// batch order (the same values as one process evaluating every batch). A restoration model
    /// also restores the test images (degraded as `degrade/test/image<i>` draws) with the
    /// experiment's sampler and reports PSNR and SSIM of the restorations, of the degraded inputs
    /// and (super-resolution) of the bicubic up-sampling, restoration first.
    public static func evaluate(_ network: NoisePredictor, diffusion: GaussianDiffusion, source: ImageSource, settings: DiffusionSettings,
                                seed: UInt64, split: WorkSplit? = nil, progress: ((Int, Int) -> Void)?) throws -> [(name: String, value: Double)] {
        let images = min(settings.evalImages, source.count), batchSize = settings.evalBatchSize
        let starts = Array(stride(from: 0, to: images, by: batchSize))
        let degradation = settings.degradation
        // Per batch: Σ bits/dim, Σ prior, Σ decoder, Σ mse over its images, then for restoration
        // Σ PSNR and Σ SSIM of the restored, degraded and bicubic images.
        let width = degradation == nil ? 4 : 10
        var partials: [Double] = []
        // Progress counts this process's images (all of them without a split).
        let mine = starts[split?.mine(starts.count) ?? starts.indices]
        let myImages = mine.reduce(0) { $0 + min(batchSize, images - $1) }
        var done = 0
        for start in mine {
            let indices = Array(start..<min(start + batchSize, images))
            var condition: Tensor?, pair: (clean: Tensor, degraded: Tensor, images: [Image], conditions: [Image])?
            if let degradation {
                pair = try degradedPairs(source, indices: indices, degradation: degradation) { RandomGenerator(seed: seed, purpose: "degrade/test/image\($0)") }
                condition = pair!.degraded
            }
            let x0 = DoubleBatch(try pair?.clean ?? source.batch(indices))
            // A class-conditional model is evaluated on each test image's own class.
            let model = denoiser(network, classes: network.nullClass == nil ? nil : source.labels.map { labels in indices.map { labels[$0] } },
                                 condition: condition)
            let bound = diffusion.bitsPerDim(x0, seed: seed &+ UInt64(start), subsample: settings.boundTimesteps, model: model)
            let draws = RandomGenerator(seed: seed, purpose: "eval/t/\(start)")
            let t = indices.map { _ in draws.nextInt(below: diffusion.timesteps) }
            let noise = DoubleBatch(RandomGenerator(seed: seed, purpose: "eval/noise/\(start)").normal(x0.shape))
            let xt = diffusion.qSample(x0, t: t, noise: noise)
            let output = DoubleBatch(model(xt.tensor, t))
            let target = diffusion.mseTarget(x0: x0, xt: xt, t: t, noise: noise)
            let meanPart = diffusion.varianceType.isLearned ? output.channels(0..<x0.shape[1]) : output
            let mse = zip(meanPart.values, target.values).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / Double(x0.perExample)
            partials += [bound.total.reduce(0, +), bound.prior.reduce(0, +), bound.decoder.reduce(0, +), mse]
            if let degradation, let pair {
                let restored = sampleImages(network, diffusion: diffusion, settings: settings, seed: seed &+ UInt64(start), count: indices.count,
                                            conditions: pair.degraded)
                var sums = [Double](repeating: 0, count: 6)
                for (slot, clean) in pair.images.enumerated() {
                    let shown = degradation.shown(clean, condition: pair.conditions[slot])
                    for (k, candidate) in [restored[slot], shown, pair.conditions[slot]].enumerated() {
                        let quality = ImageQuality.compare(candidate, clean)
                        sums[2 * k] += quality.psnr
                        sums[2 * k + 1] += quality.ssim
                    }
                }
                partials += sums
            }
            done += indices.count
            progress?(done, myImages)
        }
        let all = split?.gather(partials) ?? partials
        var totals = [Double](repeating: 0, count: width)
        for batch in starts.indices {
            for k in 0..<width { totals[k] += all[width * batch + k] }
        }
        let n = Double(images)
        var metrics: [(name: String, value: Double)] = [("bits_per_dim", totals[0] / n), ("mse", totals[3] / n),
                                                        ("prior_bpd", totals[1] / n), ("decoder_bpd", totals[2] / n)]
        if let degradation {
            var quality = [("psnr", totals[4] / n), ("ssim", totals[5] / n), ("psnr_degraded", totals[6] / n), ("ssim_degraded", totals[7] / n)]
            if degradation.hasBicubicBaseline { quality += [("psnr_bicubic", totals[8] / n), ("ssim_bicubic", totals[9] / n)] }
            metrics = quality + metrics
        }
        return metrics
    }

    public func extraState() -> SafeTensorsFile {
        var file = SafeTensorsFile()
        for (key, entry) in ema.stateEntries().entries { file["ema." + key] = entry }
        return file
    }

    public func loadExtraState(_ file: SafeTensorsFile, path: String) throws {
        var state = SafeTensorsFile()
        for (key, entry) in file.entries where key.hasPrefix("ema.") { state[String(key.dropFirst(4))] = entry }
        try ema.loadState(state, path: path)
    }

    /// The EMA weights: what sampling and evaluation use.
    public func exportWeights() -> SafeTensorsFile { ema.shadow.stateDict() }

    public func writeOutputs(step: Int, folder: URL) throws {
        let grid = try settings.degradation == nil
            ? DiffusionTask.sampleGrid(emaNetwork, diffusion: diffusion, settings: settings, seed: seed, count: settings.sampling.count, split: workSplit)
            : DiffusionTask.restorationPanel(emaNetwork, diffusion: diffusion, settings: settings, source: testSource ?? trainSource, seed: seed,
                                             count: min(settings.sampling.count, 8), split: workSplit)
        guard workSplit?.writesFiles ?? true else { return }
        try PNG.write(grid, to: folder.appendingPathComponent(outputNames(step: step)[0]))
    }

    public func outputNames(step: Int) -> [String] { [String(format: "samples-step%07d.png", step)] }

    /// Samples as images (values in [-1, 1] mapped to 0…255).
    /// With `split`, each process samples its part of the batches and the samples are gathered in
    /// order. A class-conditional network samples `classes` (one per image; default: 0, 1, 2, … in
    /// turn) with the experiment's guidance scale; a restoration network restores `conditions`
    /// ([count, C, S, S] degraded images in [-1, 1]).
    public static func sampleImages(_ network: NoisePredictor, diffusion: GaussianDiffusion, settings: DiffusionSettings,
                                    sampler: Sampler? = nil, seed: UInt64, count: Int, classes: [Int]? = nil, conditions: Tensor? = nil,
                                    split: WorkSplit? = nil, progress: ((Int, Int) -> Void)? = nil) -> [Image] {
        let chosen = sampler ?? settings.sampling.makeSampler()
        let classes = classes ?? network.settings.numClasses.map { k in (0..<count).map { $0 % k } }
        let size = settings.data.imageSize, channels = settings.data.channels
        let starts = Array(stride(from: 0, to: count, by: settings.sampling.batchSize))
        var values: [Double] = []
        for start in starts[split?.mine(starts.count) ?? starts.indices] {
            let n = min(settings.sampling.batchSize, count - start)
            let model = denoiser(network, classes: classes.map { Array($0[start..<(start + n)]) }, guidance: settings.sampling.guidanceScale,
                                 condition: conditions.map { Resampling.batchSlice($0, start..<(start + n)) })
            let x = chosen.sample(diffusion, shape: [n, channels, size, size], seed: seed &+ UInt64(start), model: model) { done, total in
                progress?(start * total + done * n, count * total)
            }
            values += x.values
        }
        let all = split?.gather(values) ?? values
        let plane = size * size
        return (0..<count).map { b in
            var image = Image(width: size, height: size, channels: channels)
            for i in 0..<plane {
                for c in 0..<channels {
                    let v = all[b * channels * plane + c * plane + i]
                    image.pixels[i * channels + c] = UInt8(max(0, min(255, ((v + 1) * 127.5).rounded())))
                }
            }
            return image
        }
    }

    /// Rows of degraded | restored | clean for the first `count` images of `source`.
    public static func restorationPanel(_ network: NoisePredictor, diffusion: GaussianDiffusion, settings: DiffusionSettings, source: ImageSource,
                                        seed: UInt64, count: Int, split: WorkSplit? = nil) throws -> Image {
        guard let degradation = settings.degradation else { preconditionFailure("a restoration panel needs a degradation") }
        let indices = Array(0..<min(count, source.count))
        let pair = try degradedPairs(source, indices: indices, degradation: degradation) { RandomGenerator(seed: seed, purpose: "degrade/test/image\($0)") }
        let restored = sampleImages(network, diffusion: diffusion, settings: settings, seed: seed, count: indices.count,
                                    conditions: pair.degraded, split: split)
        let tiles = indices.flatMap { [degradation.shown(pair.images[$0], condition: pair.conditions[$0]), restored[$0], pair.images[$0]] }
        let grid = Image.grid(tiles, columns: 3, padding: 2)
        return grid.width < 256 ? grid.resized(width: grid.width * 2, height: grid.height * 2, filter: .nearest) : grid
    }

    public static func sampleGrid(_ network: NoisePredictor, diffusion: GaussianDiffusion, settings: DiffusionSettings,
                                  sampler: Sampler? = nil, seed: UInt64, count: Int, split: WorkSplit? = nil) throws -> Image {
        let images = sampleImages(network, diffusion: diffusion, settings: settings, sampler: sampler, seed: seed, count: count, split: split)
        let columns = Int(Double(count).squareRoot().rounded(.up))
        let grid = Image.grid(images, columns: columns, padding: 2)
        return grid.width < 256 ? grid.resized(width: grid.width * 2, height: grid.height * 2, filter: .nearest) : grid
    }

    public var outputEverySteps: Int? { settings.sampleEverySteps }

    public func close() { loader.close() }
}

/// Classifier-free guidance (Ho & Salimans 2022) on a network's outputs.
public enum ClassifierFreeGuidance {
    /// (1 + w)·ε(x, c) − w·ε(x, ∅) on the first `meanChannels` channels of [N, C, …] outputs; the
    /// other channels (a learned variance) stay the conditional ones.
    public static func combine(conditional: Tensor, unconditional: Tensor, scale w: Double, meanChannels: Int) -> Tensor {
        precondition(conditional.shape == unconditional.shape, "guidance needs equal shapes")
        let n = conditional.shape[0], perImage = conditional.count / max(n, 1)
        let guided = perImage / conditional.shape[1] * meanChannels, weight = Float(w)
        var result = conditional
        let rp = result.mutablePointer(), up = unconditional.pointer
        for image in 0..<n {
            for i in 0..<guided {
                let index = image * perImage + i
                rp[index] = (1 + weight) * rp[index] - weight * up[index]
            }
        }
        return result
    }
}
