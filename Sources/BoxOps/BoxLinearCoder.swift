// The FCOS linear box coder of torchvision 0.14 (`BoxLinearCoder` in models/detection/_utils.py).
import TensorCore

/// Encodes a box as the distances from the reference box's centre to its four edges
/// (left, top, right, bottom), optionally divided by the reference box's size.
public struct BoxLinearCoder: Sendable {
    /// Whether the distances are normalised by the reference box width/height.
    public let normalizeBySize: Bool

    /// A coder; FCOS uses `normalizeBySize: true`.
    public init(normalizeBySize: Bool = true) {
        self.normalizeBySize = normalizeBySize
    }

    /// Decodes `relativeCodes` `[N, 4]` (l, t, r, b) against reference `boxes` `[N, 4]` xyxy:
    /// returns `[N, 4]` xyxy, `(cx - l, cy - t, cx + r, cy + b)` with `cx = 0.5 * (x1 + x2)`.
    public func decode(relativeCodes: Tensor, boxes: Tensor) -> Tensor {
        precondition(boxes.rank == 2 && boxes.shape[1] == 4 && relativeCodes.shape == boxes.shape,
                     "BoxLinearCoder.decode: codes \(relativeCodes.shape) and boxes \(boxes.shape) must both be [N, 4]")
        let reference = boxes.scalars, codes = relativeCodes.scalars
        let normalize = normalizeBySize
        return Tensor(shape: boxes.shape) { out in
            for row in 0..<boxes.shape[0] {
                let x1 = reference[row * 4], y1 = reference[row * 4 + 1]
                let x2 = reference[row * 4 + 2], y2 = reference[row * 4 + 3]
                let centreX = 0.5 * (x1 + x2)
                let centreY = 0.5 * (y1 + y2)
                var left = codes[row * 4], top = codes[row * 4 + 1]
                var right = codes[row * 4 + 2], bottom = codes[row * 4 + 3]
                if normalize {
                    let width = x2 - x1, height = y2 - y1
                    left *= width; right *= width
                    top *= height; bottom *= height
                }
                out[row * 4] = centreX - left
                out[row * 4 + 1] = centreY - top
                out[row * 4 + 2] = centreX + right
                out[row * 4 + 3] = centreY + bottom
            }
        }
    }

    /// Encodes `proposals` `[N, 4]` xyxy relative to `referenceBoxes` `[N, 4]` xyxy:
    /// returns `[N, 4]` (l, t, r, b) distances from the reference centre (torchvision's
    /// `encode(reference_boxes, proposals)`).
    public func encode(referenceBoxes: Tensor, proposals: Tensor) -> Tensor {
        precondition(referenceBoxes.rank == 2 && referenceBoxes.shape[1] == 4 && referenceBoxes.shape == proposals.shape,
                     "BoxLinearCoder.encode: shapes \(referenceBoxes.shape) and \(proposals.shape) must both be [N, 4]")
        let reference = referenceBoxes.scalars, target = proposals.scalars
        let normalize = normalizeBySize
        return Tensor(shape: proposals.shape) { out in
            for row in 0..<proposals.shape[0] {
                let x1 = reference[row * 4], y1 = reference[row * 4 + 1]
                let x2 = reference[row * 4 + 2], y2 = reference[row * 4 + 3]
                let centreX = 0.5 * (x1 + x2)
                let centreY = 0.5 * (y1 + y2)
                var values = [centreX - target[row * 4], centreY - target[row * 4 + 1],
                              target[row * 4 + 2] - centreX, target[row * 4 + 3] - centreY]
                if normalize {
                    let width = x2 - x1, height = y2 - y1
                    values[0] /= width; values[1] /= height
                    values[2] /= width; values[3] /= height
                }
                for i in 0..<4 { out[row * 4 + i] = values[i] }
            }
        }
    }
}
