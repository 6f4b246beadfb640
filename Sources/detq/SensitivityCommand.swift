import ArgumentParser
import DetQKit
import Foundation
import Quantization

struct Sensitivity: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure in AP where quantization hurts a detector: part × bit-width matrix, layer ranking, mixed precision.",
        discussion: """
            Quantizes one part at a time (backbone, neck, head, the head's branches; or --parts) at each \
            --bits pair with each --methods entry, evaluates it on --images, and reports AP and the drop from \
            FP32. --per-layer ranks single layers with a cheap proxy (AP against the FP32 detections and the \
            error of the score/box maps on --proxy-images images) and fully evaluates the worst --full-layers. \
            --suggest proposes per-part bits (with the first of --methods) within --max-drop AP points and writes suggested-recipe.json for \
            `detq quantize --recipe`. Writes sensitivity.json, sensitivity.md and sensitivity.svg into --out; \
            every finished evaluation is journaled there, so a rerun with the same settings resumes. \
            Each drop comes with its standard error over --bootstrap draws of the images (paired with FP32): \
            a drop within about two standard errors of another cannot be told apart from it on these images.
            Example: detq sensitivity --model fcos_mobilenet_v2_shapes \\
                       --weights detectors/fcos_mobilenet_v2_shapes/weights.safetensors \\
                       --calib-images datasets/shapes/calib/images --images datasets/shapes/val/images \\
                       --annotations datasets/shapes/val/instances.json --per-layer --suggest --out out/sens-fcos
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var modelOptions: ModelOptions

    @OptionGroup var calibration: CalibrationImageOptions
    @OptionGroup var evaluationSet: EvaluationSetOptions

    @Option(help: "Parts, comma-separated: all, backbone, neck, head, or layer-path prefixes (default: all, the parts and the head's branches).")
    var parts: String?

    @Option(help: "Weight/activation bit pairs, comma-separated.")
    var bits = "8/8,4/8,4/4"

    @Option(help: "Methods, comma-separated: \(QuantizationMethod.allCases.map(\.rawValue).joined(separator: ", ")).")
    var methods = "arcq,rtn"

    @Option(help: "Weight granularity: per-tensor or per-channel.")
    var granularity = WeightGranularity.perChannel

    @Flag(help: "Also rank single layers (each quantized alone).")
    var perLayer = false

    @Option(help: "Bits of the per-layer runs (default: the lowest pair of --bits).")
    var layerBits: String?

    @Option(help: "Method of the per-layer runs (default: the first of --methods).")
    var layerMethod: QuantizationMethod?

    @Option(help: "Images the per-layer proxy runs on.")
    var proxyImages = 16

    @Option(help: "Layers, worst by the proxy first, that get a full evaluation: a number or 'all'.")
    var fullLayers = "10"

    @Option(help: "Further layers, spread over the rest of the proxy's ranking, fully evaluated to measure the proxy's rank correlation.")
    var checkLayers = 0

    @Flag(help: "Propose per-part bits within --max-drop and write suggested-recipe.json.")
    var suggest = false

    @Option(help: "AP budget of --suggest, in AP points (AP × 100).")
    var maxDrop = 1.0

    @Option(help: "Bootstrap draws of the images for each AP drop's standard error (paired with FP32; 0: none).")
    var bootstrap = 200

    @Option(help: "Folder for sensitivity.json, .md, .svg and the journal.")
    var out: String

    func parsedBits(_ text: String, option: String) throws -> [LayerBits] {
        try text.split(separator: ",").map { field in
            guard let bits = LayerBits(parsing: String(field)) else {
                throw ValidationError("\(option): '\(field)' is not a W/A pair with bits in 2–8 (e.g. 4/8)")
            }
            return bits
        }
    }

    var request: SensitivityRequest {
        get throws {
            var request = SensitivityRequest(model: modelOptions.model, weights: modelOptions.weights,
                                             calibrationDirectory: calibration.calibImages, images: evaluationSet.images,
                                             annotations: evaluationSet.annotations,
                                             output: out)
            request.config = modelOptions.config
            request.calibrationCount = calibration.calibCount
            request.limit = evaluationSet.limit
            request.parts = parts.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            request.bits = try parsedBits(bits, option: "--bits")
            request.methods = try methods.split(separator: ",").map { name in
                guard let method = QuantizationMethod(rawValue: String(name)) else {
                    throw ValidationError("--methods: unknown method '\(name)' (\(QuantizationMethod.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                return method
            }
            request.granularity = granularity
            request.seed = calibration.seed
            request.perLayer = perLayer
            if let layerBits {
                guard let parsed = try parsedBits(layerBits, option: "--layer-bits").first, !layerBits.contains(",") else {
                    throw ValidationError("--layer-bits: one W/A pair, e.g. 4/4")
                }
                request.layerBits = parsed
            }
            request.layerMethod = layerMethod
            request.proxyImages = proxyImages
            if fullLayers == "all" {
                request.fullLayers = nil
            } else {
                guard let count = Int(fullLayers), count >= 0 else {
                    throw ValidationError("--full-layers: a number >= 0 or 'all', got '\(fullLayers)'")
                }
                request.fullLayers = count
            }
            request.checkLayers = checkLayers
            request.suggest = suggest
            request.maxDrop = maxDrop
            request.bootstrap = bootstrap
            request.quiet = global.quiet
            return request
        }
    }

    func validate() throws {
        do {
            try request.validate()
        } catch let error as SensitivityError {
            throw ValidationError(error.description)
        }
    }

    func run() throws {
        try global.apply()
        let result = try runSensitivity(try request)
        print(sensitivityMarkdown(result))
        print("wrote \(out)/sensitivity.json, sensitivity.md, sensitivity.svg"
              + (result.suggestion?.recipeFile.map { " and \($0)" } ?? ""))
    }
}
