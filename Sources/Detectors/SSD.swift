// torchvision's SSD (models/detection/ssd.py; Liu et al. 2016) at inference, for ssd300_vgg16 and ssdlite320_mobilenet_v3_large.
import BoxOps
import Layers
import TensorCore

/// A body that returns SSD's feature maps (torchvision's SSD `backbone`).
public protocol SSDFeatureExtractor: Module {
    /// Channels of each feature map.
    var outChannels: [Int] { get }
    /// Feature maps `[N, C_i, H_i, W_i]`, highest resolution first, for a batch `[N, 3, H, W]`.
    func featureMaps(_ input: Tensor) -> [Tensor]
    /// Parts of the extractor's own paths (without the `backbone.` prefix).
    var partPrefixes: [(prefix: String, part: DetectorPart)] { get }
}

/// An SSDlite extractor: body stages (`features.i`) then extra blocks (`extra.i`), each
/// yielding one feature map; the body is the backbone, the extra blocks the neck.
public protocol StagedSSDFeatureExtractor: SSDFeatureExtractor {
    var features: [Sequential] { get }
    var extra: [Sequential] { get }
}

extension StagedSSDFeatureExtractor {
    public var children: [(name: String, module: any Module)] {
        features.enumerated().map { ("features.\($0.offset)", $0.element as any Module) }
            + extra.enumerated().map { ("extra.\($0.offset)", $0.element as any Module) }
    }

    public var partPrefixes: [(prefix: String, part: DetectorPart)] {
        [("features", .backbone), ("extra", .neck)]
    }

    public func featureMaps(_ input: Tensor) -> [Tensor] {
        var x = input
        var outputs: [Tensor] = []
        for block in features + extra {
            x = block(x)
            outputs.append(x)
        }
        return outputs
    }
}

/// SSD: fixed-size transform → feature extractor (`backbone`) → `head` (box codes and class
/// logits per default box) → default boxes → postprocess.
///
/// Postprocess per image, as torchvision's `postprocess_detections`: softmax over the classes;
/// box codes decoded against the default boxes with weights (10, 10, 5, 5) and clipped to the
/// image; for every class but background (label 0), the scores `> scoreThreshold`, of which the
/// `topkCandidates` best; then `batched_nms` over all classes and the `detectionsPerImage` best.
public final class SSD: Detector {
    public let backbone: any SSDFeatureExtractor
    public let head: SSDHead
    public let anchorGenerator: DefaultBoxGenerator
    public let boxCoder: BoxCoder
    public let transform: DetectionTransform
    public let scoreThreshold: Float
    public let nmsThreshold: Double
    public let detectionsPerImage: Int
    public let topkCandidates: Int

    public init(backbone: any SSDFeatureExtractor, head: SSDHead, anchorGenerator: DefaultBoxGenerator,
                transform: DetectionTransform, scoreThreshold: Float, nmsThreshold: Double,
                detectionsPerImage: Int, topkCandidates: Int) {
        precondition(backbone.outChannels.count == anchorGenerator.aspectRatios.count,
                     "SSD: \(backbone.outChannels.count) feature maps for \(anchorGenerator.aspectRatios.count) default-box levels")
        self.backbone = backbone
        self.head = head
        self.anchorGenerator = anchorGenerator
        self.boxCoder = BoxCoder(weights: (10, 10, 5, 5))
        self.transform = transform
        self.scoreThreshold = scoreThreshold
        self.nmsThreshold = nmsThreshold
        self.detectionsPerImage = detectionsPerImage
        self.topkCandidates = topkCandidates
    }

    /// Builds the SSD (`family` `ssd`: VGG-16 extractor and SSD head) or SSDlite (`ssdlite`:
    /// MobileNetV3 extractor and SSDlite head) that `config` describes; weights not loaded.
    /// - Throws: `UnsupportedModelError` or `BoxOpsError` naming the config field at fault.
    public convenience init(_ config: DetectorConfig) throws {
        let backboneConfig = config.backbone
        let backbone: any SSDFeatureExtractor
        switch backboneConfig.name {
        case "vgg16":
            if backboneConfig.batchNormEps != nil {
                throw UnsupportedModelError("backbone.batch_norm_eps: the SSD VGG-16 has no batch norm")
            }
            backbone = SSDFeatureExtractorVGG(widthMultiplier: backboneConfig.widthMult ?? 1)
        case "mobilenet_v3_large":
            let mobileNet = MobileNetV3(variant: .large, numClasses: nil, widthMultiplier: backboneConfig.widthMult ?? 1,
                                        reducedTail: backboneConfig.reducedTail ?? false,
                                        dilated: backboneConfig.dilated ?? false,
                                        normEps: backboneConfig.batchNormEps ?? 0.001)
            backbone = try SSDLiteFeatureExtractorMobileNet(mobileNet: mobileNet,
                                                            extraWidthMultiplier: backboneConfig.extraWidthMult ?? 1,
                                                            minDepth: backboneConfig.minDepth ?? 16,
                                                            normEps: backboneConfig.batchNormEps ?? 0.001)
        case "mobilenet_v2":
            guard let stages = backboneConfig.stages, let extraOut = backboneConfig.extraOutChannels else {
                throw UnsupportedModelError("backbone mobilenet_v2 (SSDlite) needs stages and extra_out_channels")
            }
            backbone = try SSDLiteFeatureExtractorMobileNetV2(
                widthMultiplier: backboneConfig.widthMult ?? 1, stages: stages, extraOutChannels: extraOut,
                normEps: backboneConfig.batchNormEps ?? 1e-5, extraNormEps: backboneConfig.extraBatchNormEps ?? 0.001)
        default:
            throw UnsupportedModelError(
                "backbone.name '\(backboneConfig.name)' is not an SSD body (vgg16, mobilenet_v3_large, mobilenet_v2)")
        }
        guard let boxes = config.defaultBoxes else {
            throw UnsupportedModelError("\(config.family): default_boxes is required")
        }
        let generator = try DefaultBoxGenerator(aspectRatios: boxes.aspectRatios, minRatio: boxes.minRatio ?? 0.15,
                                                maxRatio: boxes.maxRatio ?? 0.9, scales: boxes.scales,
                                                steps: boxes.steps, clip: boxes.clip ?? true)
        guard boxes.aspectRatios.count == backbone.outChannels.count else {
            throw UnsupportedModelError("default_boxes.aspect_ratios has \(boxes.aspectRatios.count) levels, "
                                        + "the \(backboneConfig.name) extractor \(backbone.outChannels.count)")
        }
        if let declared = config.head?.inChannels, declared != backbone.outChannels {
            throw UnsupportedModelError("head.in_channels \(declared) disagrees with the extractor's \(backbone.outChannels)")
        }
        guard config.numClasses >= 2 else {
            throw UnsupportedModelError("num_classes \(config.numClasses): SSD needs background and at least one class")
        }
        let head: SSDHead
        switch config.family {
        case "ssd":
            head = SSDHead(inChannels: backbone.outChannels, anchorsPerLocation: generator.boxesPerLocation,
                           numClasses: config.numClasses)
        case "ssdlite":
            head = SSDHead.lite(inChannels: backbone.outChannels, anchorsPerLocation: generator.boxesPerLocation,
                                numClasses: config.numClasses,
                                normEps: config.head?.batchNormEps ?? backboneConfig.batchNormEps ?? 0.001)
        default:
            throw UnsupportedModelError("family '\(config.family)' is not ssd or ssdlite")
        }
        if let fixed = config.fixedSize, fixed.count != 2 || fixed.contains(where: { $0 <= 0 }) {
            throw UnsupportedModelError("fixed_size \(fixed): expected [height, width], both positive")
        }
        let topk = config.topkCandidates ?? 400
        guard topk > 0, config.detectionsPerImg > 0 else {
            throw UnsupportedModelError("topk_candidates \(topk) and detections_per_img \(config.detectionsPerImg) must be positive")
        }
        self.init(backbone: backbone, head: head, anchorGenerator: generator, transform: config.transform,
                  scoreThreshold: config.scoreThresh, nmsThreshold: Double(config.nmsThresh),
                  detectionsPerImage: config.detectionsPerImg, topkCandidates: topk)
    }

    public var children: [(name: String, module: any Module)] { [("backbone", backbone), ("head", head)] }

    public var partPrefixes: [(prefix: String, part: DetectorPart)] {
        backbone.partPrefixes.map { ("backbone." + $0.prefix, $0.part) } + [("head", .head)]
    }

    /// Feature maps, head outputs and default boxes for a transformed batch `[N, 3, H, W]`:
    /// box codes `[N, D, 4]`, logits `[N, D, K]`, default boxes `[D, 4]` xyxy in batch pixels.
    public func headOutputs(batch: Tensor) -> (features: [Tensor], boxRegression: Tensor, classLogits: Tensor,
                                               defaultBoxes: Tensor) {
        let features = backbone.featureMaps(batch)
        let (boxRegression, classLogits) = head(features)
        let defaultBoxes: Tensor
        do {
            defaultBoxes = try anchorGenerator.defaultBoxes(imageSize: Size2(batch.shape[2], batch.shape[3]),
                                                            featureSizes: features.map { Size2($0.shape[2], $0.shape[3]) })
        } catch {
            preconditionFailure("SSD: default boxes for \(features.count) maps: \(error)")
        }
        precondition(defaultBoxes.shape[0] == classLogits.shape[1],
                     "SSD: \(defaultBoxes.shape[0]) default boxes for \(classLogits.shape[1]) predictions")
        return (features, boxRegression, classLogits, defaultBoxes)
    }

    public func detect(batch: Tensor, imageSizes: [Size2]) -> [Detections] {
        precondition(imageSizes.count == batch.shape[0], "SSD: \(imageSizes.count) sizes for a batch of \(batch.shape[0])")
        let outputs = headOutputs(batch: batch)
        return imageSizes.indices.map { n in
            postprocess(boxRegression: outputs.boxRegression.sliced(axis: 0, range: n..<(n + 1)),
                        classLogits: outputs.classLogits.sliced(axis: 0, range: n..<(n + 1)),
                        defaultBoxes: outputs.defaultBoxes, imageSize: imageSizes[n])
        }
    }

    /// torchvision's `postprocess_detections` for one image: `boxRegression` `[1, D, 4]`,
    /// `classLogits` `[1, D, K]`, `defaultBoxes` `[D, 4]`; boxes in the batch's pixels.
    public func postprocess(boxRegression: Tensor, classLogits: Tensor, defaultBoxes: Tensor,
                            imageSize: Size2) -> Detections {
        let count = defaultBoxes.shape[0]
        let classes = classLogits.shape[2]
        let scores = softmax(classLogits.reshaped([count, classes]), axis: -1)
        let decoded = boxCoder.decode(relativeCodes: boxRegression.reshaped([count, 4]), boxes: defaultBoxes)
        let boxes = clipBoxesToImage(decoded, imageSize: imageSize)

        var candidateBoxes: [Float] = []
        var candidateScores: [Float] = []
        var candidateLabels: [Int] = []
        var passing: [Float] = []
        var passingRows: [Int] = []
        passing.reserveCapacity(count)
        passingRows.reserveCapacity(count)
        scores.withUnsafeBufferPointer { score in
            boxes.withUnsafeBufferPointer { box in
                for label in 1..<classes {
                    passing.removeAll(keepingCapacity: true)
                    passingRows.removeAll(keepingCapacity: true)
                    for row in 0..<count {
                        let value = score[row * classes + label]
                        if value > scoreThreshold {
                            passing.append(value)
                            passingRows.append(row)
                        }
                    }
                    let best = topK(passing, k: min(topkCandidates, passing.count))
                    for (value, index) in zip(best.values, best.indices) {
                        let row = passingRows[index]
                        for k in 0..<4 { candidateBoxes.append(box[row * 4 + k]) }
                        candidateScores.append(value)
                        candidateLabels.append(label)
                    }
                }
            }
        }
        let keep = batchedNMS(boxes: Tensor(shape: [candidateScores.count, 4], scalars: candidateBoxes),
                              scores: candidateScores, labels: candidateLabels, iouThreshold: nmsThreshold)
            .prefix(detectionsPerImage)
        return Detections(boxes: keep.flatMap { candidateBoxes[($0 * 4)..<($0 * 4 + 4)] },
                          scores: keep.map { candidateScores[$0] }, labels: keep.map { candidateLabels[$0] })
    }
}
