import ArgumentParser
import DetQKit
import Detectors
import Foundation
import Quantization

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate detectors in FP32 and quantized with several methods; print one table.",
        discussion: """
            For each model: evaluate FP32, then quantize with each method on the calibration images and \
            evaluate the quantized model on the same images. Writes the quantized files, their reports, \
            compare.json and compare.md into --out. Weights default to detectors/<model>/weights.safetensors.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: "Models, comma-separated.")
    var models: String

    @Option(help: "Weights per model, comma-separated, in the order of --models (default: the shipped weights).")
    var weights: String?

    @OptionGroup var evaluationSet: EvaluationSetOptions
    @OptionGroup var calibration: CalibrationImageOptions

    @Option(help: "Methods, comma-separated: \(QuantizationMethod.allCases.map(\.rawValue).joined(separator: ", ")).")
    var methods = "arcq,rtn"

    @Option(help: "Weight bits (2–8).")
    var wbits = 4

    @Option(help: "Activation bits (2–8).")
    var abits = 4

    @Option(help: "Weight granularity: per-tensor or per-channel.")
    var granularity = WeightGranularity.perTensor

    @Option(help: "Batch norms: fold (ranges of the folded weights) or keep (ranges of the convs before folding).")
    var batchnorm = BatchNormMode.fold

    @Option(help: "Parts to quantize, comma-separated: backbone, neck, head.")
    var scope = "backbone,neck,head"

    @Option(help: "Folder for the quantized files and the reports.")
    var out: String

    func parsedMethods() throws -> [QuantizationMethod] {
        try methods.split(separator: ",").map { name in
            guard let method = QuantizationMethod(rawValue: String(name)) else {
                throw ValidationError("unknown method '\(name)' (\(QuantizationMethod.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return method
        }
    }

    func parsedParts() throws -> Set<DetectorPart> {
        Set(try scope.split(separator: ",").map { name in
            guard let part = DetectorPart(rawValue: String(name)) else {
                throw ValidationError("unknown scope part '\(name)' (backbone, neck, head)")
            }
            return part
        })
    }

    func validate() throws {
        _ = try parsedMethods()
        _ = try parsedParts()
        for (name, bits) in [("--wbits", wbits), ("--abits", abits)] where !(2...8).contains(bits) {
            throw ValidationError("\(name) must be between 2 and 8, got \(bits)")
        }
        if let weights, weights.split(separator: ",").count != models.split(separator: ",").count {
            throw ValidationError("--weights needs one file per model")
        }
    }

    func run() throws {
        try global.apply()
        let modelList = models.split(separator: ",").map(String.init)
        let weightList: [String?] = weights.map { $0.split(separator: ",").map { String($0) } }
            ?? Array(repeating: nil, count: modelList.count)
        var options = QuantizationOptions(method: .arcq, weightBits: wbits, activationBits: abits)
        options.granularity = granularity
        options.batchNorm = batchnorm
        options.calibration.seed = calibration.seed
        let rows = try runComparison(ComparisonRequest(
            models: modelList, weights: weightList, images: evaluationSet.images, annotations: evaluationSet.annotations,
            calibrationDirectory: calibration.calibImages, calibrationCount: calibration.calibCount, methods: try parsedMethods(),
            options: options, parts: try parsedParts(), limit: evaluationSet.limit, output: out, quiet: global.quiet))
        print(comparisonTable(rows, markdown: false))
        print("report: \(URL(fileURLWithPath: out).appendingPathComponent("compare.md").path)")
    }
}
