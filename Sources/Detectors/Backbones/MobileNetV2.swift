// torchvision.models.mobilenetv2: inverted residual blocks with linear bottlenecks (Sandler et al. 2018).
import Layers
import TensorCore

/// torchvision's `_make_divisible`: round to the nearest multiple of `divisor`, never more
/// than 10 % below `value`.
public func makeDivisible(_ value: Double, _ divisor: Int, minimum: Int? = nil) -> Int {
    let minValue = minimum ?? divisor
    var result = max(minValue, Int(value + Double(divisor) / 2) / divisor * divisor)
    if Double(result) < 0.9 * value { result += divisor }
    return result
}

/// Conv → BatchNorm → activation, as torchvision's `Conv2dNormActivation` (a Sequential whose
/// children are named 0, 1, 2). Padding is `(k - 1) / 2 · dilation`; the conv has no bias.
public func convNormActivation(_ inChannels: Int, _ outChannels: Int, kernelSize: Int = 3, stride: Int = 1,
                               groups: Int = 1, dilation: Int = 1, normEps: Float = 1e-5,
                               activation: Activation.Kind?) -> Sequential {
    let padding = (kernelSize - 1) / 2 * dilation
    return Sequential([
        Conv2d(inChannels, outChannels, kernelSize: Size2(kernelSize), stride: Size2(stride),
               padding: Size2(padding), dilation: Size2(dilation), groups: groups, bias: false),
        BatchNorm2d(outChannels, eps: normEps),
        activation.map { Activation($0) },
    ])
}

/// torchvision's MobileNetV2 `InvertedResidual`: optional 1×1 expansion, 3×3 depthwise,
/// 1×1 linear projection, identity shortcut when the shape is kept.
public final class InvertedResidual: Layer {
    public let conv: Sequential
    public let useResidual: Bool

    public init(inChannels: Int, outChannels: Int, stride: Int, expandRatio: Int, normEps: Float = 1e-5) {
        let hidden = inChannels * expandRatio
        var layers: [(any Layer)?] = []
        if expandRatio != 1 {
            layers.append(convNormActivation(inChannels, hidden, kernelSize: 1, normEps: normEps, activation: .relu6))
        }
        layers.append(convNormActivation(hidden, hidden, stride: stride, groups: hidden, normEps: normEps,
                                         activation: .relu6))
        layers.append(Conv2d(hidden, outChannels, kernelSize: 1, bias: false))
        layers.append(BatchNorm2d(outChannels, eps: normEps))
        conv = Sequential(layers)
        useResidual = stride == 1 && inChannels == outChannels
    }

    public var children: [(name: String, module: any Module)] { [("conv", conv)] }

    public func callAsFunction(_ input: Tensor) -> Tensor {
        let out = conv(input)
        return useResidual ? add(input, out) : out
    }
}

/// MobileNetV2 (width 1.0): `features` (19 stages, indices as torchvision's) and a linear
/// classifier (`classifier.1`).
public final class MobileNetV2: Layer {
    public let features: Sequential
    /// `classifier.1`; nil when used as a detection body.
    public let classifier: Sequential?
    /// Output channels of each entry of `features`.
    public let featureChannels: [Int]

    public init(numClasses: Int? = 1000, widthMultiplier: Double = 1.0, normEps: Float = 1e-5) {
        let settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                        (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
        var inputChannels = makeDivisible(32 * widthMultiplier, 8)
        let lastChannels = makeDivisible(1280 * max(1.0, widthMultiplier), 8)
        var layers: [(any Layer)?] = [convNormActivation(3, inputChannels, stride: 2, normEps: normEps,
                                                         activation: .relu6)]
        var channels = [inputChannels]
        for (t, c, n, s) in settings {
            let outputChannels = makeDivisible(Double(c) * widthMultiplier, 8)
            for index in 0..<n {
                layers.append(InvertedResidual(inChannels: inputChannels, outChannels: outputChannels,
                                               stride: index == 0 ? s : 1, expandRatio: t, normEps: normEps))
                inputChannels = outputChannels
                channels.append(outputChannels)
            }
        }
        layers.append(convNormActivation(inputChannels, lastChannels, kernelSize: 1, normEps: normEps,
                                         activation: .relu6))
        channels.append(lastChannels)
        features = Sequential(layers)
        featureChannels = channels
        // classifier.0 is Dropout: no parameters, identity at inference.
        classifier = numClasses.map { Sequential([nil, Linear(lastChannels, $0)]) }
    }

    public var children: [(name: String, module: any Module)] {
        var list: [(name: String, module: any Module)] = [("features", features)]
        if let classifier { list.append(("classifier", classifier)) }
        return list
    }

    /// Class logits `[N, numClasses]` (requires the classifier).
    public func callAsFunction(_ input: Tensor) -> Tensor {
        guard let classifier else { preconditionFailure("MobileNetV2 built without a classifier") }
        let x = features(input)
        let pooled = adaptiveAvgPool2d(x, outputSize: 1)
        return classifier(pooled.reshaped([x.shape[0], -1]))
    }
}
