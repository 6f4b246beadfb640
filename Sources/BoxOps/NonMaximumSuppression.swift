// Non-maximum suppression as torchvision 0.14's CPU `nms` kernel and `batched_nms` (ops/boxes.py).
import TensorCore

/// Greedy non-maximum suppression over `boxes` `[N, 4]` xyxy with `scores` (N values).
///
/// Boxes are visited by score, highest first; a visited box that is not suppressed is kept
/// and suppresses every later box whose IoU with it is `> iouThreshold`. IoU uses areas
/// `(x2 - x1) * (y2 - y1)` (no +1) in Float32, compared with the Double threshold as the C++
/// kernel does.
///
/// Ties: torch's `sort(descending: true)` is not stable for more than 16 elements, so
/// torchvision's order among equal scores is an artefact of its sort. detq breaks ties by the
/// lower index first (a stable sort); results equal torchvision's whenever scores are distinct.
/// - Returns: the kept indices into `boxes`, by decreasing score.
public func nms(boxes: Tensor, scores: [Float], iouThreshold: Double) -> [Int] {
    precondition(boxes.rank == 2 && boxes.shape[1] == 4, "nms: boxes must be [N, 4], got \(boxes.shape)")
    precondition(scores.count == boxes.shape[0], "nms: \(scores.count) scores for \(boxes.shape[0]) boxes")
    let count = scores.count
    if count == 0 { return [] }
    let order = indicesByDescendingScore(scores)
    let areas = boxArea(boxes)
    var suppressed = [Bool](repeating: false, count: count)
    var keep: [Int] = []
    boxes.withUnsafeBufferPointer { b in
        for (position, i) in order.enumerated() where !suppressed[i] {
            keep.append(i)
            let x1 = b[i * 4], y1 = b[i * 4 + 1], x2 = b[i * 4 + 2], y2 = b[i * 4 + 3]
            let area = areas[i]
            for j in order[(position + 1)...] where !suppressed[j] {
                let left = max(x1, b[j * 4]), top = max(y1, b[j * 4 + 1])
                let right = min(x2, b[j * 4 + 2]), bottom = min(y2, b[j * 4 + 3])
                let intersection = max(0, right - left) * max(0, bottom - top)
                let overlap = intersection / (area + areas[j] - intersection)
                if Double(overlap) > iouThreshold { suppressed[j] = true }
            }
        }
    }
    return keep
}

/// Non-maximum suppression applied per label: boxes of different `labels` never suppress
/// each other (torchvision's `batched_nms`).
///
/// As torchvision on the CPU, up to 1000 boxes (`boxes.numel() <= 4000`) go through the
/// coordinate-offset trick — every box is shifted by `label * (maxCoordinate + 1)` in Float32
/// and one `nms` runs on the shifted boxes — and more boxes go through one `nms` per label,
/// the kept indices then sorted by score. The two agree except where the Float32 shift rounds
/// an IoU across the threshold, which is why detq follows the same switch.
/// - Parameters:
///   - boxes: `[N, 4]` xyxy.
///   - scores: N scores.
///   - labels: N class (or level) indices, `>= 0`.
///   - iouThreshold: boxes with IoU `>` this are suppressed.
/// - Returns: the kept indices into `boxes`, by decreasing score (ties: lower index first).
public func batchedNMS(boxes: Tensor, scores: [Float], labels: [Int], iouThreshold: Double) -> [Int] {
    precondition(boxes.rank == 2 && boxes.shape[1] == 4, "batchedNMS: boxes must be [N, 4], got \(boxes.shape)")
    precondition(scores.count == boxes.shape[0] && labels.count == boxes.shape[0],
                 "batchedNMS: \(scores.count) scores and \(labels.count) labels for \(boxes.shape[0]) boxes")
    if boxes.count > 4000 {
        return batchedNMSPerLabel(boxes: boxes, scores: scores, labels: labels, iouThreshold: iouThreshold)
    }
    return batchedNMSCoordinateTrick(boxes: boxes, scores: scores, labels: labels, iouThreshold: iouThreshold)
}

/// torchvision's `_batched_nms_coordinate_trick`: one `nms` on boxes shifted per label.
func batchedNMSCoordinateTrick(boxes: Tensor, scores: [Float], labels: [Int], iouThreshold: Double) -> [Int] {
    if boxes.count == 0 { return [] }
    let maxCoordinate = boxes.scalars.max() ?? 0
    let step = maxCoordinate + 1
    var shifted = boxes
    shifted.withUnsafeMutableBufferPointer { values in
        for row in 0..<labels.count {
            let offset = Float(labels[row]) * step
            for k in 0..<4 { values[row * 4 + k] += offset }
        }
    }
    return nms(boxes: shifted, scores: scores, iouThreshold: iouThreshold)
}

/// torchvision's `_batched_nms_vanilla`: one `nms` per label, kept indices sorted by score.
func batchedNMSPerLabel(boxes: Tensor, scores: [Float], labels: [Int], iouThreshold: Double) -> [Int] {
    var members: [Int: [Int]] = [:]
    for (index, label) in labels.enumerated() { members[label, default: []].append(index) }
    var kept = [Bool](repeating: false, count: labels.count)
    let values = boxes.scalars
    for indices in members.values {
        var subset = [Float](repeating: 0, count: indices.count * 4)
        for (position, index) in indices.enumerated() {
            for k in 0..<4 { subset[position * 4 + k] = values[index * 4 + k] }
        }
        let keep = nms(boxes: Tensor(shape: [indices.count, 4], scalars: subset),
                       scores: indices.map { scores[$0] }, iouThreshold: iouThreshold)
        for position in keep { kept[indices[position]] = true }
    }
    let keptIndices = kept.indices.filter { kept[$0] }
    let order = indicesByDescendingScore(keptIndices.map { scores[$0] })
    return order.map { keptIndices[$0] }
}

/// Indices that sort `scores` in decreasing order; equal scores keep their index order, and
/// NaN sorts first, as torch's descending sort places it.
func indicesByDescendingScore(_ scores: [Float]) -> [Int] {
    scores.indices.sorted { a, b in
        let sa = scores[a], sb = scores[b]
        if sa.isNaN || sb.isNaN {
            if sa.isNaN != sb.isNaN { return sa.isNaN }
            return a < b
        }
        if sa != sb { return sa > sb }
        return a < b
    }
}
