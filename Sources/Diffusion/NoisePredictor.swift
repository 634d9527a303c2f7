import Autograd
import Foundation
import NN
import Tensor

/// Which normalisation the noise predictor's blocks use.
public enum NormalizationKind: String, CaseIterable, Sendable {
    /// GroupNorm: statistics per image, so training and sampling behave alike whatever the batch
    /// and the shared timestep of a sampling batch, and the EMA copy needs no running statistics.
    case group
    /// BatchNorm as in the seed library (eval mode with running statistics when sampling).
    case batch
}

public enum ActivationKind: String, CaseIterable, Sendable {
    case silu
    case leakyRelu = "leaky_relu"
}

/// The noise predictor's shape, from the experiment file.
public struct NoisePredictorSettings: Sendable, Equatable {
    public var imageSize = 32
    public var inChannels = 1
    /// C, or 2C for a learned variance.
    public var outChannels = 1
    public var baseChannels = 32
    /// Width of each level relative to `baseChannels`; one level per entry, halving the resolution
    /// between levels (the seed U-Net is [1, 2, 4, 8, 16]).
    public var channelMultipliers = [1, 2, 2, 2]
    public var dropout = 0.1
    public var normalization = NormalizationKind.group
    public var groups = 8
    public var activation = ActivationKind.silu
    /// Feature-map sizes that get a self-attention block (e.g. [8]).
    public var attentionResolutions: [Int] = []
    /// Classes of a class-conditional model (nil: unconditional). The class embedding has one more
    /// row, the null class ∅ of classifier-free guidance.
    public var numClasses: Int?
    /// Channels of an image condition concatenated to x_t at the input (restoration: the degraded
    /// image y, so the network sees [x_t, y]); 0 for none.
    public var conditionChannels = 0

    public init() {}

    public var levelChannels: [Int] { channelMultipliers.map { $0 * baseChannels } }
    public var timeEmbeddingChannels: Int { 4 * baseChannels }

    /// Problems with these settings, or nil: the key of the experiment to blame and what is wrong.
    public func problem() -> (key: String, message: String)? {
        let levels = channelMultipliers.count
        guard (1...16).contains(levels) else { return ("model.channel_multipliers", "needs 1 to 16 levels, found \(levels)") }
        let bottom = imageSize >> (levels - 1)
        if imageSize % (1 << (levels - 1)) != 0 || bottom < 2 {
            return ("model.channel_multipliers", "image size \(imageSize) must halve exactly \(levels - 1) times and stay at least 2 (reflect padding)")
        }
        for channels in levelChannels {
            if channels % 2 != 0 {
                return ("model.channel_multipliers", "every level needs an even channel count (UpSample halves it), found \(channels)")
            }
            if normalization == .group && channels % groups != 0 {
                return ("model.groups", "\(groups) groups do not divide a level of \(channels) channels (model.base_channels × model.channel_multipliers); choose a divisor of every level's width")
            }
        }
        return nil
    }
}

/// Sinusoidal timestep embedding of Ho et al. (Transformer-style): [sin(t·f_i), cos(t·f_i)],
/// f_i = exp(-ln(10000)·i/(d/2 - 1)).
public func timestepEmbedding(_ timesteps: [Int], dimension: Int) -> Tensor {
    let half = dimension / 2
    let scale = log(10000.0) / Double(max(half - 1, 1))
    var result = Tensor(zeros: [timesteps.count, dimension])
    let p = result.mutablePointer()
    for (row, t) in timesteps.enumerated() {
        for i in 0..<half {
            let angle = Double(t) * exp(-scale * Double(i))
            p[row * dimension + i] = Float(sin(angle))
            p[row * dimension + half + i] = Float(cos(angle))
        }
    }
    return result
}

func makeNormalization(_ kind: NormalizationKind, channels: Int, groups: Int) -> Layer {
    switch kind {
    case .group: return GroupNorm(groups: groups, channels: channels)
    case .batch: return BatchNorm2d(channels)
    }
}

func activate(_ x: Variable, _ kind: ActivationKind) -> Variable {
    kind == .silu ? Functional.silu(x) : Functional.leakyReLU(x)
}

/// The seed's ConvBlock with the timestep added: [3×3 reflect conv, norm, + W·emb, dropout, act],
/// [3×3 reflect conv, norm, dropout, act], plus a residual connection (1×1 conv when widths differ).
/// The embedding is added after the normalisation, so BatchNorm cannot subtract it out.
public final class TimeConditionedBlock: Module {
    public let conv1: Conv2d
    public let norm1: Layer
    public let timeProjection: Linear
    public let dropout1: Dropout
    public let conv2: Conv2d
    public let norm2: Layer
    public let dropout2: Dropout
    public let skip: Conv2d?
    let activation: ActivationKind

    public init(_ inChannels: Int, _ outChannels: Int, timeChannels: Int, settings: NoisePredictorSettings) {
        conv1 = Conv2d(inChannels, outChannels, kernelSize: 3, padding: 1, paddingMode: .reflect, bias: false)
        norm1 = makeNormalization(settings.normalization, channels: outChannels, groups: settings.groups)
        timeProjection = Linear(timeChannels, outChannels)
        dropout1 = Dropout(p: Float(settings.dropout))
        conv2 = Conv2d(outChannels, outChannels, kernelSize: 3, padding: 1, paddingMode: .reflect, bias: false)
        norm2 = makeNormalization(settings.normalization, channels: outChannels, groups: settings.groups)
        dropout2 = Dropout(p: Float(settings.dropout))
        skip = inChannels == outChannels ? nil : Conv2d(inChannels, outChannels, kernelSize: 1, bias: true)
        activation = settings.activation
    }

    public var children: [(name: String, module: Module)] {
        var list: [(name: String, module: Module)] = [("conv1", conv1), ("norm1", norm1), ("time_proj", timeProjection),
                                                      ("conv2", conv2), ("norm2", norm2)]
        list += [("dropout1", dropout1), ("dropout2", dropout2)]
        if let skip { list.append(("skip", skip)) }
        return list
    }

    /// `embedding` is the activated time embedding [N, timeChannels].
    public func callAsFunction(_ x: Variable, embedding: Variable) -> Variable {
        var h: Variable
        if activation == .silu, dropout1.p < 1, dropout2.p < 1, let norm1 = norm1 as? GroupNorm, let norm2 = norm2 as? GroupNorm {
            // The default (GroupNorm, SiLU): each half's norm, shift, dropout and activation in one kernel.
            h = norm1.shiftDropoutSiLU(conv1(x), shift: timeProjection(embedding), dropout: dropout1)
            h = norm2.shiftDropoutSiLU(conv2(h), shift: nil, dropout: dropout2)
        } else {
            h = Functional.addPerChannel(norm1(conv1(x)), timeProjection(embedding))
            h = activate(dropout1(h), activation)
            h = activate(dropout2(norm2(conv2(h))), activation)
        }
        return Functional.add(h, skip.map { $0(x) } ?? x)
    }
}

/// The DDPM noise predictor: the seed U-Net's layout (blocks, DownSample, UpSample with skip
/// concatenation) with the timestep embedding added inside every block, optional attention at
/// low resolution, and C or 2C output channels. It is a function of (x_t, t) only; the diffusion
/// math never sees its type.
public final class NoisePredictor: Module {
    public let settings: NoisePredictorSettings
    public let timeMLP: Sequential
    public let encoder: [TimeConditionedBlock]
    public let downsample: [DownSample]
    public let upsample: [UpSample]
    public let decoder: [TimeConditionedBlock]
    public let attention: [(name: String, block: AttentionBlock)]
    public let out: Conv2d
    /// The learned class embedding added to the timestep embedding (class-conditional models).
    public let classEmbedding: Embedding?

    public init(settings: NoisePredictorSettings) {
        precondition(settings.problem() == nil, settings.problem()?.message ?? "")
        self.settings = settings
        let channels = settings.levelChannels, time = settings.timeEmbeddingChannels
        timeMLP = Sequential([Linear(settings.baseChannels, time), SiLU(), Linear(time, time)])
        var encoder: [TimeConditionedBlock] = [], downsample: [DownSample] = []
        var attention: [(name: String, block: AttentionBlock)] = []
        var previous = settings.inChannels + settings.conditionChannels
        for (level, width) in channels.enumerated() {
            encoder.append(TimeConditionedBlock(previous, width, timeChannels: time, settings: settings))
            if settings.attentionResolutions.contains(settings.imageSize >> level) {
                attention.append(("enc\(level)", AttentionBlock(width, groups: settings.groups)))
            }
            if level < channels.count - 1 { downsample.append(DownSample(width)) }
            previous = width
        }
        var upsample: [UpSample] = [], decoder: [TimeConditionedBlock] = []
        for level in stride(from: channels.count - 2, through: 0, by: -1) {
            upsample.append(UpSample(previous))
            decoder.append(TimeConditionedBlock(previous / 2 + channels[level], channels[level], timeChannels: time, settings: settings))
            if settings.attentionResolutions.contains(settings.imageSize >> level) {
                attention.append(("dec\(level)", AttentionBlock(channels[level], groups: settings.groups)))
            }
            previous = channels[level]
        }
        self.encoder = encoder
        self.downsample = downsample
        self.upsample = upsample
        self.decoder = decoder
        self.attention = attention
        out = Conv2d(channels[0], settings.outChannels, kernelSize: 3, padding: 1, paddingMode: .zeros, bias: true)
        classEmbedding = settings.numClasses.map { Embedding($0 + 1, time) }
    }

    /// The class index of "no class" (∅), trained with probability `cond_drop_prob`.
    public var nullClass: Int? { settings.numClasses }

    public var children: [(name: String, module: Module)] {
        var list: [(name: String, module: Module)] = [("time_mlp", timeMLP)]
        list += encoder.enumerated().map { ("encoder.\($0.offset)", $0.element as Module) }
        list += downsample.enumerated().map { ("downsample.\($0.offset)", $0.element as Module) }
        list += upsample.enumerated().map { ("upsample.\($0.offset)", $0.element as Module) }
        list += decoder.enumerated().map { ("decoder.\($0.offset)", $0.element as Module) }
        list += attention.map { ("attention.\($0.name)", $0.block as Module) }
        list.append(("out", out))
        if let classEmbedding { list.append(("class_embedding", classEmbedding)) }
        return list
    }

    func attend(_ name: String, _ x: Variable) -> Variable {
        attention.first { $0.name == name }.map { $0.block(x) } ?? x
    }

    /// ε_θ(x_t, t) (or x_0 / x_{t-1}, and the variance part), for 0-based timesteps; a
    /// class-conditional model takes one class per image (`nullClass` for none; nil: none for all).
    /// An image-conditioned model takes its condition y ([N, conditionChannels, S, S]) beside x_t.
    public func callAsFunction(_ x: Variable, timesteps: [Int], classes: [Int]? = nil, condition: Tensor? = nil) -> Variable {
        precondition(timesteps.count == x.shape[0], "one timestep per image")
        precondition((condition == nil) == (settings.conditionChannels == 0), "an image-conditioned model needs its condition, and only it")
        var time = timeMLP(Variable(timestepEmbedding(timesteps, dimension: settings.baseChannels)))
        if let classEmbedding, let nullClass {
            time = Functional.add(time, classEmbedding(classes ?? Array(repeating: nullClass, count: timesteps.count)))
        }
        let embedding = Functional.silu(time)
        var skips: [Variable] = []
        var h = condition.map { Functional.concatChannels([x, Variable($0)]) } ?? x
        for (level, block) in encoder.enumerated() {
            if level > 0 { h = downsample[level - 1](h) }
            h = attend("enc\(level)", block(h, embedding: embedding))
            skips.append(h)
        }
        let levels = encoder.count
        for (index, block) in decoder.enumerated() {
            let level = levels - 2 - index
            h = attend("dec\(level)", block(upsample[index](h, skip: skips[level]), embedding: embedding))
        }
        return out(h)
    }
}
