// An SSDlite extractor on MobileNetV2 `features` cut into stages, as the shipped ssdlite_mobilenet_v2_shapes model (detectors/tools/shapes_models.py) builds it.
import Layers
import TensorCore

/// MobileNetV2 `features` cut into consecutive stages, followed by SSDlite extra blocks; every
/// stage and every extra block yields one feature map, highest resolution first.
///
/// Keys: `features.<stage>.<i>…` (each stage is an `nn.Sequential` of `features[a..<b]`, so its
/// layers are numbered from 0) and `extra.<block>.<0|1|2>.<0|1>` — per block a 1×1 conv to
/// half the output width, a 3×3 depthwise conv with stride 2 and a 1×1 conv to the output
/// width, each followed by batch norm and ReLU6, convs without bias (the blocks of
/// torchvision's SSDlite).
public final class SSDLiteFeatureExtractorMobileNetV2: StagedSSDFeatureExtractor {
    public let features: [Sequential]
    public let extra: [Sequential]
    public let outChannels: [Int]

    /// - Parameters:
    ///   - stages: half-open `[start, end]` ranges of `features` indices, consecutive from 0.
    ///   - extraOutChannels: output width of each extra block.
    ///   - normEps: batch-norm eps of the body; `extraNormEps` that of the extra blocks.
    /// - Throws: `UnsupportedModelError` naming `backbone.stages` or `backbone.extra_out_channels`.
    public init(widthMultiplier: Double, stages: [[Int]], extraOutChannels: [Int], normEps: Float,
                extraNormEps: Float) throws {
        let network = MobileNetV2(numClasses: nil, widthMultiplier: widthMultiplier, normEps: normEps)
        let layers = network.features.layers
        var next = 0
        var features: [Sequential] = []
        var channels: [Int] = []
        for stage in stages {
            guard stage.count == 2, stage[0] == next, stage[1] > stage[0], stage[1] <= layers.count else {
                throw UnsupportedModelError(
                    "backbone.stages \(stages): expected consecutive [start, end] ranges from 0 within the "
                    + "\(layers.count) mobilenet_v2 features")
            }
            features.append(Sequential(Array(layers[stage[0]..<stage[1]])))
            channels.append(network.featureChannels[stage[1] - 1])
            next = stage[1]
        }
        guard !features.isEmpty, !extraOutChannels.contains(where: { $0 < 2 }) else {
            throw UnsupportedModelError(
                "backbone.stages \(stages) / extra_out_channels \(extraOutChannels): need a stage and widths >= 2")
        }
        var extra: [Sequential] = []
        var input = channels[channels.count - 1]
        for output in extraOutChannels {
            let middle = output / 2
            extra.append(Sequential([
                convNormActivation(input, middle, kernelSize: 1, normEps: extraNormEps, activation: .relu6),
                convNormActivation(middle, middle, kernelSize: 3, stride: 2, groups: middle, normEps: extraNormEps,
                                   activation: .relu6),
                convNormActivation(middle, output, kernelSize: 1, normEps: extraNormEps, activation: .relu6),
            ]))
            input = output
        }
        self.features = features
        self.extra = extra
        outChannels = channels + extraOutChannels
    }
}
