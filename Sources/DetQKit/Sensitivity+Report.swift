// sensitivity.json, sensitivity.md and sensitivity.svg from a sensitivity run.
import Foundation

/// Writes the three files of `detq sensitivity --out` (each atomically).
func writeSensitivityOutputs(_ result: SensitivityResult, request: SensitivityRequest) throws {
    let directory = URL(fileURLWithPath: request.output)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    try writeAtomically(try encoder.encode(result), to: directory.appendingPathComponent("sensitivity.json").path)
    try writeAtomically(Data(sensitivityMarkdown(result).utf8), to: directory.appendingPathComponent("sensitivity.md").path)
    try writeAtomically(Data(sensitivitySVG(result).utf8), to: directory.appendingPathComponent("sensitivity.svg").path)
}

private func points(_ value: Double) -> String { value < 0 ? "–" : String(format: "%.1f", 100 * value) }
/// A drop in AP points (FP32 − quantized): positive = AP lost.
private func signed(_ drop: Double) -> String { String(format: "%.1f", drop == 0 ? 0 : drop) }
/// A drop with its bootstrap standard error, when there is one: `0.51 ± 0.08`, `12.3 ± 1.1`
/// (two decimals where the error is under a tenth of a point).
private func signed(_ drop: Double, standardError: Double?) -> String {
    guard let standardError else { return signed(drop) }
    let format = standardError < 0.095 ? "%.2f ± %.2f" : "%.1f ± %.1f"
    return String(format: format, drop == 0 ? 0 : drop, standardError)
}

/// The columns of the part matrix: method × bits, in request order.
private func matrixColumns(_ result: SensitivityResult) -> [(method: String, bits: String)] {
    var columns: [(method: String, bits: String)] = []
    for record in result.matrix {
        guard let method = record.method, let bits = record.bits else { continue }
        if !columns.contains(where: { $0.method == method && $0.bits == bits }) { columns.append((method, bits)) }
    }
    return columns
}

/// The Markdown report: the part × bits matrix of AP drops, the full figures per evaluation,
/// the worst layers and the proxy's agreement, the suggestion.
public func sensitivityMarkdown(_ result: SensitivityResult) -> String {
    var lines: [String] = []
    lines.append("# Quantization sensitivity of \(result.model)")
    lines.append("")
    lines.append("\(result.images) evaluation images, \(result.calibrationImages.count) calibration images, "
                 + "\(result.granularity) weights. FP32: AP \(points(result.fp32[0])), AP50 \(points(result.fp32[1])), "
                 + "AP75 \(points(result.fp32[2])). Figures are AP × 100; drop = FP32 − quantized in AP points (positive = lost)"
                 + (result.bootstrapDraws.map { "; ± is the drop's standard error over \($0) bootstrap draws of the images, "
                     + "paired with FP32 (`--bootstrap`)" } ?? "") + ".")
    lines.append("")
    let columns = matrixColumns(result)
    lines.append("## AP drop by part (only that part quantized)")
    lines.append("")
    lines.append("| part | layers | " + columns.map { "\($0.method) W\($0.bits.replacingOccurrences(of: "/", with: "A"))" }
        .joined(separator: " | ") + " |")
    lines.append("|---|---:|" + columns.map { _ in "---:" }.joined(separator: "|") + "|")
    for part in result.parts {
        let cells = columns.map { column -> String in
            let key = "part|\(part.name)|\(column.method)|\(column.bits)"
            guard let record = result.matrix.first(where: { $0.key == key }), let drop = result.drop(record) else { return "" }
            return signed(drop, standardError: record.dropStandardError)
        }
        lines.append("| \(part.name) | \(part.layers.count) | " + cells.joined(separator: " | ") + " |")
    }
    lines.append("")
    lines.append("## Every evaluation")
    lines.append("")
    lines.append("| part | method | W/A | AP | AP50 | AP75 | APs | APm | APl | drop | drop 95 % interval | s |")
    lines.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    lines.append("| fp32 | | | " + result.fp32.prefix(6).map(points).joined(separator: " | ") + " | | | |")
    for record in result.matrix {
        guard let stats = record.stats, let drop = result.drop(record) else { continue }
        let interval = record.dropInterval95.map { String(format: "[%.2f, %.2f]", $0[0], $0[1]) } ?? ""
        lines.append("| \(record.part ?? "") | \(record.method ?? "") | \(record.bits ?? "") | "
                     + stats.prefix(6).map(points).joined(separator: " | ")
                     + " | \(signed(drop, standardError: record.dropStandardError)) | \(interval) | "
                     + "\(String(format: "%.0f", record.seconds)) |")
    }
    if !result.layers.isEmpty {
        lines.append("")
        lines.append("## Layers, most damaging first (\(result.layerMethod ?? "") W/A \(result.layerBits ?? ""), one layer quantized)")
        lines.append("")
        lines.append("Proxy: AP of the quantized detections against the FP32 detections (score ≥ the proxy threshold) on "
                     + "the first images, and the relative RMS error of the score and box maps. "
                     + "Layers are ranked by the proxy; the worst get a full evaluation (and, with --check-layers, layers spread "
                     + "over the rest of the ranking, to measure the proxy).")
        if let rho = result.proxyRankCorrelation {
            lines.append("")
            lines.append("Spearman correlation of the proxy's damage (1 − proxy AP) with the full AP drop over "
                         + "\(result.proxyCorrelationLayers) layers: **\(String(format: "%.2f", rho))**.")
        }
        lines.append("")
        lines.append("| rank | layer | part | proxy AP | score-map error | box-map error | AP drop |")
        lines.append("|---:|---|---|---:|---:|---:|---:|")
        for row in result.layers.prefix(25) {
            lines.append("| \(row.proxyRank) | `\(row.layer)` | \(row.part) | \(String(format: "%.3f", row.proxyAP)) | "
                         + "\(String(format: "%.4f", row.scoreMapError)) | \(String(format: "%.4f", row.boxMapError)) | "
                         + (row.apDrop.map { signed($0, standardError: row.apDropStandardError) } ?? "") + " |")
        }
        if result.layers.count > 25 { lines.append("") ; lines.append("(\(result.layers.count - 25) more in sensitivity.json)") }
    }
    if let suggestion = result.suggestion {
        lines.append("")
        lines.append("## Suggested mixed precision (\(suggestion.method))")
        lines.append("")
        lines.append(suggestion.parts.keys.sorted().map { "\($0): \(suggestion.parts[$0] ?? "")" }.joined(separator: ", ")
                     + String(format: " — estimated drop %.2f, measured ", suggestion.estimatedDrop)
                     + (suggestion.measuredDrop.map { String(format: "%.2f", $0) } ?? "–")
                     + (suggestion.measuredDropStandardError.map { String(format: " ± %.2f", $0) } ?? "") + " AP points, "
                     + String(format: "%.3g", suggestion.bitOperations) + " bit operations per image.")
        if let file = suggestion.recipeFile { lines.append(""); lines.append("Recipe: `\(file)` (`detq quantize --recipe`).") }
        lines.append("")
        lines.append(suggestion.note + ".")
    }
    return lines.joined(separator: "\n") + "\n"
}

private func escape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;")
}

/// White (no drop) through yellow to dark red (`scale` AP points or more); green for a gain.
private func dropColour(_ drop: Double, scale: Double) -> String {
    if drop < 0 {
        let t = min(1, -drop / scale)
        return String(format: "#%02x%02x%02x", Int(255 - 120 * t), Int(255 - 40 * t), Int(255 - 120 * t))
    }
    let t = min(1, drop / scale)
    let (r, g, b): (Double, Double, Double) = t < 0.5
        ? (255, 255 - 60 * t * 2, 255 - 175 * t * 2)
        : (255 - 90 * (t - 0.5) * 2, 195 - 170 * (t - 0.5) * 2, 80 - 50 * (t - 0.5) * 2)
    return String(format: "#%02x%02x%02x", Int(r), Int(g), Int(b))
}

/// A heat map of the part × (method, bits) AP drops and a bar chart of the worst layers.
public func sensitivitySVG(_ result: SensitivityResult) -> String {
    let columns = matrixColumns(result)
    let labelWidth = 230.0, cellWidth = 92.0, cellHeight = 30.0, top = 92.0
    let width = max(760, labelWidth + cellWidth * Double(columns.count) + 40)
    let drops = result.matrix.compactMap { result.drop($0) }
    let scale = max(5, (drops.max() ?? 0))
    var svg: [String] = []
    let heatHeight = top + cellHeight * Double(result.parts.count) + 60
    let bars = Array(result.layers.filter { $0.apDrop != nil }.sorted { ($0.apDrop ?? 0) > ($1.apDrop ?? 0) }.prefix(15))
    let proxyBars = bars.isEmpty ? Array(result.layers.prefix(15)) : []
    let barRows = bars.isEmpty ? proxyBars.count : bars.count
    let barTop = heatHeight + 40
    let height = barRows > 0 ? barTop + 24 * Double(barRows) + 50 : heatHeight
    svg.append("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
               + "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"13\">")
    svg.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>")
    svg.append("<text x=\"20\" y=\"28\" font-size=\"18\" font-weight=\"bold\">\(escape(result.model)): AP drop when one part is quantized</text>")
    svg.append("<text x=\"20\" y=\"48\" fill=\"#555\">FP32 AP \(points(result.fp32[0])); cells: AP points lost "
               + "(\(result.granularity) weights, \(result.images) images); darker = worse</text>")
    for (index, column) in columns.enumerated() {
        let x = labelWidth + cellWidth * Double(index) + cellWidth / 2
        svg.append("<text x=\"\(x)\" y=\"\(top - 8)\" text-anchor=\"middle\" font-weight=\"bold\">"
                   + "\(escape(column.method)) W\(column.bits.replacingOccurrences(of: "/", with: "A"))</text>")
    }
    for (row, part) in result.parts.enumerated() {
        let y = top + cellHeight * Double(row)
        svg.append("<text x=\"\(labelWidth - 10)\" y=\"\(y + cellHeight / 2 + 5)\" text-anchor=\"end\">"
                   + "\(escape(part.name)) (\(part.layers.count))</text>")
        for (index, column) in columns.enumerated() {
            let x = labelWidth + cellWidth * Double(index)
            let key = "part|\(part.name)|\(column.method)|\(column.bits)"
            guard let record = result.matrix.first(where: { $0.key == key }), let drop = result.drop(record) else { continue }
            let fill = dropColour(drop, scale: scale)
            let ink = drop > scale * 0.6 ? "white" : "black"
            svg.append("<rect x=\"\(x)\" y=\"\(y)\" width=\"\(cellWidth - 2)\" height=\"\(cellHeight - 2)\" fill=\"\(fill)\" stroke=\"#ccc\"/>")
            svg.append("<text x=\"\(x + cellWidth / 2 - 1)\" y=\"\(y + cellHeight / 2 + 5)\" text-anchor=\"middle\" "
                       + "fill=\"\(ink)\">\(signed(drop, standardError: record.dropStandardError))</text>")
        }
    }
    // Colour scale under the heat map.
    let legendY = top + cellHeight * Double(result.parts.count) + 14
    for step in 0..<10 {
        let value = scale * Double(step) / 9
        svg.append("<rect x=\"\(labelWidth + 18 * Double(step))\" y=\"\(legendY)\" width=\"18\" height=\"12\" "
                   + "fill=\"\(dropColour(value, scale: scale))\" stroke=\"#ccc\"/>")
    }
    svg.append("<text x=\"\(labelWidth - 10)\" y=\"\(legendY + 11)\" text-anchor=\"end\" fill=\"#555\">AP points lost: 0</text>")
    svg.append("<text x=\"\(labelWidth + 186)\" y=\"\(legendY + 11)\" fill=\"#555\">\(String(format: "%.0f", scale)) or more "
               + "(negative = better than FP32, green)</text>")
    if barRows > 0 {
        let title = bars.isEmpty
            ? "Worst layers by the proxy (1 − AP against FP32 detections), \(result.layerMethod ?? "") W/A \(result.layerBits ?? "")"
            : "Worst single layers: AP drop, \(result.layerMethod ?? "") W/A \(result.layerBits ?? ""), one layer quantized"
        svg.append("<text x=\"20\" y=\"\(barTop - 12)\" font-size=\"16\" font-weight=\"bold\">\(escape(title))</text>")
        let values = bars.isEmpty ? proxyBars.map { 100 * (1 - $0.proxyAP) } : bars.map { $0.apDrop ?? 0 }
        let errors: [Double?] = bars.isEmpty ? proxyBars.map { _ in nil } : bars.map(\.apDropStandardError)
        let names = bars.isEmpty ? proxyBars.map(\.layer) : bars.map(\.layer)
        let largest = max(values.max() ?? 1, 1e-9)
        let barLeft = 330.0, barWidth = width - barLeft - 80
        for (index, value) in values.enumerated() {
            let y = barTop + 24 * Double(index)
            let length = max(1, barWidth * max(value, 0) / largest)
            svg.append("<text x=\"\(barLeft - 8)\" y=\"\(y + 15)\" text-anchor=\"end\" font-size=\"12\">\(escape(names[index]))</text>")
            svg.append("<rect x=\"\(barLeft)\" y=\"\(y + 3)\" width=\"\(length)\" height=\"17\" fill=\"#c0392b\"/>")
            svg.append("<text x=\"\(barLeft + length + 6)\" y=\"\(y + 16)\" font-size=\"12\">"
                       + "\(errors[index].map { signed(value, standardError: $0) } ?? String(format: "%.1f", value))</text>")
        }
    }
    svg.append("</svg>")
    return svg.joined(separator: "\n") + "\n"
}
