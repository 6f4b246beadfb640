// quantize(): calibration, per-layer range choice for the chosen method, ARCQ's layer selection, and the result.
import Foundation
import Layers
import TensorCore

/// The layers a run quantizes, as the caller (who knows the detector) describes them.
public struct QuantizationScope: Sendable {
    /// In-scope conv/linear paths and the part each belongs to (`backbone`, `neck`, `head`).
    public var parts: [String: String]
    /// The network's first conv (W8A8 unless `firstLastBits` says otherwise).
    public var firstLayers: Set<String>
    /// The prediction layers (`cls_logits`, `bbox_pred`…), at `firstLastBits` when given.
    public var lastLayers: Set<String>
    /// Mixed precision: weight and activation bits of individual layers, in place of the
    /// options' `weightBits`/`activationBits` (the first-layer and `firstLastBits` rules and
    /// linear layers' bits still apply).
    public var bits: [String: LayerBits]

    public init(parts: [String: String], firstLayers: Set<String> = [], lastLayers: Set<String> = [],
                bits: [String: LayerBits] = [:]) {
        self.parts = parts
        self.firstLayers = firstLayers
        self.lastLayers = lastLayers
        self.bits = bits
    }
}

/// A layer's weight and activation bit widths (2...8).
public struct LayerBits: Sendable, Codable, Hashable, CustomStringConvertible {
    public var weight: Int
    public var activation: Int

    public init(weight: Int, activation: Int) {
        self.weight = weight
        self.activation = activation
    }

    /// `W/A`, e.g. `4/8`; nil unless both are integers in 2...8.
    public init?(parsing text: String) {
        let fields = text.split(separator: "/", omittingEmptySubsequences: false)
        guard fields.count == 2, let weight = Int(fields[0]), let activation = Int(fields[1]),
              (2...8).contains(weight), (2...8).contains(activation) else { return nil }
        self.init(weight: weight, activation: activation)
    }

    public var description: String { "\(weight)/\(activation)" }
}

/// A quantized model and what its construction measured.
public struct QuantizationResult: Sendable {
    public var model: QuantizedModel
    public var report: QuantizationReport
}

/// The in-scope layers of `model` in registration order, or an error naming a path that is
/// not a conv/linear layer of the model.
public func resolveLayers(_ model: any Module, scope: QuantizationScope) throws -> [(path: String, layer: QuantizableLayer)] {
    let modules = model.namedModules()
    let byPath = Dictionary(modules.map { ($0.path, $0.module) }, uniquingKeysWith: { first, _ in first })
    for path in scope.parts.keys.sorted() {
        guard let module = byPath[path] else {
            throw QuantizationError.unknownLayer(path: path, reason: "the model has no module at this path")
        }
        guard QuantizableLayer(module) != nil else {
            throw QuantizationError.unknownLayer(path: path, reason: "\(type(of: module)) is not a conv or linear layer")
        }
    }
    for path in scope.firstLayers.union(scope.lastLayers) where byPath[path].flatMap(QuantizableLayer.init) == nil {
        throw QuantizationError.unknownLayer(path: path, reason: "first/last layer is not a conv or linear layer of the model")
    }
    let layers = modules.compactMap { entry -> (path: String, layer: QuantizableLayer)? in
        guard scope.parts[entry.path] != nil, let layer = QuantizableLayer(entry.module) else { return nil }
        return (entry.path, layer)
    }
    guard !layers.isEmpty else { throw QuantizationError.emptyScope("the scope selects no layer") }
    return layers
}

/// What calibration recorded for a scope: reusable by several `quantize` calls (methods, bit
/// widths) on the same model.
public struct CalibrationData: Sendable {
    /// In execution order.
    public let layers: [LayerCalibration]
    public let options: CalibrationOptions
    /// The percentile recorded (for the `percentile` method), if any.
    public let percentile: Double?
    public let sampleCount: Int
    public let seconds: Double
}

/// Calibrates the in-scope layers of `model`: `run(i)` runs the float model on calibration
/// sample `i` (0..<`sampleCount`) while observers record what each layer sees (see
/// `calibrate(layers:…)`). `percentile`, when given, is also recorded per call.
public func calibrate(_ model: any Module, scope: QuantizationScope, options: CalibrationOptions, percentile: Double? = nil,
                      sampleCount: Int, progress: ((String, Int, Int) -> Void)? = nil,
                      run: (Int) throws -> Void) throws -> CalibrationData {
    guard sampleCount >= 1 else {
        throw QuantizationError.invalidOption(name: "calib-count", value: String(sampleCount), reason: "needs at least one sample")
    }
    let clock = ContinuousClock()
    let start = clock.now
    let layers = try resolveLayers(model, scope: scope)
    let calibrations = try calibrate(layers: layers, sampleCount: sampleCount, options: options, percentile: percentile,
                                     progress: { progress?("calibrate", $0, $1) }, run: run)
    return CalibrationData(layers: calibrations, options: options, percentile: percentile, sampleCount: sampleCount,
                           seconds: seconds(clock.now - start))
}

/// Quantizes the in-scope layers of `model` (batch norms already folded) with `options`:
/// calibration (`calibrate(_:scope:…)`, with `run`) and then `quantize(_:scope:options:calibration:)`.
/// Bad options, paths and policies fail before any sample runs. The model is left unchanged
/// (float, no executor); install the result with `QuantizedModel.install(on:mode:)`.
/// `progress(stage, done, total)` reports `calibrate` samples and `search` layers.
public func quantize(_ model: any Module, scope: QuantizationScope, options: QuantizationOptions, sampleCount: Int,
                     progress: ((String, Int, Int) -> Void)? = nil,
                     calibrate run: (Int) throws -> Void) throws -> QuantizationResult {
    try options.validate()
    let layers = try resolveLayers(model, scope: scope)
    if case .layers(let indices) = options.compensation, let bad = indices.first(where: { $0 > layers.count }) {
        throw QuantizationError.policyOutOfRange(index: bad, count: layers.count)
    }
    let calibration = try calibrate(model, scope: scope, options: options.calibration,
                                    percentile: options.method == .percentile ? options.percentile : nil,
                                    sampleCount: sampleCount, progress: progress, run: run)
    return try quantize(model, scope: scope, options: options, calibration: calibration, progress: progress)
}

/// Quantizes with a calibration already recorded on the same model and scope: per layer in
/// execution order, the method picks ranges (and for AdaRound, roundings; for bias
/// correction, bias shifts) on the layer's calibration patches; ARCQ scores compensable layers
/// and selects the ones to compensate. The recipe records `calibration.options`.
public func quantize(_ model: any Module, scope: QuantizationScope, options: QuantizationOptions,
                     calibration: CalibrationData, progress: ((String, Int, Int) -> Void)? = nil) throws -> QuantizationResult {
    let clock = ContinuousClock()
    let searchStart = clock.now
    try options.validate()
    var options = options
    options.calibration = calibration.options
    if options.method == .percentile && calibration.percentile != options.percentile {
        throw QuantizationError.invalidOption(name: "percentile", value: String(options.percentile),
                                              reason: "the calibration did not record this percentile")
    }
    let layers = try resolveLayers(model, scope: scope)
    if case .layers(let indices) = options.compensation, let bad = indices.first(where: { $0 > layers.count }) {
        throw QuantizationError.policyOutOfRange(index: bad, count: layers.count)
    }
    let byPath = Dictionary(layers.map { ($0.path, $0.layer) }, uniquingKeysWith: { first, _ in first })
    let calibrations = calibration.layers.filter { byPath[$0.path] != nil }
    guard calibrations.count == layers.count else {
        let missing = layers.map(\.path).filter { path in !calibrations.contains { $0.path == path } }
        throw QuantizationError.layerNotExecuted(path: missing.first ?? "?")
    }

    var plans: [LayerPlan] = []
    for (position, calibration) in calibrations.enumerated() {
        guard let layer = byPath[calibration.path] else { continue }
        let bits = layerBits(calibration.path, layer: layer, scope: scope, options: options)
        plans.append(try LayerPlan(calibration: calibration, layer: layer, part: scope.parts[calibration.path] ?? "",
                                   bits: bits, options: options))
        progress?("search", position + 1, calibrations.count)
    }

    if options.method == .arcq {
        let selected = try selectCompensated(plans, policy: options.compensation, measure: options.errorMeasure)
        for index in plans.indices where plans[index].isCompensable {
            if selected.contains(plans[index].executionIndex) {
                plans[index].keepCompensation()
            } else {
                plans[index].dropCompensation(options: options)
            }
        }
    }

    let quantizedLayers = plans.map { $0.quantizedLayer() }
    let recipe = QuantizationRecipe(
        format: QuantizationRecipe.formatTag, model: "", options: options,
        scope: Array(Set(scope.parts.values)).sorted(), calibrationImages: [], calibrationSamples: calibration.sampleCount,
        batchNormFolded: layers.contains { if case .conv(let conv) = $0.layer { conv.hasFoldedNorm } else { false } },
        executionMode: .simulated, layers: zip(plans, quantizedLayers).map { LayerRecipe($1, layer: $0.layer) },
        compensatedLayers: quantizedLayers.filter(\.isCompensated).map(\.path))
    let layerReports = plans.map { $0.report() }
    let totals = QuantizationReport.Totals(
        layers: layerReports.count, compensatedLayers: layerReports.filter(\.compensated).count,
        parameters: layerReports.reduce(0) { $0 + $1.parameters },
        weightBits: layerReports.reduce(0) { $0 + $1.parameters * $1.weightBits },
        extraBits: layerReports.reduce(0) { $0 + $1.extraBits },
        multiplyAccumulates: layerReports.reduce(0) { $0 + $1.multiplyAccumulates },
        extraMultiplyAccumulates: layerReports.reduce(0) { $0 + $1.extraMultiplyAccumulates })
    let searchSeconds = seconds(clock.now - searchStart)
    let report = QuantizationReport(model: "", method: options.method, recipe: recipe, layers: layerReports, totals: totals,
                                    calibrationSeconds: calibration.seconds, searchSeconds: searchSeconds,
                                    wallSeconds: calibration.seconds + searchSeconds)
    return QuantizationResult(model: QuantizedModel(recipe: recipe, layers: quantizedLayers), report: report)
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
}

/// Weight and activation bits of a layer: linear layers at `linearBits`; the first layer at
/// `firstLastBits ?? 8`; last layers at `firstLastBits` when given; the rest at the chosen bits.
func layerBits(_ path: String, layer: QuantizableLayer, scope: QuantizationScope,
               options: QuantizationOptions) -> (weight: Int, activation: Int) {
    if layer.kind == .linear { return (options.linearBits, options.linearBits) }
    if scope.firstLayers.contains(path) {
        let bits = options.firstLastBits ?? 8
        return (bits, bits)
    }
    if scope.lastLayers.contains(path), let bits = options.firstLastBits { return (bits, bits) }
    if let bits = scope.bits[path] { return (bits.weight, bits.activation) }
    return (options.weightBits, options.activationBits)
}

extension LayerRecipe {
    init(_ layer: QuantizedLayer, layer model: QuantizableLayer) {
        self.init(path: layer.path, part: layer.part, executionIndex: layer.executionIndex, kind: layer.kind,
                  signature: model.signature, weightShape: layer.weightShape, weightBits: layer.weightBits,
                  activationBits: layer.activation.bits, weightQuantizerCount: layer.weightQuantizers.count,
                  activationMode: layer.activation.mode,
                  activationRangeCount: layer.activation.mode == .static ? layer.activation.ranges.count : 0,
                  compensatesWeights: layer.weightRemainders != nil, compensatesActivations: layer.compensatesActivations,
                  remainderMode: layer.remainderMode, hasBias: layer.bias != nil)
    }
}

// MARK: - Selection (docs/arcq.md §5)

/// The execution indices to compensate among the compensable plans, by `policy`.
func selectCompensated(_ plans: [LayerPlan], policy: CompensationPolicy, measure: CompensationErrorMeasure) throws -> Set<Int> {
    let candidates = plans.filter(\.isCompensable).map { (index: $0.executionIndex, score: $0.selectionScore(measure)) }
    return try selectLayers(candidates, policy: policy, allIndices: Set(plans.map(\.executionIndex)))
}

/// Applies a policy to `(execution index, score)` pairs: `top:F` keeps scores at or above
/// `τ = sorted[floor(L·(1 − F))]` (ascending; none when that index is past the end), `topk:K`
/// the K highest (ties to the earlier layer), `layers:` the listed indices, which must be
/// compensable.
public func selectLayers(_ candidates: [(index: Int, score: Double)], policy: CompensationPolicy,
                         allIndices: Set<Int>) throws -> Set<Int> {
    switch policy {
    case .all:
        return Set(candidates.map(\.index))
    case .none:
        return []
    case .top(let fraction):
        let sorted = candidates.map(\.score).sorted()
        // The epsilon keeps 10·(1 − 0.9) from flooring to 0.
        let position = Int((Double(sorted.count) * (1 - fraction) + 1e-9).rounded(.down))
        guard position < sorted.count else { return [] }
        let threshold = sorted[max(0, position)]
        return Set(candidates.filter { $0.score >= threshold }.map(\.index))
    case .topK(let k):
        let ranked = candidates.sorted { $0.score != $1.score ? $0.score > $1.score : $0.index < $1.index }
        return Set(ranked.prefix(k).map(\.index))
    case .layers(let indices):
        let compensable = Set(candidates.map(\.index))
        for index in indices where !compensable.contains(index) {
            guard allIndices.contains(index) else { throw QuantizationError.policyOutOfRange(index: index, count: allIndices.count) }
            throw QuantizationError.invalidOption(
                name: "compensation", value: policy.description,
                reason: "layer \(index) is not compensable (linear, or 8-bit weights and activations)")
        }
        return Set(indices)
    }
}
