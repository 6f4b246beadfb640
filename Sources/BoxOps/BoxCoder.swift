// The (dx, dy, dw, dh) box coder of torchvision 0.14 (`BoxCoder` in models/detection/_utils.py).
import Foundation
import TensorCore

/// Encodes boxes as weighted centre offsets and log size ratios relative to reference boxes,
/// and decodes them back, in Float32 exactly as torchvision.
///
/// Weights per detector: RetinaNet and the RPN (1, 1, 1, 1); Faster R-CNN RoI heads and SSD
/// (10, 10, 5, 5).
public struct BoxCoder: Sendable {
    /// Weights for (x, y, w, h); codes are divided by them when decoding.
    public let weights: (x: Float, y: Float, w: Float, h: Float)
    /// Upper clamp of `dw`, `dh` before `exp` (default `log(1000 / 16)`).
    public let bboxXformClip: Float

    /// A coder with the given weights and clamp.
    public init(weights: (x: Float, y: Float, w: Float, h: Float),
                bboxXformClip: Float = Float(Foundation.log(1000.0 / 16.0))) {
        self.weights = weights
        self.bboxXformClip = bboxXformClip
    }

    /// A coder from a config's four weights (`box_coder_weights`, `bbox_reg_weights`).
    /// - Throws: `BoxOpsError.invalidValue` naming `field` unless there are exactly four
    ///   non-zero weights.
    public init(weights: [Float], field: String = "box_coder_weights",
                bboxXformClip: Float = Float(Foundation.log(1000.0 / 16.0))) throws {
        guard weights.count == 4, !weights.contains(0) else {
            throw BoxOpsError.invalidValue(field: field, reason: "needs four non-zero weights (x, y, w, h), got \(weights)")
        }
        self.init(weights: (weights[0], weights[1], weights[2], weights[3]), bboxXformClip: bboxXformClip)
    }

    /// Decodes `relativeCodes` `[N, 4K]` (K sets of (dx, dy, dw, dh) per box) against reference
    /// `boxes` `[N, 4]` xyxy: returns `[N, 4K]` xyxy boxes (torchvision's `decode_single`;
    /// `decode` is the same after a reshape to `[N, K, 4]`).
    public func decode(relativeCodes: Tensor, boxes: Tensor) -> Tensor {
        precondition(boxes.rank == 2 && boxes.shape[1] == 4, "BoxCoder.decode: boxes must be [N, 4], got \(boxes.shape)")
        let count = boxes.shape[0]
        precondition(relativeCodes.rank == 2 && relativeCodes.shape[0] == count && relativeCodes.shape[1] % 4 == 0,
                     "BoxCoder.decode: codes \(relativeCodes.shape) do not fit boxes \(boxes.shape)")
        let perBox = relativeCodes.shape[1] / 4
        let (wx, wy, ww, wh) = weights
        let clipValue = bboxXformClip
        return boxes.withUnsafeBufferPointer { reference in
            relativeCodes.withUnsafeBufferPointer { codes in
                Tensor(shape: relativeCodes.shape) { out in
                    for row in 0..<count {
                        let x1 = reference[row * 4], y1 = reference[row * 4 + 1]
                        let width = reference[row * 4 + 2] - x1
                        let height = reference[row * 4 + 3] - y1
                        let centreX = x1 + 0.5 * width
                        let centreY = y1 + 0.5 * height
                        for k in 0..<perBox {
                            let base = (row * perBox + k) * 4
                            let dx = codes[base] / wx
                            let dy = codes[base + 1] / wy
                            // clamp before exp: log(1000/16); NaN passes through as torch.clamp
                            let dw = Self.clampedAbove(codes[base + 2] / ww, clipValue)
                            let dh = Self.clampedAbove(codes[base + 3] / wh, clipValue)
                            let predictedX = dx * width + centreX
                            let predictedY = dy * height + centreY
                            let predictedW = Foundation.exp(dw) * width
                            let predictedH = Foundation.exp(dh) * height
                            let halfW = 0.5 * predictedW
                            let halfH = 0.5 * predictedH
                            out[base] = predictedX - halfW
                            out[base + 1] = predictedY - halfH
                            out[base + 2] = predictedX + halfW
                            out[base + 3] = predictedY + halfH
                        }
                    }
                }
            }
        }
    }

    /// Encodes `proposals` `[N, 4]` with respect to `referenceBoxes` `[N, 4]` (both xyxy):
    /// returns `[N, 4]` (dx, dy, dw, dh) codes, torchvision's `encode_single(reference, proposals)`.
    ///
    /// Note torchvision's naming: the *reference* boxes are the targets (ground truth) and the
    /// *proposals* the anchors the codes are relative to.
    public func encode(referenceBoxes: Tensor, proposals: Tensor) -> Tensor {
        precondition(referenceBoxes.rank == 2 && referenceBoxes.shape[1] == 4 && referenceBoxes.shape == proposals.shape,
                     "BoxCoder.encode: shapes \(referenceBoxes.shape) and \(proposals.shape) must both be [N, 4]")
        let (wx, wy, ww, wh) = weights
        let target = referenceBoxes.scalars, anchor = proposals.scalars
        return Tensor(shape: proposals.shape) { out in
            for row in 0..<proposals.shape[0] {
                let anchorWidth = anchor[row * 4 + 2] - anchor[row * 4]
                let anchorHeight = anchor[row * 4 + 3] - anchor[row * 4 + 1]
                let anchorX = anchor[row * 4] + 0.5 * anchorWidth
                let anchorY = anchor[row * 4 + 1] + 0.5 * anchorHeight
                let targetWidth = target[row * 4 + 2] - target[row * 4]
                let targetHeight = target[row * 4 + 3] - target[row * 4 + 1]
                let targetX = target[row * 4] + 0.5 * targetWidth
                let targetY = target[row * 4 + 1] + 0.5 * targetHeight
                out[row * 4] = wx * (targetX - anchorX) / anchorWidth
                out[row * 4 + 1] = wy * (targetY - anchorY) / anchorHeight
                out[row * 4 + 2] = ww * Foundation.log(targetWidth / anchorWidth)
                out[row * 4 + 3] = wh * Foundation.log(targetHeight / anchorHeight)
            }
        }
    }

    /// `min(value, limit)` that keeps NaN, as `torch.clamp(max:)`.
    @inline(__always)
    static func clampedAbove(_ value: Float, _ limit: Float) -> Float {
        value > limit ? limit : value
    }
}
