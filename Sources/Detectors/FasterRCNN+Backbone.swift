// torchvision's _mobilenet_extractor(fpn=True) (models/detection/backbone_utils.py) for Faster R-CNN's MobileNetV3-Large body.
import Layers
import TensorCore

extension FasterRCNN {
    /// The body and FPN `config` describes: `mobilenet_v3_large` as
    /// `fasterrcnn_mobilenet_v3_large_fpn` builds it, every other body through
    /// `BackboneWithFPN.make`.
    ///
    /// torchvision's extractor cuts MobileNetV3's `features` into stages at
    /// `[0] + (blocks with _is_cn) + [last]` (Large: 0, 2, 4, 7, 13, 16) and by default returns
    /// the last two (`features.13`, `features.16`); `returned_layers` here lists those feature
    /// indices directly.
    static func makeBackbone(_ config: BackboneConfig) throws -> BackboneWithFPN {
        guard config.name == "mobilenet_v3_large" else { return try BackboneWithFPN.make(config) }
        let network = MobileNetV3(variant: .large, numClasses: nil, widthMultiplier: config.widthMult ?? 1,
                                  reducedTail: config.reducedTail ?? false, dilated: config.dilated ?? false,
                                  normEps: config.batchNormEps ?? 1e-5)
        let last = network.featureChannels.count - 1
        let stages = [0] + network.stageIndices + [last]
        let returned = config.returnedLayers ?? [stages[stages.count - 2], last]
        guard !returned.isEmpty, returned == returned.sorted(), Set(returned).count == returned.count,
              returned.allSatisfy({ (0...last).contains($0) }) else {
            throw UnsupportedModelError(
                "backbone.returned_layers \(returned) must be increasing indices into mobilenet_v3_large features (0…\(last))")
        }
        let inChannels = returned.map { network.featureChannels[$0] }
        if let declared = config.inChannels, declared != inChannels {
            throw UnsupportedModelError("backbone.in_channels \(declared) disagrees with the body's \(inChannels)")
        }
        guard let width = config.fpnOutChannels else {
            throw UnsupportedModelError("backbone.fpn_out_channels is required for an FPN backbone")
        }
        guard (config.extraBlocks ?? "maxpool") == "maxpool" else {
            throw UnsupportedModelError("backbone.extra_blocks '\(config.extraBlocks ?? "")': the MobileNetV3 FPN body has maxpool")
        }
        let body = SequentialBody(layers: network.featureLayers, returnIndices: returned)
        let fpn = FeaturePyramidNetwork(inChannels: inChannels, outChannels: width, extraBlock: .maxPool,
                                        normEps: (config.fpnBatchNorm ?? false) ? 1e-5 : nil)
        return BackboneWithFPN(body: body, fpn: fpn)
    }
}
