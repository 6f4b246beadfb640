// torchvision's RetinaNet (Lin et al. 2017, "Focal Loss for Dense Object Detection") at inference.
import BoxOps
import Foundation
import Layers
import TensorCore

/// RetinaNet: backbone with FPN (P3–P7) → shared classification/regression head → anchors →
/// per-level sigmoid scores above `score_thresh`, top `topk_candidates`, `BoxCoder` decode, clip →
/// NMS per class → `detections_per_img` boxes, as torchvision 0.14 (`retinanet_resnet50_fpn`
/// and `_v2`, or any body the config describes).
///
/// State-dict keys: `backbone.body.…`, `backbone.fpn.…`, `head.classification_head.…`,
/// `head.regression_head.…`.
public final class RetinaNet: Detector {
    public let backbone: BackboneWithFPN
    public let head: RetinaNetHead
    public let anchorGenerator: AnchorGenerator
    public let boxCoder: BoxCoder
    public let postprocess: DensePostprocess
    public let transform: DetectionTransform
    public let numClasses: Int

    /// torchvision's `_default_anchorgen`: `(x, int(x·2^(1/3)), int(x·2^(2/3)))` for x in 32…512.
    public static let defaultAnchorSizes: [[Double]] = [32.0, 64, 128, 256, 512].map { x in
        [x, (x * Foundation.pow(2, 1.0 / 3)).rounded(.towardZero), (x * Foundation.pow(2, 2.0 / 3)).rounded(.towardZero)]
    }
    public static let defaultAspectRatios: [[Double]] = Array(repeating: [0.5, 1.0, 2.0], count: 5)

    /// Builds the network `config` describes (`family` `retinanet`); weights stay zero until loaded.
    /// - Throws: `UnsupportedModelError` naming the config field that cannot be built.
    public init(_ config: DetectorConfig) throws {
        guard config.family == "retinanet" else {
            throw UnsupportedModelError("family '\(config.family)' given to RetinaNet")
        }
        guard config.numClasses >= 1 else { throw UnsupportedModelError("num_classes must be >= 1, got \(config.numClasses)") }
        backbone = try BackboneWithFPN.make(config.backbone)
        let anchors = try denseAnchorGenerator(config, levels: backbone.fpn.outputLevelCount,
                                               defaultSizes: Self.defaultAnchorSizes,
                                               defaultRatios: Self.defaultAspectRatios)
        anchorGenerator = anchors.generator
        let channels = config.backbone.fpnOutChannels ?? 256
        head = RetinaNetHead(inChannels: channels, numAnchors: anchors.anchorsPerLocation,
                             numClasses: config.numClasses, numConvs: try headConvCount(config, default: 4),
                             norm: try DenseHeadNorm.from(config.head, channels: channels))
        do {
            boxCoder = try BoxCoder(weights: config.head?.boxCoderWeights ?? [1, 1, 1, 1], field: "head.box_coder_weights")
        } catch {
            throw UnsupportedModelError("\(error)")
        }
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
                             batchSize: Size2(batch.shape[2], batch.shape[3]),
                             featureSizes: features.map { Size2($0.shape[2], $0.shape[3]) }, imageSizes: imageSizes)
    }

    /// Detections from the head outputs of each level (class logits `[N, H·W·A, K]`, box codes
    /// `[N, H·W·A, 4]`) for a padded batch of `batchSize` whose images have `imageSizes`.
    public func postprocessed(classLogits: [Tensor], boxRegression: [Tensor], batchSize: Size2,
                              featureSizes: [Size2], imageSizes: [Size2]) -> [Detections] {
        precondition(classLogits.count == featureSizes.count && boxRegression.count == featureSizes.count,
                     "RetinaNet: \(classLogits.count) logit and \(boxRegression.count) box levels for \(featureSizes.count) features")
        let anchors = levelAnchors(anchorGenerator, batchSize: batchSize, featureSizes: featureSizes)
        let bound = DensePostprocess.logitBound(probability: postprocess.scoreThreshold)
        return imageSizes.indices.map { image in
            var boxes: [Float] = [], scores: [Float] = [], labels: [Int] = []
            for level in featureSizes.indices {
                let locations = anchors[level].shape[0]
                precondition(classLogits[level].shape == [imageSizes.count, locations, numClasses]
                             && boxRegression[level].shape == [imageSizes.count, locations, 4],
                             "RetinaNet: level \(level) outputs \(classLogits[level].shape), \(boxRegression[level].shape) for \(locations) anchors")
                let selected = classLogits[level].withUnsafeBufferPointer { all in
                    let logits = UnsafeBufferPointer(rebasing: all[(image * locations * numClasses)..<((image + 1) * locations * numClasses)])
                    return postprocess.candidates(logits, bound: bound) { DensePostprocess.sigmoid(logits[$0]) }
                }
                let anchorIndices = selected.indices.map { $0 / numClasses }
                let codes = boxRegression[level].withUnsafeBufferPointer { all in
                    DensePostprocess.gathered(UnsafeBufferPointer(rebasing: all[(image * locations * 4)...]),
                                              rows: anchorIndices, width: 4)
                }
                let references = anchors[level].withUnsafeBufferPointer {
                    DensePostprocess.gathered($0, rows: anchorIndices, width: 4)
                }
                let decoded = boxCoder.decode(relativeCodes: codes, boxes: references)
                boxes += clipBoxesToImage(decoded, imageSize: imageSizes[image]).scalars
                scores += selected.scores
                labels += selected.indices.map { $0 % numClasses }
            }
            return postprocess.finished(boxes: boxes, scores: scores, labels: labels)
        }
    }
}
