// torchvision's SSDFeatureExtractorVGG (models/detection/ssd.py): SSD300's VGG-16 base network and extra layers (Liu et al. 2016, Fig. 2).
import Layers
import TensorCore

/// The six SSD300 feature maps from a VGG-16 `[N, 3, 300, 300]` → 38, 19, 10, 5, 3, 1 cells.
///
/// - `features` (`backbone.features.0…22`): VGG-16 up to conv4_3 and its ReLU, the third pool
///   in ceil mode. Map 0 is its output L2-normalised over channels and scaled by
///   `scale_weight` (`[512]`, initialised to 20).
/// - `extra.0`: pool4, conv5_1…5_3 (`extra.0.0…6`), then `extra.0.7`: pool5 as 3×3 stride 1
///   padding 1, conv6 (3×3, dilation 6, padding 6, 1024) + ReLU, conv7 (1×1, 1024) + ReLU.
/// - `extra.1…4`: 1×1 conv + ReLU, then 3×3 conv + ReLU (stride 2 padding 1 for the first two,
///   no padding for the last two): conv8_2 (512), conv9_2, conv10_2, conv11_2 (256).
///
/// `widthMultiplier` narrows every layer (detq test fixtures only; torchvision builds width 1).
public final class SSDFeatureExtractorVGG: SSDFeatureExtractor {
    public let features: Sequential
    public var scaleWeight: Tensor
    public let extra: [Sequential]
    public let outChannels: [Int]

    public init(widthMultiplier: Double = 1) {
        func scaled(_ channels: Int) -> Int { VGG.scaledChannels(channels, widthMultiplier) }
        // SSD patches ceil_mode into the third max pool (features.16) for 38×38 at conv4_3.
        let vgg = VGG(configuration: VGG.vgg16, widthMultiplier: widthMultiplier, ceilModePools: [2])
        let layers = vgg.featureLayers
        let pool4 = vgg.maxPoolIndices[3]
        features = Sequential(layers[..<pool4].map { Optional($0) })
        let conv43 = vgg.featureChannels[pool4 - 1]
        scaleWeight = Tensor(repeating: 20, shape: [conv43])

        let conv53 = vgg.featureChannels[layers.count - 2]
        let fc = Sequential([
            MaxPool2d(kernelSize: 3, stride: 1, padding: 1),
            Conv2d(conv53, scaled(1024), kernelSize: 3, padding: 6, dilation: 6),  // fc6, atrous
            Activation(.relu),
            Conv2d(scaled(1024), scaled(1024), kernelSize: 1),  // fc7
            Activation(.relu),
        ])
        // until conv5_3 and its ReLU: pool5 is replaced by the one in `fc`
        let base = Sequential(layers[pool4..<(layers.count - 1)].map { Optional($0) } + [fc])
        func block(_ input: Int, _ middle: Int, _ output: Int, stride: Int, padding: Int) -> Sequential {
            Sequential([
                Conv2d(input, middle, kernelSize: 1),
                Activation(.relu),
                Conv2d(middle, output, kernelSize: 3, stride: Size2(stride), padding: Size2(padding)),
                Activation(.relu),
            ])
        }
        extra = [
            base,
            block(scaled(1024), scaled(256), scaled(512), stride: 2, padding: 1),  // conv8_2
            block(scaled(512), scaled(128), scaled(256), stride: 2, padding: 1),  // conv9_2
            block(scaled(256), scaled(128), scaled(256), stride: 1, padding: 0),  // conv10_2
            block(scaled(256), scaled(128), scaled(256), stride: 1, padding: 0),  // conv11_2
        ]
        outChannels = [conv43, scaled(1024), scaled(512), scaled(256), scaled(256), scaled(256)]
    }

    public var children: [(name: String, module: any Module)] {
        [("features", features)] + extra.enumerated().map { ("extra.\($0.offset)", $0.element as any Module) }
    }

    public var ownParameters: [(name: String, tensor: Tensor)] { [("scale_weight", scaleWeight)] }

    public func loadOwnParameters(from loader: ParameterLoader, prefix: String) {
        if let weight = loader.take(prefix + "scale_weight", shape: scaleWeight.shape) { scaleWeight = weight }
    }

    /// VGG-16 through conv5_3 and fc6/fc7 (`extra.0`) is the paper's base network; only
    /// conv8_2…conv11_2 are its extra feature layers.
    public var partPrefixes: [(prefix: String, part: DetectorPart)] {
        [("features", .backbone), ("extra.0", .backbone), ("extra", .neck)]
    }

    public func featureMaps(_ input: Tensor) -> [Tensor] {
        var x = features(input)
        // L2 regularisation + rescaling of conv4_3
        var outputs = [l2Normalize(x, scale: scaleWeight)]
        for block in extra {
            x = block(x)
            outputs.append(x)
        }
        return outputs
    }
}
