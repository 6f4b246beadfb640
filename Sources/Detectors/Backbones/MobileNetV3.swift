// torchvision.models.mobilenetv3 (Howard et al. 2019, "Searching for MobileNetV3"): inverted residuals with squeeze-excitation and hard-swish.
import Layers
import TensorCore

/// torchvision's `SqueezeExcitation` as MobileNetV3 uses it: global average pool → `fc1`
/// (1×1 conv) → ReLU → `fc2` (1×1 conv) → hard sigmoid, multiplied into the input
/// `[N, C, H, W]` channel by channel.
public final class SqueezeExcitation: Layer {
    public let fc1: Conv2d
    public let fc2: Conv2d

    public init(inputChannels: Int, squeezeChannels: Int) {
        fc1 = Conv2d(inputChannels, squeezeChannels, kernelSize: 1)
        fc2 = Conv2d(squeezeChannels, inputChannels, kernelSize: 1)
    }

    public var children: [(name: String, module: any Module)] { [("fc1", fc1), ("fc2", fc2)] }

    public func callAsFunction(_ input: Tensor) -> Tensor {
        let pooled = adaptiveAvgPool2d(input, outputSize: 1)
        let scale = hardsigmoid(fc2(relu(fc1(pooled))))
        // [N, C, H, W] · [N, C, 1, 1]
        return multiply(scale, input)
    }
}

/// One row of MobileNetV3's block table (torchvision's `InvertedResidualConfig`, the paper's
/// Tables 1 and 2), with the channels already adjusted to the width multiplier.
public struct MobileNetV3BlockSetting: Sendable, Equatable {
    public var inputChannels: Int
    public var kernel: Int
    public var expandedChannels: Int
    public var outChannels: Int
    public var useSqueezeExcitation: Bool
    /// Hard-swish (`"HS"`) rather than ReLU (`"RE"`).
    public var useHardswish: Bool
    /// The configured stride (kept at 2 when the block is dilated instead).
    public var stride: Int
    public var dilation: Int

    /// A row as torchvision writes it (`bneck_conf(16, 3, 64, 24, False, "RE", 2, 1)`), channels
    /// scaled by `widthMultiplier` with `_make_divisible(c · width, 8)`.
    public init(_ inputChannels: Int, _ kernel: Int, _ expandedChannels: Int, _ outChannels: Int,
                _ useSqueezeExcitation: Bool, _ activation: String, _ stride: Int, _ dilation: Int,
                widthMultiplier: Double) {
        self.inputChannels = makeDivisible(Double(inputChannels) * widthMultiplier, 8)
        self.kernel = kernel
        self.expandedChannels = makeDivisible(Double(expandedChannels) * widthMultiplier, 8)
        self.outChannels = makeDivisible(Double(outChannels) * widthMultiplier, 8)
        self.useSqueezeExcitation = useSqueezeExcitation
        self.useHardswish = activation == "HS"
        self.stride = stride
        self.dilation = dilation
    }
}

/// torchvision's MobileNetV3 `InvertedResidual`: `block` is a Sequential of an optional 1×1
/// expansion (when the expanded width differs from the input), the k×k depthwise conv
/// (stride 1 when dilated), an optional squeeze-excitation, and the linear 1×1 projection; all
/// convs are `Conv2dNormActivation` (`block.i.0` conv, `block.i.1` batch norm). The input is
/// added back when stride is 1 and the width is kept.
public final class MobileNetV3InvertedResidual: Layer {
    public let block: Sequential
    public let useResidualConnection: Bool
    public let outChannels: Int
    /// Width of the depthwise conv (and of the expansion, when there is one).
    public let expandedChannels: Int
    /// torchvision's `_is_cn`: the block opens a new stage (configured stride > 1, dilated or not).
    public let isStageStart: Bool

    public init(_ setting: MobileNetV3BlockSetting, normEps: Float) {
        let activation: Activation.Kind = setting.useHardswish ? .hardswish : .relu
        var layers: [(any Layer)?] = []
        if setting.expandedChannels != setting.inputChannels {
            layers.append(convNormActivation(setting.inputChannels, setting.expandedChannels, kernelSize: 1,
                                             normEps: normEps, activation: activation))
        }
        layers.append(convNormActivation(setting.expandedChannels, setting.expandedChannels,
                                         kernelSize: setting.kernel,
                                         stride: setting.dilation > 1 ? 1 : setting.stride,
                                         groups: setting.expandedChannels, dilation: setting.dilation,
                                         normEps: normEps, activation: activation))
        if setting.useSqueezeExcitation {
            layers.append(SqueezeExcitation(inputChannels: setting.expandedChannels,
                                            squeezeChannels: makeDivisible(Double(setting.expandedChannels / 4), 8)))
        }
        layers.append(convNormActivation(setting.expandedChannels, setting.outChannels, kernelSize: 1,
                                         normEps: normEps, activation: nil))
        block = Sequential(layers)
        useResidualConnection = setting.stride == 1 && setting.inputChannels == setting.outChannels
        outChannels = setting.outChannels
        expandedChannels = setting.expandedChannels
        isStageStart = setting.stride > 1
    }

    public var children: [(name: String, module: any Module)] { [("block", block)] }

    public func callAsFunction(_ input: Tensor) -> Tensor {
        let result = block(input)
        return useResidualConnection ? add(result, input) : result
    }
}

/// torchvision's `MobileNetV3` (`mobilenet_v3_large` / `mobilenet_v3_small`).
///
/// `features` keeps torchvision's indices: `features.0` is the stem (3×3 stride-2 conv, batch
/// norm, hard-swish), `features.1 … features.n` the inverted residual blocks of the table, and
/// the last entry the 1×1 conv to `6 ×` the last block's width (hard-swish). For Large that is
/// 17 entries (0…16), the blocks at `stageIndices` = [2, 4, 7, 13] opening new stages.
/// Detection bodies take `[0] + stageIndices + [features.count - 1]` as torchvision's
/// `_mobilenet_extractor` does (Faster R-CNN FPN: outputs of `features.13` and `features.16`,
/// 160 and 960 channels; SSDlite: split inside `features.13`). Batch-norm eps: 0.001 is
/// MobileNetV3's own default and SSDlite's; `fasterrcnn_mobilenet_v3_large_fpn` passes
/// `BatchNorm2d` / `FrozenBatchNorm2d` explicitly, so it runs with 1e-5.
public final class MobileNetV3: Layer {
    public enum Variant: String, Sendable, Codable {
        case large, small
    }

    public let features: Sequential
    /// Output channels of each entry of `features` (torchvision's `.out_channels`).
    public let featureChannels: [Int]
    /// Indices into `features` of the blocks with `_is_cn` (strided in the table).
    public let stageIndices: [Int]
    /// `classifier.0` Linear, `.1` hard-swish, `.2` dropout (identity), `.3` Linear; nil for a body.
    public let classifier: Sequential?

    /// - Parameters:
    ///   - widthMultiplier: torchvision's `width_mult` (channels `_make_divisible(c · w, 8)`).
    ///   - reducedTail: halve the channels of the last stage (`reduced_tail`; SSDlite's
    ///     detection builders set it when no ImageNet backbone is loaded, which includes
    ///     loading a COCO checkpoint).
    ///   - dilated: dilation 2 instead of stride 2 in the last stage (`dilated`).
    ///   - normEps: batch-norm eps (torchvision's MobileNetV3 default 0.001).
    public init(variant: Variant = .large, numClasses: Int? = 1000, widthMultiplier: Double = 1.0,
                reducedTail: Bool = false, dilated: Bool = false, normEps: Float = 0.001) {
        let settings = Self.blockSettings(variant, widthMultiplier: widthMultiplier, reducedTail: reducedTail,
                                          dilated: dilated)
        let reduceDivider = reducedTail ? 2 : 1
        let stemChannels = settings[0].inputChannels
        var layers: [(any Layer)?] = [convNormActivation(3, stemChannels, stride: 2, normEps: normEps,
                                                         activation: .hardswish)]
        var channels = [stemChannels]
        var stages: [Int] = []
        for setting in settings {
            let block = MobileNetV3InvertedResidual(setting, normEps: normEps)
            if block.isStageStart { stages.append(layers.count) }
            layers.append(block)
            channels.append(setting.outChannels)
        }
        let lastInput = settings[settings.count - 1].outChannels
        let lastOutput = 6 * lastInput
        layers.append(convNormActivation(lastInput, lastOutput, kernelSize: 1, normEps: normEps, activation: .hardswish))
        channels.append(lastOutput)
        features = Sequential(layers)
        featureChannels = channels
        stageIndices = stages
        let lastChannel = makeDivisible(Double((variant == .large ? 1280 : 1024) / reduceDivider) * widthMultiplier, 8)
        classifier = numClasses.map {
            Sequential([Linear(lastOutput, lastChannel), Activation(.hardswish), nil, Linear(lastChannel, $0)])
        }
    }

    public var children: [(name: String, module: any Module)] {
        var list: [(name: String, module: any Module)] = [("features", features)]
        if let classifier { list.append(("classifier", classifier)) }
        return list
    }

    /// The entries of `features` in order, as layers (every index is present).
    public var featureLayers: [any Layer] { features.layers.compactMap { $0 } }

    /// Class logits `[N, numClasses]` for `input` `[N, 3, H, W]` (requires the classifier).
    public func callAsFunction(_ input: Tensor) -> Tensor {
        guard let classifier else { preconditionFailure("MobileNetV3 built without a classifier") }
        let x = features(input)
        let pooled = adaptiveAvgPool2d(x, outputSize: 1)
        return classifier(pooled.reshaped([x.shape[0], -1]))
    }

    /// torchvision's `_mobilenet_v3_conf` block table.
    public static func blockSettings(_ variant: Variant, widthMultiplier: Double = 1.0, reducedTail: Bool = false,
                                     dilated: Bool = false) -> [MobileNetV3BlockSetting] {
        let r = reducedTail ? 2 : 1
        let d = dilated ? 2 : 1
        func row(_ input: Int, _ kernel: Int, _ expanded: Int, _ out: Int, _ se: Bool, _ activation: String,
                 _ stride: Int, _ dilation: Int) -> MobileNetV3BlockSetting {
            MobileNetV3BlockSetting(input, kernel, expanded, out, se, activation, stride, dilation,
                                    widthMultiplier: widthMultiplier)
        }
        switch variant {
        case .large:
            return [
                row(16, 3, 16, 16, false, "RE", 1, 1),
                row(16, 3, 64, 24, false, "RE", 2, 1),  // C1
                row(24, 3, 72, 24, false, "RE", 1, 1),
                row(24, 5, 72, 40, true, "RE", 2, 1),  // C2
                row(40, 5, 120, 40, true, "RE", 1, 1),
                row(40, 5, 120, 40, true, "RE", 1, 1),
                row(40, 3, 240, 80, false, "HS", 2, 1),  // C3
                row(80, 3, 200, 80, false, "HS", 1, 1),
                row(80, 3, 184, 80, false, "HS", 1, 1),
                row(80, 3, 184, 80, false, "HS", 1, 1),
                row(80, 3, 480, 112, true, "HS", 1, 1),
                row(112, 3, 672, 112, true, "HS", 1, 1),
                row(112, 5, 672, 160 / r, true, "HS", 2, d),  // C4
                row(160 / r, 5, 960 / r, 160 / r, true, "HS", 1, d),
                row(160 / r, 5, 960 / r, 160 / r, true, "HS", 1, d),
            ]
        case .small:
            return [
                row(16, 3, 16, 16, true, "RE", 2, 1),  // C1
                row(16, 3, 72, 24, false, "RE", 2, 1),  // C2
                row(24, 3, 88, 24, false, "RE", 1, 1),
                row(24, 5, 96, 40, true, "HS", 2, 1),  // C3
                row(40, 5, 240, 40, true, "HS", 1, 1),
                row(40, 5, 240, 40, true, "HS", 1, 1),
                row(40, 5, 120, 48, true, "HS", 1, 1),
                row(48, 5, 144, 48, true, "HS", 1, 1),
                row(48, 5, 288, 96 / r, true, "HS", 2, d),  // C4
                row(96 / r, 5, 576 / r, 96 / r, true, "HS", 1, d),
                row(96 / r, 5, 576 / r, 96 / r, true, "HS", 1, d),
            ]
        }
    }
}
