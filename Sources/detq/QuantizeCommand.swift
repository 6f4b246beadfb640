// `detq quantize` and the `--quantized Q` options of the commands that run a model.
import ArgumentParser
import DetQKit
import Detectors
import Foundation
import Quantization

extension QuantizationMethod: ExpressibleByArgument {}
extension WeightGranularity: ExpressibleByArgument {}
extension ActivationRangeMode: ExpressibleByArgument {}
extension ExecutionMode: ExpressibleByArgument {}
extension RemainderMode: ExpressibleByArgument {}
extension CompensationErrorMeasure: ExpressibleByArgument {}
extension BatchNormMode: ExpressibleByArgument {}

/// `--quantized Q [--mode simulated|integer]` for the commands that run a model.
struct QuantizedModelOptions: ParsableArguments {
    @Option(help: "Run this quantized model (a `detq quantize --out` file made for the same --model and --weights).")
    var quantized: String?

    @Option(help: "Execution of the quantized model: simulated (fake-quant) or integer (default: the file's).")
    var mode: ExecutionMode?

    func validate() throws {
        if let quantized, !FileManager.default.fileExists(atPath: quantized) {
            throw ValidationError("--quantized \(quantized): no such file")
        }
        if mode != nil && quantized == nil { throw ValidationError("--mode needs --quantized") }
    }
}

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Quantize a detector or classifier with ARCQ or a baseline; write the quantized model (.safetensors).",
        discussion: """
            Calibrates on --calib-images (the same preprocessing as evaluation), chooses ranges per layer,
            and writes integer weights, ARCQ remainder codes, scales, activation ranges and the recipe.
            Example: detq quantize --model mobilenet_v2 --weights mobilenet_v2.pth --calib-images photos \\
                       --method arcq --wbits 4 --abits 4 --out mnv2-w4a4.safetensors --report mnv2-w4a4.json
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var modelOptions: ModelOptions

    @OptionGroup var calibration: CalibrationImageOptions

    @Option(help: "Method: \(QuantizationMethod.allCases.map(\.rawValue).joined(separator: ", ")) (required without --recipe).")
    var method: QuantizationMethod?

    @Option(help: "Weight bits (2–8; required without --recipe).")
    var wbits: Int?

    @Option(help: "Activation bits (2–8; required without --recipe).")
    var abits: Int?

    @Option(help: "Weight granularity: per-tensor (default) or per-channel.")
    var granularity: WeightGranularity?

    @Option(help: "Batch norms: fold (ranges of the folded weights, the default) or keep (ranges of the convs before folding, as the reference code; per-tensor weights then get one step per channel, the unfolded step times the norm's factor).")
    var batchnorm = BatchNormMode.fold

    @Option(help: "A mixed-precision recipe (`detq sensitivity --suggest` writes one): method, granularity and bits per part; replaces --method, --wbits, --abits, --granularity and --scope.")
    var recipe: String?

    @Option(help: "Parts to quantize, comma-separated: backbone, neck, head.")
    var scope = "backbone,neck,head"

    @Option(help: "Bits of the first conv and the prediction layers (default: first conv W8A8, prediction layers at --wbits/--abits).")
    var firstLastBits: Int?

    @Option(help: "ARCQ layers to compensate: all, none, top:F, topk:K or layers:I,J,... (1-based execution indices).")
    var compensation = "top:0.9"

    @Option(help: "Activation ranges: static (calibrated) or dynamic (per input, as the reference code).")
    var actRanges = ActivationRangeMode.static

    @Flag(help: "Keep one activation range per call of a shared layer (per pyramid level).")
    var perLevelRanges = false

    @Option(help: "Static activation ranges: fraction of the calibration images dropped at each end of the per-image minima and maxima before averaging (a trimmed mean, arcq.md §6; 0: the plain mean).")
    var calibTrim = 0.0

    @Option(help: "ARCQ remainder mode: unclamped (reference) or clamped.")
    var remainderMode = RemainderMode.unclamped

    @Option(help: "ARCQ selection error: reduction (what compensation gains) or rtn (plain error).")
    var selectionError = CompensationErrorMeasure.reduction

    @Option(help: "ARCQ clipping grid: candidates per end.")
    var clipGrid = 20

    @Option(help: "ARCQ clipping grid step.")
    var clipStep = 0.005

    @Option(help: "ARCQ clipping search passes (activations, then weights).")
    var clipPasses = 2

    @Option(help: "Norm p of the layer errors (ARCQ search, report).")
    var errorNorm = 2.4

    @Option(help: "mse method: the Lp norm (2 or 2.4).")
    var mseNorm = 2.4

    @Option(help: "percentile method: the upper percentile of activations.")
    var percentile = 99.99

    @Option(help: "adaround method: iterations per layer.")
    var adaroundIterations = 1000

    @Flag(help: "Symmetric weight quantizers (zero point at 2^(b−1)).")
    var symmetricWeights = false

    @Option(help: "Patch rows kept per layer during calibration.")
    var calibRows = 1024

    @Option(help: "Patch rows the clipping searches use.")
    var searchRows = 256

    @Option(help: "Execution mode recorded as the default for evaluation: simulated or integer.")
    var mode = ExecutionMode.simulated

    @Option(help: "The quantized model to write (.safetensors).")
    var out: String

    @Option(help: "Write the per-layer report (JSON) here.")
    var report: String?

    var options: QuantizationOptions {
        get throws {
            var options: QuantizationOptions
            if let recipe = try mixedPrecision {
                options = try QuantizationOptions(recipe: recipe)
            } else {
                guard let method, let wbits, let abits else {
                    throw ValidationError("--method, --wbits and --abits are required (or give --recipe)")
                }
                options = QuantizationOptions(method: method, weightBits: wbits, activationBits: abits)
                options.granularity = granularity ?? .perTensor
            }
            options.firstLastBits = firstLastBits
            options.batchNorm = batchnorm
            options.symmetricWeights = symmetricWeights
            options.activationRanges = actRanges
            options.perLevelActivationRanges = perLevelRanges
            options.remainderMode = remainderMode
            options.compensation = try CompensationPolicy(parsing: compensation)
            options.errorMeasure = selectionError
            options.clipSearch = ClipSearchOptions(gridSize: clipGrid, step: clipStep, passes: clipPasses, norm: errorNorm)
            options.mseNorm = mseNorm
            options.percentile = percentile
            options.adaround.iterations = adaroundIterations
            options.calibration.seed = calibration.seed
            options.calibration.rowsPerLayer = calibRows
            options.calibration.searchRows = searchRows
            options.calibration.trimFraction = calibTrim
            return options
        }
    }

    var mixedPrecision: MixedPrecisionRecipe? {
        get throws {
            guard let recipe else { return nil }
            do {
                return try MixedPrecisionRecipe.load(from: recipe)
            } catch let error as SensitivityError {
                throw ValidationError(error.description)
            }
        }
    }

    var parts: Set<DetectorPart> {
        get throws {
            let names = scope.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            var parts: Set<DetectorPart> = []
            for name in names {
                guard let part = DetectorPart(rawValue: name) else {
                    throw ValidationError("--scope: unknown part '\(name)' (backbone, neck, head)")
                }
                parts.insert(part)
            }
            guard !parts.isEmpty else { throw ValidationError("--scope: give at least one of backbone, neck, head") }
            return parts
        }
    }

    func validate() throws {
        guard modelOptions.weights != nil else { throw ValidationError("--weights is required for quantize") }
        try checkOutputFile(out, option: "--out")
        try checkOutputFile(report, option: "--report")
        _ = try parts
        if recipe != nil && (method != nil || wbits != nil || abits != nil || granularity != nil) {
            throw ValidationError("--recipe sets the method, bits and granularity: leave out --method, --wbits, --abits and --granularity")
        }
        do {
            try options.validate()
            _ = try calibrationImages(in: calibration.calibImages, count: calibration.calibCount, seed: calibration.seed)
        } catch let error as QuantizationError {
            throw ValidationError("\(error)")
        } catch let error as ModelDescriptionError {
            throw ValidationError(error.message)
        }
    }

    func run() throws {
        try global.apply()
        let request = QuantizeRequest(model: modelOptions.model, weights: modelOptions.weights, config: modelOptions.config,
                                      calibrationDirectory: calibration.calibImages, calibrationCount: calibration.calibCount, options: try options,
                                      parts: try parts, mode: mode, output: out, report: report, quiet: global.quiet,
                                      mixedPrecision: try mixedPrecision)
        let result = try runQuantize(request)
        let report = result.report
        let bits = recipe != nil ? "mixed precision" : "W\(wbits ?? 0)A\(abits ?? 0)"
        print("\(report.model): \(report.method.rawValue) \(bits), \(report.totals.layers) layers quantized, "
              + "\(report.totals.compensatedLayers) compensated")
        print(String(format: "calibration %.1f s (%d images), search %.1f s, total %.1f s",
                     report.calibrationSeconds, result.model.recipe.calibrationSamples, report.searchSeconds, report.wallSeconds))
        if report.totals.extraMultiplyAccumulates > 0 {
            print(String(format: "compensation cost: +%.1f%% MACs, +%.2f Mbit of remainder codes",
                         100 * report.totals.extraMultiplyAccumulates / max(1, report.totals.multiplyAccumulates), Double(report.totals.extraBits) / 1e6))
        }
        print("wrote \(out)" + (self.report.map { " and \($0)" } ?? ""))
    }
}
