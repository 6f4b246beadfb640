// `detq compare`: FP32 against quantization methods on the same models and images, in one table.
import COCO
import Detectors
import Foundation
import Quantization

/// One row of a comparison: a model evaluated in float or after one quantization method.
public struct ComparisonRow: Codable, Sendable {
    public var model: String
    /// `fp32`, or the method and bits, e.g. `arcq W4A4`.
    public var variant: String
    /// AP, AP50, AP75, APs, APm, APl (pycocotools' first six stats).
    public var stats: [Double]
    /// AP drop from the model's FP32 row, in AP points (× 100).
    public var dropFromFP32: Double
    public var quantizeSeconds: Double?
    public var evalSeconds: Double
    public var quantizedFile: String?
}

/// What `detq compare` does for each model.
public struct ComparisonRequest {
    public var models: [String]
    /// Per model; nil entries mean `detectors/<model>/weights.safetensors`.
    public var weights: [String?]
    public var images: String
    public var annotations: String
    public var calibrationDirectory: String
    public var calibrationCount: Int
    public var methods: [QuantizationMethod]
    public var options: QuantizationOptions
    public var parts: Set<DetectorPart>
    public var limit: Int?
    public var output: String
    public var quiet: Bool

    public init(models: [String], weights: [String?], images: String, annotations: String,
                calibrationDirectory: String, calibrationCount: Int, methods: [QuantizationMethod],
                options: QuantizationOptions, parts: Set<DetectorPart>, limit: Int?, output: String, quiet: Bool) {
        self.models = models
        self.weights = weights
        self.images = images
        self.annotations = annotations
        self.calibrationDirectory = calibrationDirectory
        self.calibrationCount = calibrationCount
        self.methods = methods
        self.options = options
        self.parts = parts
        self.limit = limit
        self.output = output
        self.quiet = quiet
    }
}

/// The shipped weights of `model` (`detectors/<model>/weights.safetensors`), if present.
public func shippedWeights(model: String) -> String? {
    guard let root = ModelCatalog.detectorsRoot() else { return nil }
    let path = root.appendingPathComponent(model).appendingPathComponent("weights.safetensors").path
    return FileManager.default.fileExists(atPath: path) ? path : nil
}

/// Evaluates every model in float, then quantized with each method (files and reports in
/// `output`), and returns the rows; writes `compare.json` and `compare.md` in `output`.
public func runComparison(_ request: ComparisonRequest) throws -> [ComparisonRow] {
    try request.options.validate()
    try createOutputDirectory(request.output)
    // Everything that can be checked is checked before the first evaluation.
    var weights: [String] = []
    for (model, given) in zip(request.models, request.weights) {
        guard let path = given ?? shippedWeights(model: model) else {
            throw EvaluationRunError("model \(model): no --weights given and no detectors/\(model)/weights.safetensors")
        }
        weights.append(path)
    }
    _ = try calibrationImages(in: request.calibrationDirectory, count: request.calibrationCount,
                              seed: request.options.calibration.seed)
    let bits = "W\(request.options.weightBits)A\(request.options.activationBits)"
    var rows: [ComparisonRow] = []
    for (model, weightsPath) in zip(request.models, weights) {
        let detection = try DetectionModel(model: model, weights: weightsPath)
        let selection = ImageSelection(limit: request.limit)
        let float = try runEvaluation(model: detection, imagesDirectory: request.images, annotations: request.annotations,
                                      selection: selection, resultsPath: nil, resume: false, quiet: request.quiet)
        let floatAP = float.evaluation.stats[0]
        rows.append(ComparisonRow(model: model, variant: "fp32", stats: Array(float.evaluation.stats.prefix(6)),
                                  dropFromFP32: 0, quantizeSeconds: nil, evalSeconds: float.wallSeconds, quantizedFile: nil))
        for method in request.methods {
            var options = request.options
            options.method = method
            let file = URL(fileURLWithPath: request.output)
                .appendingPathComponent("\(model)-\(method.rawValue)-\(bits.lowercased()).safetensors").path
            let start = Date()
            _ = try runQuantize(QuantizeRequest(
                model: model, weights: weightsPath, config: nil, calibrationDirectory: request.calibrationDirectory,
                calibrationCount: request.calibrationCount, options: options, parts: request.parts,
                mode: .simulated, output: file, report: file.replacingOccurrences(of: ".safetensors", with: ".report.json"),
                quiet: request.quiet))
            let quantizeSeconds = Date().timeIntervalSince(start)
            _ = try installQuantized(file, on: detection.detector, modelName: model, mode: nil)
            defer { QuantizedModel.uninstall(from: detection.detector) }
            let quantized = try runEvaluation(model: detection, imagesDirectory: request.images,
                                              annotations: request.annotations, selection: selection,
                                              resultsPath: nil, resume: false, quiet: request.quiet)
            rows.append(ComparisonRow(model: model, variant: "\(method.rawValue) \(bits)",
                                      stats: Array(quantized.evaluation.stats.prefix(6)),
                                      dropFromFP32: 100 * (floatAP - quantized.evaluation.stats[0]),
                                      quantizeSeconds: quantizeSeconds, evalSeconds: quantized.wallSeconds,
                                      quantizedFile: file))
        }
    }
    let directory = URL(fileURLWithPath: request.output)
    try writeAtomically(try encodeJSON(rows), to: directory.appendingPathComponent("compare.json").path)
    try writeAtomically(Data(comparisonTable(rows, markdown: true).utf8),
                        to: directory.appendingPathComponent("compare.md").path)
    return rows
}

/// The rows as a table (AP figures × 100), plain or Markdown.
public func comparisonTable(_ rows: [ComparisonRow], markdown: Bool) -> String {
    let header = ["model", "variant", "AP", "AP50", "AP75", "APs", "APm", "APl", "drop"]
    func format(_ value: Double) -> String { value < 0 ? "–" : String(format: "%.1f", 100 * value) }
    let body = rows.map { row in
        [row.model, row.variant] + row.stats.map(format)
            + [row.variant == "fp32" ? "" : String(format: "%+.1f", -row.dropFromFP32)]
    }
    if markdown {
        var lines = ["| " + header.joined(separator: " | ") + " |",
                     "| " + header.map { _ in "---" }.joined(separator: " | ") + " |"]
        lines += body.map { "| " + $0.joined(separator: " | ") + " |" }
        return lines.joined(separator: "\n") + "\n"
    }
    let widths = header.indices.map { column in ([header] + body).map { $0[column].count }.max() ?? 0 }
    return ([header] + body).map { cells in
        cells.enumerated().map { column, cell in
            column < 2 ? cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                : String(repeating: " ", count: widths[column] - cell.count) + cell
        }.joined(separator: "  ")
    }.joined(separator: "\n")
}
