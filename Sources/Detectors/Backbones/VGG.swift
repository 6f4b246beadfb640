// torchvision.models.vgg (Simonyan & Zisserman 2015): the `features` stack of 3×3 convs, ReLUs and max pools.
import Layers
import TensorCore

/// `nn.MaxPool2d` as a layer of a Sequential (no parameters).
public final class MaxPool2d: Layer {
    public let kernelSize: Size2
    public let stride: Size2
    public let padding: Size2
    /// torch's `ceil_mode`: the output size rounds up (SSD patches VGG's third pool).
    public let ceilMode: Bool

    public init(kernelSize: Size2, stride: Size2, padding: Size2 = 0, ceilMode: Bool = false) {
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.ceilMode = ceilMode
    }

    public func callAsFunction(_ input: Tensor) -> Tensor {
        maxPool2d(input, kernelSize: kernelSize, stride: stride, padding: padding, ceilMode: ceilMode)
    }
}

/// torchvision's VGG `features` without batch norm (`make_layers(cfg, batch_norm=False)`):
/// each number of the configuration is a 3×3 conv with bias (padding 1) followed by a ReLU,
/// each pool a 2×2 stride-2 max pool. Children keep torchvision's indices, so VGG-16's convs
/// are `features.0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28` and its pools `4, 9, 16, 23, 30`.
public final class VGG: Layer {
    /// One entry of torchvision's `cfgs`.
    public enum Entry: Sendable, Equatable {
        case conv(Int)
        case maxPool
    }

    /// torchvision's configuration `"D"` (VGG-16).
    public static let vgg16: [Entry] = [
        .conv(64), .conv(64), .maxPool, .conv(128), .conv(128), .maxPool,
        .conv(256), .conv(256), .conv(256), .maxPool, .conv(512), .conv(512), .conv(512), .maxPool,
        .conv(512), .conv(512), .conv(512), .maxPool,
    ]

    public let features: Sequential
    /// Output channels of each entry of `features`.
    public let featureChannels: [Int]
    /// Indices of the max pools in `features` (VGG-16: 4, 9, 16, 23, 30).
    public let maxPoolIndices: [Int]

    /// - Parameters:
    ///   - configuration: convs and pools, as torchvision's `cfgs`.
    ///   - widthMultiplier: scales every conv width (`scaledChannels`). torchvision has no such
    ///     option (width 1); detq uses narrowed VGGs only for small test fixtures.
    ///   - ceilModePools: which pools (0 = the first) use `ceil_mode=True`.
    public init(configuration: [Entry] = VGG.vgg16, widthMultiplier: Double = 1, ceilModePools: Set<Int> = []) {
        var layers: [(any Layer)?] = []
        var channels: [Int] = []
        var pools: [Int] = []
        var inChannels = 3
        for entry in configuration {
            switch entry {
            case .conv(let width):
                let outChannels = Self.scaledChannels(width, widthMultiplier)
                layers.append(Conv2d(inChannels, outChannels, kernelSize: 3, padding: 1))
                layers.append(Activation(.relu))
                channels += [outChannels, outChannels]
                inChannels = outChannels
            case .maxPool:
                layers.append(MaxPool2d(kernelSize: 2, stride: 2, ceilMode: ceilModePools.contains(pools.count)))
                pools.append(layers.count - 1)
                channels.append(inChannels)
            }
        }
        features = Sequential(layers)
        featureChannels = channels
        maxPoolIndices = pools
    }

    public var children: [(name: String, module: any Module)] { [("features", features)] }

    /// The entries of `features` in order (every index is present).
    public var featureLayers: [any Layer] { features.layers.compactMap { $0 } }

    /// The last feature map `[N, C, H', W']` for `input` `[N, 3, H, W]`.
    public func callAsFunction(_ input: Tensor) -> Tensor { features(input) }

    /// `max(1, round(channels · widthMultiplier))`: the width of a narrowed layer.
    public static func scaledChannels(_ channels: Int, _ widthMultiplier: Double) -> Int {
        max(1, Int((Double(channels) * widthMultiplier).rounded()))
    }
}
