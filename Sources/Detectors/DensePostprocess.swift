// torchvision's `postprocess_detections` of RetinaNet and FCOS: per-level threshold and top-k, then batched NMS.
import BoxOps
import Foundation
import TensorCore

/// The inference postprocess one-stage dense detectors share (torchvision 0.14's RetinaNet and
/// FCOS): on each level, the flattened `[H·W·A · K]` scores above `scoreThreshold`, the best
/// `topkCandidates` of them, decoded and clipped; then NMS per class over all levels and the
/// first `detectionsPerImage` kept boxes, by decreasing score.
public struct DensePostprocess: Sendable {
    public var scoreThreshold: Float
    public var topkCandidates: Int
    public var nmsThreshold: Double
    public var detectionsPerImage: Int

    public init(scoreThreshold: Float, topkCandidates: Int, nmsThreshold: Double, detectionsPerImage: Int) {
        self.scoreThreshold = scoreThreshold
        self.topkCandidates = topkCandidates
        self.nmsThreshold = nmsThreshold
        self.detectionsPerImage = detectionsPerImage
    }

    /// The postprocess a config describes (`score_thresh`, `topk_candidates`, `nms_thresh`,
    /// `detections_per_img`).
    /// - Throws: `UnsupportedModelError` naming the field for a negative count.
    init(_ config: DetectorConfig, defaultTopk: Int) throws {
        let topk = config.topkCandidates ?? defaultTopk
        guard topk >= 0 else { throw UnsupportedModelError("topk_candidates must be >= 0, got \(topk)") }
        guard config.detectionsPerImg >= 0 else {
            throw UnsupportedModelError("detections_per_img must be >= 0, got \(config.detectionsPerImg)")
        }
        self.init(scoreThreshold: config.scoreThresh, topkCandidates: topk, nmsThreshold: Double(config.nmsThresh),
                  detectionsPerImage: config.detectionsPerImg)
    }

    /// A level's candidates: the indices `i` of `values` with `score(i) > scoreThreshold`, the
    /// `topkCandidates` best by score, highest first (equal scores: lower index first).
    ///
    /// `values[i] > bound` must be necessary for `score(i) > scoreThreshold`; only those `i`
    /// are scored (the sigmoid of most anchors is never computed).
    func candidates(_ values: UnsafeBufferPointer<Float>, bound: Float,
                    score: (Int) -> Float) -> (indices: [Int], scores: [Float]) {
        var indices: [Int] = [], scores: [Float] = []
        for i in 0..<values.count where values[i] > bound {
            let value = score(i)
            if value > scoreThreshold {
                indices.append(i)
                scores.append(value)
            }
        }
        let best = topK(scores, k: min(topkCandidates, scores.count))
        return (best.indices.map { indices[$0] }, best.values)
    }

    /// A logit below which `sigmoid(x) > probability` cannot hold in Float32: the exact logit
    /// less a margin far wider than sigmoid's rounding. `-inf` when every value may pass.
    static func logitBound(probability: Float) -> Float {
        guard probability > 0 else { return -.infinity }
        guard probability < 1 else { return .infinity }
        let p = Double(probability)
        return Float(Foundation.log(p / (1 - p)) - 1e-3)
    }

    /// `1 / (1 + exp(-x))`, as torch's sigmoid.
    @inline(__always)
    static func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }

    /// Rows `rows` of `values` `[*, width]` as a `[rows.count, width]` tensor.
    static func gathered(_ values: UnsafeBufferPointer<Float>, rows: [Int], width: Int) -> Tensor {
        Tensor(shape: [rows.count, width]) { out in
            for (position, row) in rows.enumerated() {
                for k in 0..<width { out[position * width + k] = values[row * width + k] }
            }
        }
    }

    /// NMS per label over all levels' boxes (flat xyxy), then the first `detectionsPerImage`.
    func finished(boxes: [Float], scores: [Float], labels: [Int]) -> Detections {
        let keep = batchedNMS(boxes: Tensor(shape: [scores.count, 4], scalars: boxes), scores: scores,
                              labels: labels, iouThreshold: nmsThreshold).prefix(detectionsPerImage)
        var keptBoxes: [Float] = []
        keptBoxes.reserveCapacity(keep.count * 4)
        for index in keep { keptBoxes += boxes[(index * 4)..<(index * 4 + 4)] }
        return Detections(boxes: keptBoxes, scores: keep.map { scores[$0] }, labels: keep.map { labels[$0] })
    }
}
