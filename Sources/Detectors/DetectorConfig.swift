// detectors/<name>/config.json for detectors: torchvision builder hyper-parameters, snake_case.
import TensorCore

/// A detector description. Field names follow torchvision's builders and classes
/// (`min_size`, `box_score_thresh`, `detections_per_img`, …); defaults are torchvision 0.14's
/// and are written out in each shipped config so that no hidden default decides a result.
public struct DetectorConfig: Codable, Sendable {
    /// The torchvision builder name or the shipped model's name.
    public var architecture: String
    /// `retinanet`, `fcos`, `ssd`, `ssdlite` or `fasterrcnn`.
    public var family: String
    public var backbone: BackboneConfig
    /// Including background for the families that have one (torchvision COCO models: 91).
    public var numClasses: Int

    // GeneralizedRCNNTransform
    public var minSize: Int
    public var maxSize: Int
    public var imageMean: [Float]
    public var imageStd: [Float]
    public var sizeDivisible: Int?
    /// `[height, width]` for SSD's fixed-size resize (note: torchvision's `fixed_size` tuple is
    /// `(width, height)`; both SSD builders use square sizes).
    public var fixedSize: [Int]?

    // Postprocess shared by the one-stage families (RetinaNet/FCOS/SSD) and Faster R-CNN's RoI heads.
    public var scoreThresh: Float
    public var nmsThresh: Float
    public var detectionsPerImg: Int
    public var topkCandidates: Int?

    /// AnchorGenerator: sizes and aspect ratios per level.
    public var anchorSizes: [[Double]]?
    public var aspectRatios: [[Double]]?

    /// Family-specific parts; each family documents and validates its own.
    public var head: HeadConfig?
    public var rpn: RPNConfig?
    public var roiHeads: RoIHeadsConfig?
    public var defaultBoxes: DefaultBoxConfig?

    /// Class names, one per line, in a file next to the config or in `detectors/`.
    public var classNames: String?
    /// Categories of the dataset the model was trained on, and label → category id when the
    /// label is not already the category id.
    public var categories: [Category]?
    public var labelToCategory: [String: Int]?

    public struct Category: Codable, Sendable {
        public var id: Int
        public var name: String
    }

    /// The transform this config describes.
    public var transform: DetectionTransform {
        DetectionTransform(minSize: minSize, maxSize: maxSize, imageMean: imageMean, imageStd: imageStd,
                           sizeDivisible: sizeDivisible ?? 32,
                           fixedSize: fixedSize.flatMap { $0.count == 2 ? Size2($0[0], $0[1]) : nil })
    }
}

/// The body and neck.
public struct BackboneConfig: Codable, Sendable {
    /// `resnet50`, `mobilenet_v2`, `mobilenet_v3_large` or `vgg16`.
    public var name: String
    /// Which body outputs feed the neck: ResNet stage numbers (1…4) or indices into
    /// MobileNet's `features`, as torchvision's `returned_layers` / `return_layers`.
    public var returnedLayers: [Int]?
    /// Channels of the returned outputs (derived for ResNet; required for MobileNet bodies).
    public var inChannels: [Int]?
    /// FPN width (`out_channels`); nil for bodies without FPN (SSD).
    public var fpnOutChannels: Int?
    /// `maxpool` (LastLevelMaxPool), `p6p7` (LastLevelP6P7) or `none`.
    public var extraBlocks: String?
    /// LastLevelP6P7's `in_channels` (256 = from P5 in v1, 2048 = from C5 in v2).
    public var p6p7InChannels: Int?
    /// FPN convs followed by batch norm (torchvision's v2 Faster R-CNN).
    public var fpnBatchNorm: Bool?
    /// Batch-norm eps of the body (0 for legacy v1 detection checkpoints). SSDlite uses it for
    /// the body, extra blocks and head alike, as its builder passes one `norm_layer` to all three.
    public var batchNormEps: Float?
    /// MobileNet width multiplier. For `vgg16` (SSD) a detq-only narrowing of every layer, used
    /// by small test fixtures: torchvision's SSD300 has width 1.
    public var widthMult: Double?
    /// MobileNetV3 `reduce_tail` / `dilated`. torchvision's SSDlite builder sets `reduced_tail`
    /// whenever it loads no ImageNet backbone, so also for its COCO checkpoint.
    public var reducedTail: Bool?
    public var dilated: Bool?
    /// SSDlite extractor's `width_mult` and `min_depth` for its extra blocks (torchvision's
    /// builder: 1.0 and 16).
    public var extraWidthMult: Double?
    public var minDepth: Int?
    /// SSDlite on MobileNetV2 (the shipped `ssdlite_mobilenet_v2_shapes`): `features` cut into
    /// these consecutive `[start, end)` stages, one feature map each, then extra blocks of
    /// `extra_out_channels` with batch-norm eps `extra_batch_norm_eps` (default 1e-3).
    public var stages: [[Int]]?
    public var extraOutChannels: [Int]?
    public var extraBatchNormEps: Float?
}

/// Dense-head settings (RetinaNet, FCOS, SSDlite).
///
/// RetinaNet's branches are `conv.i` = 3×3 conv → [norm] → ReLU blocks (torchvision's
/// `Conv2dNormActivation`: the conv has a bias only without norm, keys `conv.i.0`, `conv.i.1`);
/// FCOS's are flat `conv.(3i)` conv with bias, `conv.(3i+1)` GroupNorm, `conv.(3i+2)` ReLU.
public struct HeadConfig: Codable, Sendable {
    /// Convs per branch before the predictor (torchvision: 4).
    public var numConvs: Int?
    /// `group_norm` (FCOS, RetinaNet v2) or nil (RetinaNet v1).
    public var norm: String?
    /// GroupNorm groups (torchvision: 32).
    public var groupNormGroups: Int?
    /// GroupNorm eps (torchvision: 1e-5).
    public var groupNormEps: Float?
    /// SSD/SSDlite head input channels per level.
    public var inChannels: [Int]?
    /// RetinaNet's `BoxCoder` weights (x, y, w, h); torchvision: (1, 1, 1, 1).
    public var boxCoderWeights: [Float]?
    /// FCOS's `BoxLinearCoder(normalize_by_size)`; torchvision: true.
    public var normalizeBySize: Bool?
    /// SSDlite head batch-norm eps when it differs from the body's (`backbone.batch_norm_eps`).
    public var batchNormEps: Float?
}

/// Region proposal network settings (Faster R-CNN): torchvision's `rpn_*` builder arguments
/// at inference. The RPN's anchors are the config's `anchor_sizes` / `aspect_ratios`, its box
/// coder weights are (1, 1, 1, 1) and its minimum proposal size is 1e-3, as in torchvision.
public struct RPNConfig: Codable, Sendable {
    /// `rpn_pre_nms_top_n_test`: proposals kept per pyramid level, by objectness, before NMS (1000).
    public var preNmsTopNTest: Int
    /// `rpn_post_nms_top_n_test`: proposals kept per image after NMS (1000).
    public var postNmsTopNTest: Int
    /// `rpn_nms_thresh`: IoU above which NMS drops a proposal, per level (0.7). Double, as
    /// torchvision's NMS kernel compares the Float32 IoU with a double threshold.
    public var nmsThresh: Double
    /// `rpn_score_thresh`: proposals need sigmoid(objectness) `>=` this (0.0; 0.05 for the
    /// MobileNetV3 models).
    public var scoreThresh: Float
    /// `RPNHead(conv_depth=)`: 3×3 conv + ReLU layers before the predictors, no normalization
    /// (v1 and MobileNet: 1, v2: 2). Default 1.
    public var convDepth: Int?
}

/// RoI heads settings (Faster R-CNN): the box pooler, box head and predictor. The postprocess
/// thresholds are the config's `score_thresh` (`box_score_thresh`), `nms_thresh`
/// (`box_nms_thresh`) and `detections_per_img` (`box_detections_per_img`).
public struct RoIHeadsConfig: Codable, Sendable {
    /// `two_mlp` (TwoMLPHead: fc6, fc7 with ReLU; v1, MobileNet) or `conv_fc`
    /// (FastRCNNConvFCHead: `conv_layers` 3×3 convs + batch norm + ReLU, flatten, `fc_layers`
    /// linear + ReLU; v2).
    public var boxHead: String
    /// Width of the box head's output, the input of `FastRCNNPredictor` (1024). For `conv_fc`
    /// it must equal the last of `fc_layers`.
    public var representationSize: Int
    /// `conv_fc` only: output channels of each conv (v2: [256, 256, 256, 256]).
    public var convLayers: [Int]?
    /// `conv_fc` only: widths of the linear layers after the flatten (v2: [1024]).
    public var fcLayers: [Int]?
    /// `conv_fc` only: batch norm after each conv (`norm_layer=BatchNorm2d`, v2: true).
    /// Without it the convs carry a bias.
    public var convBatchNorm: Bool?
    /// MultiScaleRoIAlign `sampling_ratio` (2).
    public var samplingRatio: Int
    /// MultiScaleRoIAlign `output_size` (7).
    public var outputSize: Int
    /// MultiScaleRoIAlign `featmap_names`: the pyramid levels RoIAlign pools from, by name
    /// (`"0"`, `"1"`, … for the body's returned layers, `"pool"` for the max-pool level).
    /// As torchvision, names the pyramid lacks are ignored (the MobileNet FPN has only
    /// `"0"`, `"1"`, `"pool"`); at least one must exist.
    public var featmapNames: [String]
    /// `bbox_reg_weights` of the RoI heads' box coder (default (10, 10, 5, 5)).
    public var boxCoderWeights: [Float]?
}

/// SSD's DefaultBoxGenerator settings.
public struct DefaultBoxConfig: Codable, Sendable {
    public var aspectRatios: [[Double]]
    public var minRatio: Double?
    public var maxRatio: Double?
    public var scales: [Double]?
    public var steps: [Int]?
    public var clip: Bool?
}
