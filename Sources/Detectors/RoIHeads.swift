// torchvision 0.14's RoIHeads for boxes at inference (models/detection/roi_heads.py; Girshick 2015).
import BoxOps
import Layers
import TensorCore

/// The second stage of Faster R-CNN: each proposal's features are pooled with
/// `MultiScaleRoIAlign`, turned into a vector by the box head, and classified and refined
/// per class by the predictor.
///
/// Postprocess per image, as torchvision's `postprocess_detections`: decode every class's
/// box (coder weights 10, 10, 5, 5 by default), softmax over classes, clip, drop the
/// background, keep scores `> scoreThreshold`, drop boxes narrower or lower than 1e-2,
/// NMS per class, keep the first `detectionsPerImage`.
public final class RoIHeads: Module {
    public let boxHead: any RoIBoxHead
    public let boxPredictor: Predictor
    public let pooler: MultiScaleRoIAlign
    /// The indices, into the pyramid levels, of the levels the pooler reads (finest first).
    public let pooledLevels: [Int]
    public let boxCoder: BoxCoder
    /// Detections need a class probability `>` this (`box_score_thresh`, Float32 comparison).
    public let scoreThreshold: Float
    /// IoU above which per-class NMS drops a box (`box_nms_thresh`).
    public let nmsThreshold: Double
    /// `box_detections_per_img`.
    public let detectionsPerImage: Int
    /// torchvision's `min_size=1e-2` of the postprocess.
    public let minimumSize: Double = 1e-2

    /// The box stage's intermediate values and detections for a batch.
    public struct Output {
        /// Pooled features `[R, C, oh, ow]`, R = all images' proposals in image order.
        public var pooled: Tensor
        /// Box head output `[R, representationSize]`.
        public var boxFeatures: Tensor
        /// `[R, K]`.
        public var classLogits: Tensor
        /// `[R, 4K]`.
        public var boxRegression: Tensor
        /// Per image, in pixels of the transformed image.
        public var detections: [Detections]
    }

    public init(boxHead: any RoIBoxHead, boxPredictor: Predictor, pooler: MultiScaleRoIAlign, pooledLevels: [Int],
                boxCoder: BoxCoder, scoreThreshold: Float, nmsThreshold: Double, detectionsPerImage: Int) {
        precondition(!pooledLevels.isEmpty, "RoIHeads: no pooled levels")
        precondition(boxHead.representationSize > 0, "RoIHeads: empty box head")
        self.boxHead = boxHead
        self.boxPredictor = boxPredictor
        self.pooler = pooler
        self.pooledLevels = pooledLevels
        self.boxCoder = boxCoder
        self.scoreThreshold = scoreThreshold
        self.nmsThreshold = nmsThreshold
        self.detectionsPerImage = detectionsPerImage
    }

    public var children: [(name: String, module: any Module)] {
        [("box_head", boxHead), ("box_predictor", boxPredictor)]
    }

    /// Detections for the pyramid `features` (all levels; the pooler picks `pooledLevels`),
    /// per-image `proposals` `[P_i, 4]` and image sizes before padding.
    public func callAsFunction(_ features: [Tensor], proposals: [Tensor], imageSizes: [Size2]) -> Output {
        precondition(proposals.count == imageSizes.count,
                     "RoIHeads: \(proposals.count) proposal sets for \(imageSizes.count) images")
        let pooled = pooler(features: pooledLevels.map { features[$0] }, boxes: proposals, imageSizes: imageSizes)
        let boxFeatures = boxHead(pooled)
        let (classLogits, boxRegression) = boxPredictor(boxFeatures)
        let detections = postprocess(classLogits: classLogits, boxRegression: boxRegression, proposals: proposals,
                                     imageSizes: imageSizes)
        return Output(pooled: pooled, boxFeatures: boxFeatures, classLogits: classLogits, boxRegression: boxRegression,
                      detections: detections)
    }

    /// torchvision's `postprocess_detections`: `classLogits` `[R, K]` and `boxRegression`
    /// `[R, 4K]` for the proposals of all images (image order) → detections per image.
    public func postprocess(classLogits: Tensor, boxRegression: Tensor, proposals: [Tensor],
                            imageSizes: [Size2]) -> [Detections] {
        let total = proposals.reduce(0) { $0 + $1.shape[0] }
        let classes = classLogits.shape[1]
        precondition(classLogits.shape == [total, classes] && boxRegression.shape == [total, 4 * classes],
                     "RoIHeads: logits \(classLogits.shape) and deltas \(boxRegression.shape) for \(total) proposals")
        let probabilities = softmax(classLogits, axis: 1)
        var results: [Detections] = []
        var start = 0
        for (imageProposals, imageSize) in zip(proposals, imageSizes) {
            let count = imageProposals.shape[0]
            let codes = boxRegression.sliced(axis: 0, range: start..<(start + count))
            // (R, 4K): class k's box in columns 4k…4k+3
            let boxes = clipBoxesToImage(boxCoder.decode(relativeCodes: codes, boxes: imageProposals),
                                         imageSize: imageSize)
            // Every (proposal, class ≥ 1) pair is a candidate, proposal-major as torch's reshape.
            var candidateBoxes: [Float] = []
            var candidateScores: [Float] = []
            var candidateLabels: [Int] = []
            probabilities.withUnsafeBufferPointer { scores in
                boxes.withUnsafeBufferPointer { boxValues in
                    for row in 0..<count {
                        for label in 1..<max(classes, 1) {
                            let score = scores[(start + row) * classes + label]
                            guard score > scoreThreshold else { continue }
                            let base = (row * classes + label) * 4
                            for k in 0..<4 { candidateBoxes.append(boxValues[base + k]) }
                            candidateScores.append(score)
                            candidateLabels.append(label)
                        }
                    }
                }
            }
            let candidates = Tensor(shape: [candidateScores.count, 4], scalars: candidateBoxes)
            let large = removeSmallBoxes(candidates, minSize: minimumSize)
            let keptBoxes = RegionProposalNetwork.gatheredRows(candidates, large)
            let keptScores = large.map { candidateScores[$0] }
            let keptLabels = large.map { candidateLabels[$0] }
            let survivors = batchedNMS(boxes: keptBoxes, scores: keptScores, labels: keptLabels,
                                       iouThreshold: nmsThreshold).prefix(detectionsPerImage)
            results.append(Detections(boxes: RegionProposalNetwork.gatheredRows(keptBoxes, Array(survivors)).scalars,
                                      scores: survivors.map { keptScores[$0] },
                                      labels: survivors.map { keptLabels[$0] }))
            start += count
        }
        return results
    }
}
