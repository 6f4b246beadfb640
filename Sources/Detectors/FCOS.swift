// torchvision's FCOS (Tian et al. 2019, "FCOS: Fully Convolutional One-Stage Object Detection") at inference.
import BoxOps
import Layers
import TensorCore

/// FCOS: backbone with FPN (P3–P7) → shared GroupNorm head (classes, box distances, centre-ness)
/// → one anchor per location of size 8·2^l → per-level scores `sqrt(σ(cls) · σ(ctrness))` above
/// `score_thresh`, top `topk_candidates`, `BoxLinearCoder` decode, clip → NMS per class →
/// `detections_per_img` boxes, as torchvision 0.14's `fcos_resnet50_fpn`.
///
/// State-dict keys: `backbone.body.…`, `backbone.fpn.…`, `head.classification_head.…`,
/// `head.regression_head.…`.
public final class FCOS: Detector {
    public let backbone: BackboneWithFPN
    public let head: FCOSHead
    public let anchorGenerator: AnchorGenerator
    public let boxCoder: BoxLinearCoder
    public let postprocess: DensePostprocess
    public let transform: DetectionTransform
    public let numClasses: Int

    /// torchvision's FCOS anchors: one square anchor per location, as large as the level's stride.
    public static let defaultAnchorSizes: [[Double]] = [[8], [16], [32], [64], [128]]
    public static let defaultAspectRatios: [[Double]] = Array(repeating: [1.0], count: 5)

    /// Builds the network `config` describes (`family` `fcos`); weights stay zero until loaded.
    /// - Throws: `UnsupportedModelError` naming the config field that cannot be built.
    public init(_ config: DetectorConfig) throws {
        guard config.family == "fcos" else { throw UnsupportedModelError("family '\(config.family)' given to FCOS") }
        guard config.numClasses >= 1 else { throw UnsupportedModelError("num_classes must be >= 1, got \(config.numClasses)") }
        backbone = try BackboneWithFPN.make(config.backbone)
        let anchors = try denseAnchorGenerator(config, levels: backbone.fpn.outputLevelCount,
                                               defaultSizes: Self.defaultAnchorSizes,
                                               defaultRatios: Self.defaultAspectRatios)
        guard anchors.anchorsPerLocation == 1 else {
            throw UnsupportedModelError("FCOS needs one anchor per location; anchor_sizes × aspect_ratios give \(anchors.anchorsPerLocation)")
        }
        anchorGenerator = anchors.generator
        let channels = config.backbone.fpnOutChannels ?? 256
        // torchvision's FCOSHead always builds GroupNorm towers (32 groups unless the config says).
        var headConfig = config.head ?? HeadConfig()
        headConfig.norm = headConfig.norm ?? "group_norm"
        guard let norm = try DenseHeadNorm.from(headConfig, channels: channels) else {
            throw UnsupportedModelError("head.norm must be group_norm for FCOS (torchvision's FCOSHead)")
        }
        head = FCOSHead(inChannels: channels, numAnchors: 1, numClasses: config.numClasses,
                        numConvs: try headConvCount(config, default: 4), norm: norm)
        boxCoder = BoxLinearCoder(normalizeBySize: config.head?.normalizeBySize ?? true)
        postprocess = try DensePostprocess(config, defaultTopk: 1000)
        transform = config.transform
        numClasses = config.numClasses
    }

    public var children: [(name: String, module: any Module)] { [("backbone", backbone), ("head", head)] }

    public var partPrefixes: [(prefix: String, part: DetectorPart)] {
        [("backbone.body", .backbone), ("backbone.fpn", .neck), ("head", .head)]
    }

    public func detect(batch: Tensor, imageSizes: [Size2]) -> [Detections] {
        let features = backbone(batch)
        let outputs = head(features)
        return postprocessed(classLogits: outputs.classLogits, boxRegression: outputs.boxRegression,
                             centerness: outputs.centerness, batchSize: Size2(batch.shape[2], batch.shape[3]),
                             featureSizes: features.map { Size2($0.shape[2], $0.shape[3]) }, imageSizes: imageSizes)
    }

    /// Detections from the head outputs of each level (class logits `[N, H·W, K]`, box distances
    /// `[N, H·W, 4]`, centre-ness logits `[N, H·W, 1]`) for a padded batch of `batchSize` whose
    /// images have `imageSizes`.
    public func postprocessed(classLogits: [Tensor], boxRegression: [Tensor], centerness: [Tensor], batchSize: Size2,
                              featureSizes: [Size2], imageSizes: [Size2]) -> [Detections] {
        precondition(classLogits.count == featureSizes.count && boxRegression.count == featureSizes.count
                     && centerness.count == featureSizes.count,
                     "FCOS: \(classLogits.count)/\(boxRegression.count)/\(centerness.count) output levels for \(featureSizes.count) features")
        let anchors = levelAnchors(anchorGenerator, batchSize: batchSize, featureSizes: featureSizes)
        // sqrt(σ(c)·σ(t)) > s needs σ(c) > s², as σ(t) ≤ 1.
        let threshold = postprocess.scoreThreshold
        let bound = threshold > 0 ? DensePostprocess.logitBound(probability: threshold * threshold) : -.infinity
        let classes = numClasses
        return imageSizes.indices.map { image in
            var boxes: [Float] = [], scores: [Float] = [], labels: [Int] = []
            for level in featureSizes.indices {
                let locations = anchors[level].shape[0]
                precondition(classLogits[level].shape == [imageSizes.count, locations, classes]
                             && boxRegression[level].shape == [imageSizes.count, locations, 4]
                             && centerness[level].shape == [imageSizes.count, locations, 1],
                             "FCOS: level \(level) outputs do not fit \(locations) anchors")
                let selected = classLogits[level].withUnsafeBufferPointer { allLogits in
                    centerness[level].withUnsafeBufferPointer { allCenterness in
                        let logits = UnsafeBufferPointer(rebasing: allLogits[(image * locations * classes)..<((image + 1) * locations * classes)])
                        let center = UnsafeBufferPointer(rebasing: allCenterness[(image * locations)..<((image + 1) * locations)])
                        return postprocess.candidates(logits, bound: bound) { index in
                            (DensePostprocess.sigmoid(logits[index]) * DensePostprocess.sigmoid(center[index / classes]))
                                .squareRoot()
                        }
                    }
                }
                let anchorIndices = selected.indices.map { $0 / classes }
                let distances = boxRegression[level].withUnsafeBufferPointer { all in
                    DensePostprocess.gathered(UnsafeBufferPointer(rebasing: all[(image * locations * 4)...]),
                                              rows: anchorIndices, width: 4)
                }
                let references = anchors[level].withUnsafeBufferPointer {
                    DensePostprocess.gathered($0, rows: anchorIndices, width: 4)
                }
                let decoded = boxCoder.decode(relativeCodes: distances, boxes: references)
                boxes += clipBoxesToImage(decoded, imageSize: imageSizes[image]).scalars
                scores += selected.scores
                labels += selected.indices.map { $0 % classes }
            }
            return postprocess.finished(boxes: boxes, scores: scores, labels: labels)
        }
    }
}
