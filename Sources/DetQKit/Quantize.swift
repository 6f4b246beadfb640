// `detq quantize`: a classifier or detector, its calibration images, the Quantization pipeline, the file and report.
import Checkpoints
import Detectors
import Foundation
import ImageIO
import Layers
import Quantization
import TensorCore

/// A model `quantize` can work on: an ImageNet classifier or a detector, with its calibration
/// forward (the same preprocessing as evaluation) and the parts of its layers.
public enum QuantizationTarget {
    case classifier(ClassificationModel)
    case detector(DetectionModel)

    /// Builds `model` (classifier when its config says `"task": "classification"`) and loads
    /// `weights` strictly, batch norms folded.
    public init(model: String, weights: String?, configPath: String?) throws {
        let url = try ModelCatalog.configURL(model: model, configPath: configPath)
        struct Probe: Decodable { var task: String? }
        let task = (try? ModelCatalog.decode(Probe.self, from: url))?.task
        if task == "classification" {
            self = .classifier(try ClassificationModel(model: model, weights: weights, configPath: configPath))
        } else {
            self = .detector(try DetectionModel(model: model, weights: weights, configPath: configPath))
        }
    }

    public var name: String {
        switch self {
        case .classifier(let model): model.name
        case .detector(let model): model.name
        }
    }

    /// The layer tree.
    public var network: any Module {
        switch self {
        case .classifier(let model): model.network
        case .detector(let model): model.detector
        }
    }

    /// The float forward of one calibration image, through the model's own preprocessing
    /// (ImageNet resize/crop/normalize, or the detector's transform).
    public func runCalibration(_ image: RGBImage) {
        switch self {
        case .classifier(let model): _ = model.network(model.preprocess(image))
        case .detector(let model): _ = model.detect(image)
        }
    }

    /// The part of a layer path: a classifier is all `backbone`; a detector says.
    public func part(of path: String) -> DetectorPart? {
        switch self {
        case .classifier: .backbone
        case .detector(let model): model.detector.part(of: path)
        }
    }

    /// The conv/linear layers of `parts`, the first conv of the network, and the prediction
    /// layers (a classifier's last linear; a detector's `cls_logits`, `bbox_pred`, `bbox_reg`,
    /// `bbox_ctrness`, `cls_score` and the last conv of each SSD `module_list` entry).
    public func quantizationScope(parts: Set<DetectorPart>) -> QuantizationScope {
        let layers = network.namedModules().filter { QuantizableLayer($0.module) != nil }
        var scope = QuantizationScope(parts: [:])
        for (path, _) in layers {
            if let part = part(of: path), parts.contains(part) { scope.parts[path] = part.rawValue }
        }
        if let first = layers.first(where: { $0.module is Conv2d }) { scope.firstLayers = [first.path] }
        switch self {
        case .classifier:
            if let last = layers.last(where: { $0.module is Linear }) { scope.lastLayers = [last.path] }
        case .detector:
            scope.lastLayers = predictionLayers(layers.map(\.path))
        }
        return scope
    }
}

/// Detector prediction layers by name (torchvision's heads).
func predictionLayers(_ paths: [String]) -> Set<String> {
    let names: Set<String> = ["cls_logits", "bbox_pred", "bbox_reg", "bbox_ctrness", "cls_score"]
    var result = Set(paths.filter { names.contains(String($0.split(separator: ".").last ?? "")) })
    // SSD/SSDlite: head.{classification,regression}_head.module_list.N[.…]: the last layer of each entry.
    var lastOfEntry: [String: String] = [:]
    for path in paths where path.contains("_head.module_list.") {
        let components = path.split(separator: ".").map(String.init)
        guard let index = components.firstIndex(of: "module_list"), index + 1 < components.count else { continue }
        lastOfEntry[components[0...(index + 1)].joined(separator: ".")] = path
    }
    result.formUnion(lastOfEntry.values)
    return result
}

/// The images of a calibration folder (`.jpg`, `.jpeg`, `.png`, any case), sorted by name; when
/// `count` is smaller, a seeded shuffle picks `count` of them (in that shuffled order).
public func calibrationImages(in directory: String, count: Int, seed: UInt64) throws -> [String] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw ModelDescriptionError("--calib-images \(directory): not a folder")
    }
    let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter {
        ["jpg", "jpeg", "png"].contains(URL(fileURLWithPath: $0).pathExtension.lowercased())
    }.sorted()
    guard !names.isEmpty else {
        throw ModelDescriptionError("--calib-images \(directory): no .jpg, .jpeg or .png images in the folder")
    }
    guard count < names.count else { return names.map { directory + "/" + $0 } }
    var shuffled = names
    var generator = SeededGenerator(seed: seed)
    for index in stride(from: shuffled.count - 1, to: 0, by: -1) {
        shuffled.swapAt(index, Int(generator.next() % UInt64(index + 1)))
    }
    return shuffled.prefix(count).map { directory + "/" + $0 }
}

/// A `detq quantize` request.
public struct QuantizeRequest {
    public var model: String
    public var weights: String?
    public var config: String?
    public var calibrationDirectory: String
    public var calibrationCount: Int
    public var options: QuantizationOptions
    public var parts: Set<DetectorPart>
    public var mode: ExecutionMode
    public var output: String
    public var report: String?
    public var quiet: Bool
    /// Per-part bit widths (`detq sensitivity --suggest`); the options' method and granularity
    /// should be the recipe's (`QuantizationOptions(recipe:)`).
    public var mixedPrecision: MixedPrecisionRecipe?

    public init(model: String, weights: String?, config: String?, calibrationDirectory: String, calibrationCount: Int,
                options: QuantizationOptions, parts: Set<DetectorPart>, mode: ExecutionMode, output: String,
                report: String?, quiet: Bool, mixedPrecision: MixedPrecisionRecipe? = nil) {
        self.mixedPrecision = mixedPrecision
        self.model = model
        self.weights = weights
        self.config = config
        self.calibrationDirectory = calibrationDirectory
        self.calibrationCount = calibrationCount
        self.options = options
        self.parts = parts
        self.mode = mode
        self.output = output
        self.report = report
        self.quiet = quiet
    }
}

/// Builds the model, calibrates on the request's images, quantizes, writes the file (and the
/// report), and returns the result. Bad options and an empty calibration folder fail before
/// the model is built.
public func runQuantize(_ request: QuantizeRequest) throws -> QuantizationResult {
    let clock = ContinuousClock()
    let start = clock.now
    try request.options.validate()
    let images = try calibrationImages(in: request.calibrationDirectory, count: request.calibrationCount,
                                       seed: request.options.calibration.seed)
    let target = try QuantizationTarget(model: request.model, weights: request.weights, configPath: request.config)
    var scope = target.quantizationScope(parts: request.parts)
    if let recipe = request.mixedPrecision { try applyMixedPrecision(recipe, to: &scope, target: target) }
    guard !scope.parts.isEmpty else {
        let parts = DetectorPart.allCases.filter(request.parts.contains).map(\.rawValue).joined(separator: ",")
        let hint = if case .classifier = target { " (a classifier's layers are all backbone)" } else { "" }
        throw ModelDescriptionError("--scope \(parts) selects no conv or linear layer of \(target.name)\(hint)")
    }

    var reporters: [String: ProgressReporter] = [:]
    let progress: (String, Int, Int) -> Void = { stage, done, total in
        let reporter = reporters[stage] ?? {
            let made = ProgressReporter(stage, total: total, quiet: request.quiet)
            reporters[stage] = made
            return made
        }()
        reporter.advance()
        if done == total { reporter.finish() }
    }
    var result = try quantize(target.network, scope: scope, options: request.options, sampleCount: images.count,
                              progress: progress) { index in
        target.runCalibration(try loadImage(at: images[index]))
    }
    result.model.recipe.model = target.name
    result.model.recipe.scope = DetectorPart.allCases.filter(request.parts.contains).map(\.rawValue)
    result.model.recipe.calibrationImages = images.map { URL(fileURLWithPath: $0).lastPathComponent }
    result.model.recipe.executionMode = request.mode
    result.report.model = target.name
    result.report.recipe = result.model.recipe
    try result.model.write(to: request.output, floatParametersOf: target.network)
    result.report.wallSeconds = seconds(since: start, clock: clock)
    if let report = request.report {
        // Data's atomic write renames over an existing file (writeAtomically's replaceItemAt
        // fails on Linux when the file exists).
        do {
            try encodeReport(result.report).write(to: URL(fileURLWithPath: report), options: .atomic)
        } catch {
            throw ModelDescriptionError("cannot write \(report): \(error.localizedDescription)")
        }
    }
    return result
}

/// Restricts `scope` to the layers a mixed-precision recipe quantizes and sets their bits: a
/// layer takes the entry of the longest matching name (`backbone`/`neck`/`head` match their
/// part, any other name is a layer-path prefix); layers no entry names, or named `float`, stay float.
public func applyMixedPrecision(_ recipe: MixedPrecisionRecipe, to scope: inout QuantizationScope,
                                target: QuantizationTarget) throws {
    guard recipe.model == target.name else {
        throw ModelDescriptionError("--recipe: made for model '\(recipe.model)', not '\(target.name)'")
    }
    func matches(_ name: String, _ path: String) -> Bool {
        if let part = DetectorPart(rawValue: name) { return target.part(of: path) == part }
        return path == name || path.hasPrefix(name + ".")
    }
    for name in recipe.parts.keys where !scope.parts.keys.contains(where: { matches(name, $0) }) {
        throw ModelDescriptionError("--recipe: part '\(name)' selects no quantizable layer of \(target.name)")
    }
    var kept: [String: String] = [:]
    var bits: [String: LayerBits] = [:]
    for (path, part) in scope.parts {
        // Coarse parts rank below any path prefix.
        let entry = recipe.parts.filter { matches($0.key, path) }
            .max { (DetectorPart(rawValue: $0.key) == nil ? $0.key.count : 0) < (DetectorPart(rawValue: $1.key) == nil ? $1.key.count : 0) }
        guard let entry, let layerBits = LayerBits(parsing: entry.value) else { continue }
        kept[path] = part
        bits[path] = layerBits
    }
    scope.parts = kept
    scope.bits = bits
}

extension QuantizationOptions {
    /// Options for a mixed-precision recipe: its method and granularity; the default bits are
    /// the widest pair the recipe uses (each layer gets its own from the scope).
    public init(recipe: MixedPrecisionRecipe) throws {
        guard let method = QuantizationMethod(rawValue: recipe.method),
              let granularity = WeightGranularity(rawValue: recipe.granularity) else {
            throw ModelDescriptionError("--recipe: unknown method '\(recipe.method)' or granularity '\(recipe.granularity)'")
        }
        let pairs = recipe.parts.values.compactMap(LayerBits.init(parsing:))
        let widest = pairs.max { $0.weight + $0.activation < $1.weight + $1.activation } ?? LayerBits(weight: 8, activation: 8)
        self.init(method: method, weightBits: widest.weight, activationBits: widest.activation)
        self.granularity = granularity
    }
}

private func seconds(since start: ContinuousClock.Instant, clock: ContinuousClock) -> Double {
    let elapsed = clock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
}

/// The report as pretty, key-sorted, snake_case JSON (as the recipe in the file).
public func encodeReport(_ report: QuantizationReport) throws -> Data {
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return try encoder.encode(report)
}

/// Loads quantized file `path` for `model` (built from the same description and weights) and
/// installs its executors in `mode` (default: the mode recorded in the file).
public func installQuantized(_ path: String, on model: any Module, modelName: String,
                             mode: ExecutionMode?) throws -> QuantizedModel {
    let quantized = try QuantizedModel.load(from: path, model: model, modelName: modelName)
    try quantized.install(on: model, mode: mode ?? quantized.recipe.executionMode)
    return quantized
}
