// JSON outputs of an evaluation: the `cocoeval --json` report and the precision/recall curves file.
import Foundation

extension COCOEvaluation {
    /// The `cocoeval --json` object (SPEC.md), one category per line:
    /// `{"stats": [12 numbers], "per_category": [{"category_id", "name", "ap", "ap50", "ap75", "ar100"}]}`.
    /// Numbers are written in their shortest round-trip form; -1 stays -1. `extraMembers` (name,
    /// JSON text) follow `per_category` (e.g. `cocoeval --bootstrap`'s figures).
    public func reportJSON(extraMembers: [(name: String, json: String)] = []) -> String {
        var text = "{\"stats\": [" + stats.map(jsonNumber).joined(separator: ", ") + "],\n \"per_category\": ["
        for (index, row) in perCategory.enumerated() {
            text += index == 0 ? "\n  " : ",\n  "
            text += "{\"category_id\": \(row.categoryId), \"name\": \(jsonString(row.name)), "
                + "\"ap\": \(jsonNumber(row.ap)), \"ap50\": \(jsonNumber(row.ap50)), "
                + "\"ap75\": \(jsonNumber(row.ap75)), \"ar100\": \(jsonNumber(row.ar100))}"
        }
        text += perCategory.isEmpty ? "]" : "\n ]"
        for member in extraMembers { text += ",\n \(jsonString(member.name)): \(member.json)" }
        return text + "}\n"
    }

    /// The curves file (`cocoeval --curves`): one JSON object with
    /// - `iou_thresholds` (T), `recall_thresholds` (R), `category_ids` (K; `[-1]` without
    ///   categories), `area_ranges` (A labels: all, small, medium, large), `max_detections` (M);
    /// - `precision`: nested arrays `[T][R][K][A][M]`, pycocotools' `eval['precision']`;
    /// - `recall`: nested arrays `[T][K][A][M]`, pycocotools' `eval['recall']`;
    /// -1 where there is no ground truth. `numpy.array(curves["precision"])` has shape (T, R, K, A, M).
    public func curvesJSON() -> String {
        let (t, r, k, a, m) = counts
        var text = "{\"iou_thresholds\": [" + parameters.iouThresholds.map(jsonNumber).joined(separator: ", ") + "],\n"
        text += " \"recall_thresholds\": [" + parameters.recallThresholds.map(jsonNumber).joined(separator: ", ") + "],\n"
        text += " \"category_ids\": [" + categoryIds.map(String.init).joined(separator: ", ") + "],\n"
        text += " \"area_ranges\": [" + parameters.areaRanges.map { jsonString($0.label) }.joined(separator: ", ") + "],\n"
        text += " \"max_detections\": [" + parameters.maxDetections.map(String.init).joined(separator: ", ") + "],\n"
        text += " \"precision\": "
        text += nested(precision, shape: [t, r, k, a, m])
        text += ",\n \"recall\": "
        text += nested(recall, shape: [t, k, a, m])
        text += "}\n"
        return text
    }

    /// Writes `curvesJSON()` to `path` through a temporary file in the same folder and a rename.
    public func writeCurves(to path: String) throws(COCOError) {
        try writeAtomically(Array(curvesJSON().utf8), to: path)
    }
}

/// Row-major `values` of `shape` as nested JSON arrays, the outermost level one per line.
private func nested(_ values: [Double], shape: [Int]) -> String {
    var text = ""
    text.reserveCapacity(values.count * 8)
    var index = 0
    func emit(_ level: Int) {
        text += "["
        for item in 0..<shape[level] {
            if item > 0 { text += level == 0 ? ",\n  " : ", " }
            if level == shape.count - 1 {
                text += jsonNumber(values[index])
                index += 1
            } else {
                emit(level + 1)
            }
        }
        text += "]"
    }
    emit(0)
    return text
}

/// The shortest digits that read back as `value` (Swift's description; JSON-valid for finite values),
/// as the reports write numbers: for callers that add members to `reportJSON`.
public func jsonNumber(_ value: Double) -> String {
    if value == value.rounded(), abs(value) < 1e15 { return String(Int(value)) }
    return value.description
}

/// A JSON string literal.
public func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 {
                out += String(format: "\\u%04x", scalar.value)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

/// Writes `bytes` to `path` whole or not at all: a temporary name in the same folder, then rename.
func writeAtomically(_ bytes: [UInt8], to path: String) throws(COCOError) {
    let url = URL(fileURLWithPath: path)
    let temporary = url.deletingLastPathComponent()
        .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())").path
    let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard descriptor >= 0 else { throw COCOError.unwritableFile(path: path, reason: String(cString: strerror(errno))) }
    var written = 0
    var failure: Int32 = 0
    bytes.withUnsafeBytes { raw in
        guard let base = raw.baseAddress else { return }
        while written < raw.count {
            let n = write(descriptor, base + written, raw.count - written)
            if n < 0, errno == EINTR { continue }
            if n <= 0 {
                failure = n < 0 ? errno : EIO
                return
            }
            written += n
        }
    }
    if close(descriptor) != 0, failure == 0 { failure = errno }
    if failure == 0, rename(temporary, path) != 0 { failure = errno }
    if failure != 0 {
        unlink(temporary)
        throw COCOError.unwritableFile(path: path, reason: String(cString: strerror(failure)))
    }
}
