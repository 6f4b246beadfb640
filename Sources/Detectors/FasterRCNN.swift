// torchvision 0.14's FasterRCNN (models/detection/faster_rcnn.py, generalized_rcnn.py; Ren et al. 2015) at inference.
import BoxOps
import Layers
import TensorCore

/// Faster R-CNN as torchvision composes it: `backbone` (body + FPN) → `rpn` (proposals) →
/// `roi_heads` (RoIAlign, box head, predictor, postprocess), behind
/// `GeneralizedRCNNTransform`. One type covers `fasterrcnn_resnet50_fpn`,
/// `fasterrcnn_resnet50_fpn_v2` and `fasterrcnn_mobilenet_v3_large_fpn`; the config decides
/// the body, the FPN's batch norm, the RPN head's depth and the box head.
///
/// State-dict keys are torchvision's: `backbone.body.*`, `backbone.fpn.*`,
/// `rpn.head.conv.{i}.0.*`, `rpn.head.cls_logits.*`, `rpn.head.bbox_pred.*`,
/// `roi_heads.box_head.*`, `roi_heads.box_predictor.{cls_score,bbox_pred}.*`.
public final class FasterRCNN: Detector {
    public let backbone: BackboneWithFPN
    public let rpn: RegionProposalNetwork
    public let roiHeads: RoIHeads
    public let transform: DetectionTransform
    /// The pyramid level names, in order: the body's returned layers `"0"`, `"1"`, … then
    /// `"pool"` (LastLevelMaxPool).
    public let levelNames: [String]

    /// Builds the network `config` describes (family `fasterrcnn`); weights are not loaded.
    /// - Throws: `UnsupportedModelError` naming the config field that is missing or invalid.
    public init(_ config: DetectorConfig) throws {
        let name = config.architecture
        guard let rpnConfig = config.rpn else {
            throw UnsupportedModelError("\(name): a fasterrcnn config needs an 'rpn' section")
        }
        guard let roiConfig = config.roiHeads else {
            throw UnsupportedModelError("\(name): a fasterrcnn config needs a 'roi_heads' section")
        }
        guard let sizes = config.anchorSizes, let ratios = config.aspectRatios else {
            throw UnsupportedModelError("\(name): a fasterrcnn config needs 'anchor_sizes' and 'aspect_ratios'")
        }
        guard let width = config.backbone.fpnOutChannels else {
            throw UnsupportedModelError("\(name): backbone.fpn_out_channels is required for Faster R-CNN")
        }
        try Self.check(config.numClasses >= 1, "num_classes must be at least 1, got \(config.numClasses)", name)
        try Self.check(config.detectionsPerImg >= 0, "detections_per_img must be >= 0", name)
        try Self.check(rpnConfig.preNmsTopNTest > 0, "rpn.pre_nms_top_n_test must be > 0", name)
        try Self.check(rpnConfig.postNmsTopNTest > 0, "rpn.post_nms_top_n_test must be > 0", name)
        try Self.check((rpnConfig.convDepth ?? 1) >= 0, "rpn.conv_depth must be >= 0", name)
        try Self.check(roiConfig.outputSize > 0, "roi_heads.output_size must be > 0", name)
        try Self.check(roiConfig.representationSize > 0, "roi_heads.representation_size must be > 0", name)

        backbone = try Self.makeBackbone(config.backbone)
        var names = backbone.fpn.innerBlocks.indices.map(String.init)
        switch backbone.fpn.extraBlock {
        case .maxPool: names.append("pool")
        case .p6p7: names += ["p6", "p7"]
        case .none: break
        }
        levelNames = names
        guard sizes.count == names.count else {
            throw UnsupportedModelError(
                "\(name): anchor_sizes has \(sizes.count) levels but the FPN returns \(names.count) (\(names))")
        }
        let anchors = try AnchorGenerator(sizes: sizes, aspectRatios: ratios)
        guard Set(anchors.anchorsPerLocation).count == 1 else {
            throw UnsupportedModelError(
                "\(name): the RPN head needs the same number of anchors per location on every level, "
                + "anchor_sizes/aspect_ratios give \(anchors.anchorsPerLocation)")
        }
        rpn = RegionProposalNetwork(inChannels: width, anchorGenerator: anchors, convDepth: rpnConfig.convDepth ?? 1,
                                    preNmsTopN: rpnConfig.preNmsTopNTest, postNmsTopN: rpnConfig.postNmsTopNTest,
                                    nmsThreshold: rpnConfig.nmsThresh, scoreThreshold: rpnConfig.scoreThresh)

        // MultiScaleRoIAlign keeps the levels whose names are listed, in pyramid order.
        let pooledLevels = names.indices.filter { roiConfig.featmapNames.contains(names[$0]) }
        guard !pooledLevels.isEmpty else {
            throw UnsupportedModelError(
                "\(name): roi_heads.featmap_names \(roiConfig.featmapNames) names none of the pyramid levels \(names)")
        }
        let resolution = roiConfig.outputSize
        let boxHead: any RoIBoxHead
        switch roiConfig.boxHead {
        case "two_mlp":
            boxHead = RoIHeads.TwoMLPHead(inFeatures: width * resolution * resolution,
                                          representationSize: roiConfig.representationSize)
        case "conv_fc":
            guard let convLayers = roiConfig.convLayers, let fcLayers = roiConfig.fcLayers else {
                throw UnsupportedModelError("\(name): roi_heads.box_head conv_fc needs conv_layers and fc_layers")
            }
            guard fcLayers.last == roiConfig.representationSize, !convLayers.contains(where: { $0 <= 0 }),
                  !fcLayers.contains(where: { $0 <= 0 }) else {
                throw UnsupportedModelError(
                    "\(name): roi_heads.fc_layers \(fcLayers) must be positive and end with representation_size "
                    + "\(roiConfig.representationSize); conv_layers \(convLayers) must be positive")
            }
            boxHead = RoIHeads.ConvFCHead(inChannels: width, height: resolution, width: resolution,
                                          convLayers: convLayers, fcLayers: fcLayers,
                                          batchNorm: roiConfig.convBatchNorm ?? false)
        case let other:
            throw UnsupportedModelError("\(name): roi_heads.box_head '\(other)' (two_mlp, conv_fc)")
        }
        let boxCoder: BoxCoder
        do {
            boxCoder = try BoxCoder(weights: roiConfig.boxCoderWeights ?? [10, 10, 5, 5],
                                    field: "roi_heads.box_coder_weights")
        } catch {
            throw UnsupportedModelError("\(name): \(error)")
        }
        roiHeads = RoIHeads(
            boxHead: boxHead,
            boxPredictor: RoIHeads.Predictor(inFeatures: roiConfig.representationSize, numClasses: config.numClasses),
            pooler: MultiScaleRoIAlign(outputSize: Size2(resolution), samplingRatio: roiConfig.samplingRatio),
            pooledLevels: pooledLevels, boxCoder: boxCoder, scoreThreshold: config.scoreThresh,
            nmsThreshold: Self.decimal(config.nmsThresh), detectionsPerImage: config.detectionsPerImg)
        transform = config.transform
    }

    public var children: [(name: String, module: any Module)] {
        [("backbone", backbone), ("rpn", rpn), ("roi_heads", roiHeads)]
    }

    public var partPrefixes: [(prefix: String, part: DetectorPart)] {
        Self.subParts.map { ($0.prefix, $0.part) }
    }

    /// Finer parts for sensitivity analysis: the two heads are reported apart. Each entry's
    /// `prefix` selects layers by path as `partPrefixes` does.
    public static let subParts: [(name: String, prefix: String, part: DetectorPart)] = [
        ("backbone", "backbone.body", .backbone),
        ("neck", "backbone.fpn", .neck),
        ("rpn", "rpn", .head),
        ("roi_heads", "roi_heads", .head),
    ]

    /// Every stage's output for a transformed batch, for tests and inspection.
    public struct Trace {
        /// The pyramid levels `[N, C, H_l, W_l]`, named by `levelNames`.
        public var features: [Tensor]
        public var rpn: RegionProposalNetwork.Output
        public var roiHeads: RoIHeads.Output
    }

    /// Runs the whole network on `batch` `[N, 3, H, W]` (transformed and padded) whose images
    /// have `imageSizes` before padding, keeping every intermediate.
    public func trace(batch: Tensor, imageSizes: [Size2]) -> Trace {
        precondition(batch.rank == 4 && batch.shape[0] == imageSizes.count,
                     "FasterRCNN: batch \(batch.shape) for \(imageSizes.count) image sizes")
        let features = backbone(batch)
        let proposals = rpn(features, batchSize: Size2(batch.shape[2], batch.shape[3]), imageSizes: imageSizes)
        let boxes = roiHeads(features, proposals: proposals.proposals, imageSizes: imageSizes)
        return Trace(features: features, rpn: proposals, roiHeads: boxes)
    }

    public func detect(batch: Tensor, imageSizes: [Size2]) -> [Detections] {
        trace(batch: batch, imageSizes: imageSizes).roiHeads.detections
    }

    /// The decimal a Float config value was written as (`0.3`, not 0.30000001192…), for
    /// thresholds torchvision compares in double precision.
    static func decimal(_ value: Float) -> Double {
        Double("\(value)") ?? Double(value)
    }

    private static func check(_ condition: Bool, _ message: String, _ name: String) throws {
        if !condition { throw UnsupportedModelError("\(name): \(message)") }
    }
}
