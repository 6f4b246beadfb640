// Box areas, IoU, clipping, size filtering and rescaling as torchvision 0.14's ops/boxes.py
// and `resize_boxes` in models/detection/transform.py.
import TensorCore

/// The area `(x2 - x1) * (y2 - y1)` of each box of `boxes` `[N, 4]` xyxy; returns N values.
public func boxArea(_ boxes: Tensor) -> [Float] {
    precondition(boxes.rank == 2 && boxes.shape[1] == 4, "boxArea: boxes must be [N, 4], got \(boxes.shape)")
    let values = boxes.scalars
    return (0..<boxes.shape[0]).map { row in
        (values[row * 4 + 2] - values[row * 4]) * (values[row * 4 + 3] - values[row * 4 + 1])
    }
}

/// Intersection over union of every pair: `boxes1` `[N, 4]`, `boxes2` `[M, 4]` xyxy →
/// `[N, M]`, as torchvision's `box_iou` (`inter / (area1 + area2 - inter)`, no +1).
public func boxIoU(_ boxes1: Tensor, _ boxes2: Tensor) -> Tensor {
    precondition(boxes1.rank == 2 && boxes1.shape[1] == 4 && boxes2.rank == 2 && boxes2.shape[1] == 4,
                 "boxIoU: boxes must be [N, 4] and [M, 4], got \(boxes1.shape) and \(boxes2.shape)")
    let n = boxes1.shape[0], m = boxes2.shape[0]
    let area1 = boxArea(boxes1), area2 = boxArea(boxes2)
    let a = boxes1.scalars, b = boxes2.scalars
    return Tensor(shape: [n, m]) { out in
        for i in 0..<n {
            for j in 0..<m {
                let left = max(a[i * 4], b[j * 4]), top = max(a[i * 4 + 1], b[j * 4 + 1])
                let right = min(a[i * 4 + 2], b[j * 4 + 2]), bottom = min(a[i * 4 + 3], b[j * 4 + 3])
                let intersection = max(right - left, 0) * max(bottom - top, 0)
                out[i * m + j] = intersection / (area1[i] + area2[j] - intersection)
            }
        }
    }
}

/// Clamps x to `[0, imageSize.w]` and y to `[0, imageSize.h]` for `boxes` `[..., 4]` xyxy
/// (torchvision's `clip_boxes_to_image`); returns the same shape.
public func clipBoxesToImage(_ boxes: Tensor, imageSize: Size2) -> Tensor {
    precondition(boxes.rank >= 1 && boxes.shape[boxes.rank - 1] % 2 == 0,
                 "clipBoxesToImage: last axis must hold x, y pairs, got \(boxes.shape)")
    let width = Float(imageSize.w), height = Float(imageSize.h)
    var clipped = boxes
    clipped.withUnsafeMutableBufferPointer { values in
        for index in values.indices {
            // clamp(min:, max:) as torch: NaN stays NaN
            let limit = index % 2 == 0 ? width : height
            let value = values[index]
            values[index] = value < 0 ? 0 : (value > limit ? limit : value)
        }
    }
    return clipped
}

/// Indices (ascending) of the boxes of `boxes` `[N, 4]` xyxy whose width and height are both
/// `>= minSize` (torchvision's `remove_small_boxes`; the comparison is in Float32, as torch
/// compares a Float32 tensor with a Python scalar).
public func removeSmallBoxes(_ boxes: Tensor, minSize: Double) -> [Int] {
    precondition(boxes.rank == 2 && boxes.shape[1] == 4, "removeSmallBoxes: boxes must be [N, 4], got \(boxes.shape)")
    let threshold = Float(minSize)
    let values = boxes.scalars
    return (0..<boxes.shape[0]).filter { row in
        values[row * 4 + 2] - values[row * 4] >= threshold && values[row * 4 + 3] - values[row * 4 + 1] >= threshold
    }
}

/// Rescales `boxes` `[N, 4]` xyxy from an image of `originalSize` to one of `newSize`
/// (torchvision's `resize_boxes`): x times `Float(new.w) / Float(original.w)`, y likewise.
public func resizeBoxes(_ boxes: Tensor, from originalSize: Size2, to newSize: Size2) -> Tensor {
    precondition(boxes.rank == 2 && boxes.shape[1] == 4, "resizeBoxes: boxes must be [N, 4], got \(boxes.shape)")
    let ratioWidth = Float(newSize.w) / Float(originalSize.w)
    let ratioHeight = Float(newSize.h) / Float(originalSize.h)
    var resized = boxes
    resized.withUnsafeMutableBufferPointer { values in
        for index in values.indices {
            values[index] *= index % 2 == 0 ? ratioWidth : ratioHeight
        }
    }
    return resized
}
