import DataParallel
import Autograd
import Classification
import Diffusion
import Foundation
import NN
import Segmentation
import Tensor

/// `workbench bench`: training and inference speed of an experiment's model on generated inputs
/// of its batch and image size, convolution GFLOP/s, the same run's raw OpenBLAS sgemm rate, peak
/// memory, and for diffusion the sampling rate.
public enum BenchJob {
    public struct Options {
        public var steps = 5
        public var warmup = 1
        public var profile = false
        /// Images sampled for the DDPM-1000 and DDIM-50 rates (0 skips them).
        public var samplingImages = 4
        /// Side of the square products that give the GEMM reference rates (the README's figures use 2048).
        public var gemmSize = 2048
        /// Under `mpirun`: time the data-parallel step (each rank its share of the batch) and the
        /// exchanges, and nothing else.
        public var processGroup: ProcessGroup?
        public init() {}
    }

    public struct Result {
        public var values: [(name: String, value: Any)] = []
        public var profile: [(name: String, milliseconds: Double, calls: Int)] = []
        public var inferenceProfile: [(name: String, milliseconds: Double, calls: Int)] = []

        mutating func set(_ name: String, _ value: Any) { values.append((name, value)) }
        public func number(_ name: String) -> Double? { values.first { $0.name == name }?.value as? Double }

        public var json: [String: Any] {
            var object: [String: Any] = [:]
            for (name, value) in values { object[name] = value }
            if !profile.isEmpty {
                object["profile"] = profile.map { ["name": $0.name, "ms_per_step": $0.milliseconds, "calls_per_step": $0.calls] }
            }
            if !inferenceProfile.isEmpty {
                object["inference_profile"] = inferenceProfile.map { ["name": $0.name, "ms_per_batch": $0.milliseconds, "calls_per_batch": $0.calls] }
            }
            return object
        }
    }

    /// Resident memory high-water mark of this process, in MB.
    public static var peakResidentMB: Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }

    /// Raw OpenBLAS sgemm on `size`² matrices with OpenBLAS's own `threads`, in GFLOP/s (best of a few).
    public static func sgemmGFLOPs(size: Int = 2048, threads: Int) -> Double {
        BLAS.setOpenBLASThreads(threads)
        defer { BLAS.setOpenBLASThreads(1) }
        return squareProductGFLOPs(size: size) { a, b, c in
            BLAS.openBLASSgemm(m: size, n: size, k: size, a: a, lda: size, b: b, ldb: size, c: c, ldc: size)
        }
    }

    /// The workbench's own product (`BLAS.sgemm`: current backend, workbench threads) on the same matrices.
    public static func workbenchGemmGFLOPs(size: Int = 2048) -> Double {
        squareProductGFLOPs(size: size) { a, b, c in
            BLAS.sgemm(m: size, n: size, k: size, a: a, lda: size, b: b, ldb: size, c: c, ldc: size)
        }
    }

    private static func squareProductGFLOPs(size: Int,
                                            _ product: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) -> Double {
        let random = RandomGenerator(seed: 0, purpose: "bench/sgemm")
        let a = random.uniform([size, size]), b = random.uniform([size, size])
        var c = Tensor(zeros: [size, size])
        let output = c.mutablePointer()
        var best = Double.infinity
        for _ in 0..<4 {
            let start = Profiler.now()
            product(a.pointer, b.pointer, output)
            best = min(best, Profiler.now() - start)
        }
        return 2 * pow(Double(size), 3) / best / 1e9
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? .nan : sorted[sorted.count / 2]
    }

    /// The training step `train` runs (the same `TrainingStep`), repeated on one generated batch.
    static func timedStep<Objective: StepObjective>(_ objective: Objective, settings: TrainingSettings,
                                                     batch: Objective.Batch, shard: BatchReduction.Shard?) -> () -> Void {
        let step = TrainingStep(objective: objective, settings: settings)
        var count = 0
        return {
            _ = step.run(step: count, batches: Array(repeating: (batch: batch, key: 0, shard: shard), count: settings.accumulateSteps))
            count += 1
        }
    }

    public static func run(_ experiment: Experiment, options: Options, log: (String) -> Void = { _ in }) throws -> Result {
        guard (16...8192).contains(options.gemmSize) else {
            throw TrainingError("--gemm-size \(options.gemmSize): the GEMM reference products need a side from 16 to 8192 (default 2048, the README's figures)")
        }
        Runtime.configureThreads(experiment.threads)
        let previousPrecision = try Runtime.configureTrainingPrecision(experiment)
        defer { try? BLAS.setPrecision(previousPrecision) }
        let threads = BLAS.threadCount
        var result = Result()
        let globalBatch = experiment.training.batchSize
        let group = options.processGroup
        if let group, BatchReduction.Split.groups(batch: globalBatch) < group.size {
            throw TrainingError("\(experiment.source.path): train.batch_size \(globalBatch) cannot be split over \(group.size) ranks")
        }
        // This process's images of each batch (all of them without a process group).
        let batch = group?.split.images(batch: globalBatch).count ?? globalBatch
        let shard = group.map { $0.split.shard(batch: globalBatch, exchange: $0) }
        let random = RandomGenerator(seed: experiment.seed, purpose: "bench/inputs")
        let trainStep: () -> Void, inference: () -> Void
        let model: Module
        var imageSize = 0
        var sampling: ((Sampler, Int) -> Void)?
        switch experiment.head {
        case .segmentation(let settings):
            imageSize = settings.data.imageSize
            let objective = SegmentationObjective(settings: settings, seed: experiment.seed)
            let unet = objective.unet
            model = unet
            let x = random.uniform([batch, settings.model.inChannels, imageSize, imageSize])
            let data: SegmentationBatch
            if settings.target == .seed {
                data = SegmentationBatch(images: x, colours: random.bernoulli([batch, 3, imageSize, imageSize], p: 0.3), indices: Array(0..<batch))
            } else {
                let labels = (0..<(batch * imageSize * imageSize)).map { _ in UInt8(random.nextInt(below: settings.classCount)) }
                data = SegmentationBatch(images: x, labels: ClassLabels(shape: [batch, imageSize, imageSize], values: labels),
                                         indices: Array(0..<batch))
            }
            trainStep = timedStep(objective, settings: settings.training, batch: data, shard: shard)
            inference = {
                unet.eval()
                _ = withNoGrad { unet(Variable(x)) }
            }
        case .diffusion(let settings):
            imageSize = settings.data.imageSize
            let objective = DiffusionObjective(settings: settings, seed: experiment.seed)
            let network = objective.network, diffusion = objective.diffusion
            model = network
            let shape = [batch, settings.data.channels, imageSize, imageSize]
            let x0 = random.uniform(shape, low: -1, high: 1)
            let labels = settings.model.numClasses.map { classes in (0..<batch).map { $0 % classes } }
            trainStep = timedStep(objective, settings: settings.training, batch: DiffusionBatch(images: x0, labels: labels), shard: shard)
            let t = (0..<batch).map { _ in random.nextInt(below: diffusion.timesteps) }
            let xt = diffusion.qSample(DoubleBatch(x0), t: t, noise: DoubleBatch(random.normal(shape))).tensor
            inference = { _ = DiffusionTask.denoiser(network)(xt, t) }
            sampling = { sampler, count in
                var quick = settings
                quick.sampling.batchSize = count
                _ = DiffusionTask.sampleImages(network, diffusion: diffusion, settings: quick, sampler: sampler, seed: 0, count: count)
            }
        case .classification(let settings):
            imageSize = settings.data.imageSize
            let objective = ClassificationObjective(settings: settings, seed: experiment.seed)
            let classifier = objective.classifier
            model = classifier
            let x = random.uniform([batch, settings.data.channels, imageSize, imageSize], low: -1, high: 1)
            let labels = (0..<batch).map { $0 % settings.classCount }
            trainStep = timedStep(objective, settings: settings.training, batch: ClassificationBatch(images: x, labels: labels), shard: shard)
            inference = { _ = ClassificationTask.probabilities(classifier, images: x) }
        }
        result.set("experiment", experiment.source.path)
        result.set("task", experiment.task.rawValue)
        result.set("threads", threads)
        result.set("batch_size", globalBatch)
        result.set("image_size", imageSize)
        result.set("parameters", model.parameterCount)

        // Training steps.
        for _ in 0..<options.warmup { trainStep() }
        let exchangeStart = (seconds: group?.exchangeSeconds ?? 0, bytes: group?.exchangedBytes ?? 0)
        var stepTimes: [Double] = [], convFLOPs = 0.0, convSeconds = 0.0
        for index in 0..<options.steps {
            Profiler.reset()
            Profiler.isEnabled = options.profile && index == options.steps - 1
            let start = Profiler.now()
            trainStep()
            stepTimes.append(Profiler.now() - start)
            convFLOPs = Profiler.convolutionFLOPs
            convSeconds += Profiler.convolutionSeconds
            if Profiler.isEnabled {
                result.profile = Profiler.report.map { ($0.name, $0.seconds * 1000, $0.calls) }
            }
            Profiler.isEnabled = false
            log("train step \(index + 1)/\(options.steps): \(String(format: "%.1f", stepTimes.last! * 1000)) ms")
        }
        let stepSeconds = median(stepTimes)
        result.set("train_ms_per_step", stepSeconds * 1000)
        result.set("train_ms_per_image", stepSeconds * 1000 / Double(globalBatch))
        result.set("train_images_per_second", Double(globalBatch) / stepSeconds)
        result.set("conv_gflop_per_step", convFLOPs / 1e9)
        result.set("conv_gflops", convFLOPs * Double(options.steps) / max(convSeconds, 1e-12) / 1e9)
        result.set("conv_share_of_step", convSeconds / Double(options.steps) / stepSeconds)
        result.set("step_gflops", convFLOPs / stepSeconds / 1e9)
        let trainPeak = peakResidentMB
        result.set("peak_rss_mb", trainPeak)
        if let group {
            let steps = Double(options.steps)
            let exchangeSeconds = (group.exchangeSeconds - exchangeStart.seconds) / steps
            result.set("ranks", group.size)
            result.set("exchange_ms_per_step", exchangeSeconds * 1000)
            result.set("exchange_share_of_step", exchangeSeconds / (stepTimes.reduce(0, +) / steps))
            result.set("exchanged_mb_per_step", Double(group.exchangedBytes - exchangeStart.bytes) / steps / 1e6)
            result.set("cpu", Manifest.cpuModel())
            return result
        }

        // Inference (eval mode, no gradients, same batch).
        inference()
        var inferTimes: [Double] = []
        for _ in 0..<max(options.steps, 3) {
            let start = Profiler.now()
            inference()
            inferTimes.append(Profiler.now() - start)
        }
        result.set("infer_ms_per_image", median(inferTimes) * 1000 / Double(batch))
        if options.profile {
            Profiler.reset()
            Profiler.isEnabled = true
            inference()
            Profiler.isEnabled = false
            result.inferenceProfile = Profiler.report.map { ($0.name, $0.seconds * 1000, $0.calls) }
        }

        if let sampling, options.samplingImages > 0 {
            for (name, sampler) in [("ddpm1000", AncestralSampler() as Sampler), ("ddim50", DDIMSampler(steps: 50)),
                                    ("dpmpp2m20", DPMSolverPlusPlusSampler(steps: 20))] {
                let start = Profiler.now()
                sampling(sampler, options.samplingImages)
                let seconds = Profiler.now() - start
                result.set("sample_\(name)_images_per_second", Double(options.samplingImages) / seconds)
                log("sampling \(name): \(String(format: "%.2f", Double(options.samplingImages) / seconds)) images/s")
            }
        }

        // The machine's raw sgemm rate, measured in this run for the ratio.
        Workspace.shared.release()
        let gemmSize = options.gemmSize
        let sgemm = sgemmGFLOPs(size: gemmSize, threads: threads)
        result.set("sgemm_gflops", sgemm)
        result.set("sgemm_gflops_1_thread", sgemmGFLOPs(size: gemmSize, threads: 1))
        result.set("conv_to_sgemm_ratio", (result.number("conv_gflops") ?? 0) / sgemm)
        let gemm = workbenchGemmGFLOPs(size: gemmSize)
        result.set("gemm_size", Double(gemmSize))
        result.set("gemm_backend", BLAS.backend.rawValue)
        result.set("precision", BLAS.precision.rawValue)
        result.set("matrix_products", BLAS.instructionPath)
        result.set("gemm_gflops", gemm)
        result.set("conv_to_gemm_ratio", (result.number("conv_gflops") ?? 0) / gemm)
        result.set("cpu", Manifest.cpuModel())
        result.set("openblas", BLAS.configuration)
        return result
    }

    /// The result as an aligned table for people.
    public static func table(_ result: Result) -> String {
        var lines: [String] = []
        for (name, value) in result.values {
            let text: String
            if let number = value as? Double { text = String(format: number >= 100 ? "%.1f" : "%.3f", number) } else { text = "\(value)" }
            lines.append(name.padding(toLength: 34, withPad: " ", startingAt: 0) + text)
        }
        for (title, profile) in [("one training step", result.profile), ("one inference batch", result.inferenceProfile)] where !profile.isEmpty {
            lines.append("")
            lines.append("profile of \(title) (ms, calls):")
            let total = profile.reduce(0) { $0 + $1.milliseconds }
            for entry in profile.sorted(by: { $0.milliseconds > $1.milliseconds }) {
                lines.append("  " + entry.name.padding(toLength: 52, withPad: " ", startingAt: 0)
                    + String(format: "%9.2f  %4d  %5.1f%%", entry.milliseconds, entry.calls, 100 * entry.milliseconds / max(total, 1e-12)))
            }
        }
        return lines.joined(separator: "\n")
    }
}
