// torchvision's BackboneWithFPN: an IntermediateLayerGetter body (`backbone.body`) and an FPN (`backbone.fpn`).
import Layers
import TensorCore

/// A body that returns several intermediate feature maps, highest resolution first.
public protocol FeatureBody: Module {
    func features(_ input: Tensor) -> [Tensor]
}

/// ResNet as a detection body: returns the outputs of the stages in `returnedLayers` (1…4).
public final class ResNetBody: FeatureBody {
    public let resnet: ResNet
    public let returnedLayers: [Int]

    public init(returnedLayers: [Int], normEps: Float) {
        resnet = ResNet(blocks: [3, 4, 6, 3], numClasses: nil, normEps: normEps)
        self.returnedLayers = returnedLayers
    }

    /// Keys are the ResNet's own (`conv1`, `layer1.0.conv1`, …): the getter adds no level.
    public var children: [(name: String, module: any Module)] { resnet.children }
    public var batchNormPairs: [(conv: Conv2d, norm: BatchNorm2d)] { resnet.batchNormPairs }

    public var outChannels: [Int] { returnedLayers.map { ResNet.stageChannels[$0 - 1] } }

    public func features(_ input: Tensor) -> [Tensor] {
        let stages = resnet.stages(input)
        return returnedLayers.map { stages[$0 - 1] }
    }
}

/// A sequential body (MobileNet `features`) cut after its last returned index, as
/// `IntermediateLayerGetter` does: children keep their indices (`0`, `1`, …).
public final class SequentialBody: FeatureBody {
    public let layers: [any Layer]
    public let returnIndices: [Int]

    public init(layers: [any Layer], returnIndices: [Int]) {
        precondition(returnIndices == returnIndices.sorted() && (returnIndices.last ?? 0) < layers.count,
                     "SequentialBody: return indices \(returnIndices) for \(layers.count) layers")
        self.layers = Array(layers.prefix((returnIndices.last ?? -1) + 1))
        self.returnIndices = returnIndices
    }

    public var children: [(name: String, module: any Module)] {
        layers.enumerated().map { (String($0.offset), $0.element as any Module) }
    }

    public func features(_ input: Tensor) -> [Tensor] {
        var x = input
        var outputs: [Tensor] = []
        for (index, layer) in layers.enumerated() {
            x = layer(x)
            if returnIndices.contains(index) { outputs.append(x) }
        }
        return outputs
    }
}

/// `backbone.body` + `backbone.fpn`: pyramid levels for the heads, highest resolution first.
public final class BackboneWithFPN: Module {
    public let body: any FeatureBody
    public let fpn: FeaturePyramidNetwork

    public init(body: any FeatureBody, fpn: FeaturePyramidNetwork) {
        self.body = body
        self.fpn = fpn
    }

    public var children: [(name: String, module: any Module)] { [("body", body), ("fpn", fpn)] }

    public func callAsFunction(_ input: Tensor) -> [Tensor] {
        fpn(body.features(input))
    }

    /// Builds the body and FPN a config describes (ResNet-50 or MobileNetV2 bodies).
    public static func make(_ config: BackboneConfig) throws -> BackboneWithFPN {
        let eps = config.batchNormEps ?? 1e-5
        let body: any FeatureBody
        let inChannels: [Int]
        switch config.name {
        case "resnet50":
            let resnetBody = ResNetBody(returnedLayers: config.returnedLayers ?? [1, 2, 3, 4], normEps: eps)
            body = resnetBody
            inChannels = resnetBody.outChannels
        case "mobilenet_v2":
            guard let returned = config.returnedLayers else {
                throw UnsupportedModelError("backbone mobilenet_v2 needs returned_layers (indices into features)")
            }
            let network = MobileNetV2(numClasses: nil, widthMultiplier: config.widthMult ?? 1, normEps: eps)
            body = SequentialBody(layers: network.features.layers.compactMap { $0 }, returnIndices: returned)
            inChannels = returned.map { network.featureChannels[$0] }
        default:
            throw UnsupportedModelError("backbone '\(config.name)' has no FPN body in detq (resnet50, mobilenet_v2)")
        }
        if let declared = config.inChannels, declared != inChannels {
            throw UnsupportedModelError("backbone.in_channels \(declared) disagrees with the body's \(inChannels)")
        }
        guard let width = config.fpnOutChannels else {
            throw UnsupportedModelError("backbone.fpn_out_channels is required for an FPN backbone")
        }
        let extra: ExtraFPNBlock
        switch config.extraBlocks ?? "maxpool" {
        case "maxpool": extra = .maxPool
        case "p6p7": extra = .p6p7(inChannels: config.p6p7InChannels ?? width)
        case "none": extra = .none
        case let other: throw UnsupportedModelError("backbone.extra_blocks '\(other)' (maxpool, p6p7, none)")
        }
        let fpn = FeaturePyramidNetwork(inChannels: inChannels, outChannels: width, extraBlock: extra,
                                        normEps: (config.fpnBatchNorm ?? false) ? 1e-5 : nil)
        return BackboneWithFPN(body: body, fpn: fpn)
    }
}
