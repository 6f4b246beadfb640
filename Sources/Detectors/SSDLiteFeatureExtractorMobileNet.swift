// torchvision's SSDLiteFeatureExtractorMobileNet (models/detection/ssdlite.py): MobileNetV3 cut inside C4, plus SSDlite's extra blocks (MobileNetV3 paper, section 6.3).
import Layers
import TensorCore

/// Six feature maps from a MobileNetV3 body and four extra blocks, as torchvision builds them
/// for `ssdlite320_mobilenet_v3_large`.
///
/// The body is cut at the C4 block `features[c4]` (the last `_is_cn` block, 13 for Large):
/// - `features.0` = `features[0..<c4]` then the C4 block's 1×1 expansion (`features.0.<c4>`);
///   map 0 is its output (672 channels at width 1).
/// - `features.1` = the rest of the C4 block (`features.1.0.1`, `.2`, `.3`: depthwise,
///   squeeze-excitation, projection; the names keep the block's own indices) followed by
///   `features[c4 + 1 ...]` (`features.1.1`, …); map 1 is its output (480 with the reduced tail).
/// - `extra.0…3`: 1×1 conv to half the width, 3×3 depthwise stride 2, 1×1 conv, each with
///   batch norm and ReLU6 (`extra.i.j.0` conv, `.1` norm), to 512, 256, 256, 128 channels times
///   `extraWidthMultiplier` (at least `minDepth`).
public final class SSDLiteFeatureExtractorMobileNet: StagedSSDFeatureExtractor {
    public let features: [Sequential]
    public let extra: [Sequential]
    public let outChannels: [Int]

    /// - Parameters:
    ///   - mobileNet: the body (built without classifier).
    ///   - extraWidthMultiplier, minDepth: torchvision's `width_mult` and `min_depth` of the
    ///     extractor (the builder leaves them at 1.0 and 16).
    ///   - normEps: batch-norm eps of the extra blocks.
    /// - Throws: `UnsupportedModelError` when the body has no C4 block to cut or that block
    ///   has a residual connection.
    public init(mobileNet: MobileNetV3, extraWidthMultiplier: Double = 1, minDepth: Int = 16, normEps: Float) throws {
        let layers = mobileNet.featureLayers
        guard let c4 = mobileNet.stageIndices.last, let cut = layers[c4] as? MobileNetV3InvertedResidual,
              !cut.useResidualConnection
        else {
            throw UnsupportedModelError("SSDlite: the MobileNetV3 body has no strided C4 block to cut")
        }
        let blockLayers = cut.block.layers
        // Sequential(*backbone[:c4], backbone[c4].block[0]) and
        // Sequential(backbone[c4].block[1:], *backbone[c4 + 1:]): the slice keeps indices 1, 2, ….
        features = [
            Sequential(layers[..<c4].map { Optional($0) } + [blockLayers[0]]),
            Sequential([Sequential([nil] + blockLayers.dropFirst())] + layers[(c4 + 1)...].map { Optional($0) }),
        ]
        func depth(_ channels: Int) -> Int { max(minDepth, Int(Double(channels) * extraWidthMultiplier)) }
        func block(_ input: Int, _ output: Int) -> Sequential {
            let middle = output / 2
            return Sequential([
                convNormActivation(input, middle, kernelSize: 1, normEps: normEps, activation: .relu6),
                convNormActivation(middle, middle, kernelSize: 3, stride: 2, groups: middle, normEps: normEps,
                                   activation: .relu6),
                convNormActivation(middle, output, kernelSize: 1, normEps: normEps, activation: .relu6),
            ])
        }
        let last = mobileNet.featureChannels[layers.count - 1]
        extra = [
            block(last, depth(512)),
            block(depth(512), depth(256)),
            block(depth(256), depth(256)),
            block(depth(256), depth(128)),
        ]
        outChannels = [cut.expandedChannels, last,
                       depth(512), depth(256), depth(256), depth(128)]
    }
}
