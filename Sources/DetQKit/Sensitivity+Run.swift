// The sensitivity run: one calibration, then quantize-install-evaluate for each part, bit pair, method and layer.
import COCO
import Detectors
import Foundation
import ImageIO
import Layers
import Quantization
import TensorCore

/// Everything a sensitivity run measured; `sensitivity.json` is this object.
public struct SensitivityResult: Codable, Sendable {
    public struct LayerRow: Codable, Sendable {
        public var layer: String
        public var part: String
        public var proxyAP: Double
        public var scoreMapError: Double
        public var boxMapError: Double
        /// Position in the proxy's ranking (1 = most damaging).
        public var proxyRank: Int
        /// AP drop (AP points) of the full evaluation, when the layer had one, and its bootstrap
        /// standard error.
        public var apDrop: Double?
        public var apDropStandardError: Double?
    }
    public struct Suggestion: Codable, Sendable {
        /// Part → `W/A` or `float`.
        public var parts: [String: String]
        public var method: String
        public var estimatedDrop: Double
        public var measuredDrop: Double?
        public var bitOperations: Double
        /// Bit operations of the whole model at the lowest measured pair, for scale.
        public var recipeFile: String?
        public var note: String
        /// The measured drop's bootstrap standard error (with `--bootstrap`).
        public var measuredDropStandardError: Double? = nil
    }

    public var model: String
    public var weights: String?
    public var images: Int
    public var calibrationImages: [String]
    public var granularity: String
    public var fp32: [Double]
    public var parts: [SensitivityPart]
    /// Part × method × bits evaluations.
    public var matrix: [SensitivityRecord]
    public var layerBits: String?
    public var layerMethod: String?
    public var layers: [LayerRow]
    /// Spearman correlation between the proxy's damage (1 − proxy AP) and the full AP drop
    /// over the layers that had both, and how many they were.
    public var proxyRankCorrelation: Double?
    public var proxyCorrelationLayers: Int
    public var suggestion: Suggestion?
    public var wallSeconds: Double
    /// Bootstrap draws behind the drops' standard errors; nil: none were made.
    public var bootstrapDraws: Int? = nil

    /// AP drop (AP points) of a record from FP32.
    public func drop(_ record: SensitivityRecord) -> Double? {
        record.stats.map { 100 * (fp32[0] - $0[0]) }
    }
}

/// Runs `request`: FP32, the part × bits × method matrix, the per-layer ranking, the
/// suggestion; writes `sensitivity.json`, `sensitivity.md` and `sensitivity.svg` into
/// `request.output`. Finished evaluations are journaled there and reused by a rerun.
public func runSensitivity(_ request: SensitivityRequest) throws -> SensitivityResult {
    let start = Date()
    try request.validate()
    let calibration = try calibrationImages(in: request.calibrationDirectory, count: request.calibrationCount,
                                            seed: request.seed)
    let model = try DetectionModel(model: request.model, weights: request.weights, configPath: request.config)
    let target = QuantizationTarget.detector(model)
    let fullScope = target.quantizationScope(parts: Set(DetectorPart.allCases))
    let layerOrder = model.detector.namedModules().map(\.path).filter { fullScope.parts[$0] != nil }
    let parts = try sensitivityParts(detector: model.detector, layers: layerOrder, requested: request.parts)
    let evaluator = try SensitivityEvaluator(model: model, imagesDirectory: request.images,
                                             annotations: request.annotations, limit: request.limit)
    let layerBits = request.layerBits ?? request.bits.min { $0.weight + $0.activation < $1.weight + $1.activation }!
    let layerMethod = request.layerMethod ?? request.methods[0]
    let suggestMethod = request.methods[0]

    let header: [String: String] = [
        "model": request.model, "weights": request.weights ?? "", "config": request.config ?? "",
        // The weights' content, not just their path: retrained weights at the same path start a new run.
        "weights_checksum": weightsChecksum(model.detector),
        "images": request.images, "annotations": request.annotations, "limit": request.limit.map(String.init) ?? "",
        "calibration": calibration.map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: ","),
        "granularity": request.granularity.rawValue, "seed": String(request.seed),
        "proxy": "\(request.proxyImages)@\(request.proxyScore)",
    ]
    let journal = try SensitivityJournal(directory: request.output, header: header)
    defer { journal.close() }

    // Per-layer ranking covers the requested parts' layers (every layer by default).
    let rankedLayers: [String] = {
        guard request.parts != nil else { return layerOrder }
        let selected = Set(parts.flatMap(\.layers))
        return layerOrder.filter(selected.contains)
    }()
    var planned = 1 + parts.count * request.methods.count * request.bits.count
    if request.perLayer {
        let full = min(request.fullLayers ?? rankedLayers.count, rankedLayers.count)
        planned += rankedLayers.count + full + min(request.checkLayers, rankedLayers.count - full)
    }
    if request.suggest { planned += 1 }  // at least one mixed-precision check
    let progress = ProgressReporter("sensitivity", total: planned, quiet: request.quiet)

    // Calibration is shared by every quantization of the run (it records the float model).
    var calibrationData: CalibrationData?
    func calibrated() throws -> CalibrationData {
        if let calibrationData { return calibrationData }
        let images = calibration
        let data = try Quantization.calibrate(
            model.detector, scope: fullScope, options: CalibrationOptions(seed: request.seed),
            percentile: request.methods.contains(.percentile) ? QuantizationOptions(method: .percentile, weightBits: 8,
                                                                                      activationBits: 8).percentile : nil,
            sampleCount: images.count) { index in target.runCalibration(try loadImage(at: images[index])) }
        calibrationData = data
        return data
    }

    /// Quantizes `layers` with `method` at `bits` (or per-layer `mixed` bits), installs the
    /// result, runs `body`, and puts the float model back.
    func withQuantized<T>(_ layers: [String], method: QuantizationMethod, bits: LayerBits,
                          mixed: [String: LayerBits] = [:], _ body: (QuantizationReport) throws -> T) throws -> T {
        var options = QuantizationOptions(method: method, weightBits: bits.weight, activationBits: bits.activation)
        options.granularity = request.granularity
        options.calibration.seed = request.seed
        var scope = fullScope
        let keep = Set(layers)
        scope.parts = fullScope.parts.filter { keep.contains($0.key) }
        scope.bits = mixed
        let result = try Quantization.quantize(model.detector, scope: scope, options: options, calibration: try calibrated())
        try result.model.install(on: model.detector, mode: .simulated)
        defer { QuantizedModel.uninstall(from: model.detector) }
        return try body(result.report)
    }

    func bitOperations(_ report: QuantizationReport) -> Double {
        report.layers.reduce(0) { $0 + $1.multiplyAccumulates * Double($1.weightBits * $1.activationBits) }
    }

    // FP32's detections, the base of every drop's bootstrap: evaluated once, kept in memory and
    // in fp32.results.json, so that a resumed run does not detect them again.
    let fp32ResultsPath = URL(fileURLWithPath: request.output).appendingPathComponent("fp32.results.json").path
    var fp32Evaluation: COCOBootstrap.Evaluation?
    func keepFP32(_ records: [ResultRecord]) throws -> COCOBootstrap.Evaluation {
        try writeResults(records, to: fp32ResultsPath)
        let evaluation = try evaluator.evaluated(records)
        fp32Evaluation = evaluation
        return evaluation
    }
    func fp32Base() throws -> COCOBootstrap.Evaluation {
        if let fp32Evaluation { return fp32Evaluation }
        // A file that does not read, or names images outside this run's, is made again.
        if let data = FileManager.default.contents(atPath: fp32ResultsPath),
           let saved = try? JSONDecoder().decode([ResultRecord].self, from: data),
           let evaluation = try? evaluator.evaluated(saved) {
            fp32Evaluation = evaluation
            return evaluation
        }
        return try keepFP32(evaluator.records(evaluator.detect()))
    }

    func evaluate(kind: String, key: String, part: String?, layer: String?, method: QuantizationMethod?,
                  bits: LayerBits?, layers: [String], mixed: [String: LayerBits] = [:]) throws -> SensitivityRecord {
        if let done = journal.records[key] { progress.advance(); return done }
        let clock = Date()
        var record = SensitivityRecord(kind: kind, key: key, part: part, layer: layer, method: method?.rawValue,
                                       bits: bits?.description, seconds: 0)
        if let method, let bits {
            // Before the quantized layers are installed: fp32Base may have to detect.
            let base = request.bootstrap > 0 ? try fp32Base() : nil
            try withQuantized(layers, method: method, bits: bits, mixed: mixed) { report in
                let evaluation = try evaluator.evaluated(evaluator.records(evaluator.detect()))
                record.stats = evaluation.stats(threads: Threads.count)
                record.multiplyAccumulates = report.totals.multiplyAccumulates
                record.bitOperations = bitOperations(report)
                if let base, let spread = evaluator.apDropSpread(
                    base: base, other: evaluation, draws: request.bootstrap, seed: request.seed) {
                    record.dropStandardError = spread.standardError
                    record.dropInterval95 = spread.interval95
                }
            }
        } else {
            record.stats = try keepFP32(evaluator.records(evaluator.detect())).stats(threads: Threads.count)
        }
        record.seconds = Date().timeIntervalSince(clock)
        try journal.append(record)
        progress.advance()
        return record
    }

    // FP32
    let fp32 = try evaluate(kind: "fp32", key: "fp32", part: nil, layer: nil, method: nil, bits: nil, layers: [])
    let fp32Stats = fp32.stats ?? []

    // Part × method × bits
    var matrix: [SensitivityRecord] = []
    for part in parts {
        for method in request.methods {
            for bits in request.bits {
                matrix.append(try evaluate(kind: "part", key: "part|\(part.name)|\(method.rawValue)|\(bits)",
                                           part: part.name, layer: nil, method: method, bits: bits, layers: part.layers))
            }
        }
    }

    // Per layer: the proxy on every layer, then full evaluations of the worst by the proxy.
    var layerRows: [SensitivityResult.LayerRow] = []
    var correlation: Double?
    var correlationCount = 0
    if request.perLayer {
        let proxyCount = min(request.proxyImages, evaluator.images.count)
        let predictionLayers = model.detector.namedModules().filter { fullScope.lastLayers.contains($0.path) }
            .compactMap { entry in QuantizableLayer(entry.module).map { (entry.path, $0) } }
        func captureRun() -> (detections: [Detections], maps: [String: [Tensor]]) {
            let captures = predictionLayers.map { path, layer -> (String, CapturingExecutor, QuantizableLayer) in
                let capture = CapturingExecutor(inner: layer.executor)
                layer.executor = capture
                return (path, capture, layer)
            }
            let detections = evaluator.detect(count: proxyCount)
            var maps: [String: [Tensor]] = [:]
            for (path, capture, layer) in captures {
                maps[path] = capture.outputs
                layer.executor = capture.inner
            }
            return (detections, maps)
        }
        var reference: (detections: [Detections], maps: [String: [Tensor]], truth: COCODataset)?
        func proxyReference() -> (detections: [Detections], maps: [String: [Tensor]], truth: COCODataset) {
            if let reference { return reference }
            let run = captureRun()
            let made = (run.detections, run.maps, evaluator.pseudoGroundTruth(run.detections, score: request.proxyScore))
            reference = made
            return made
        }
        var proxies: [SensitivityRecord] = []
        for layer in rankedLayers {
            let key = "proxy|\(layer)|\(layerMethod.rawValue)|\(layerBits)"
            if let done = journal.records[key] {
                proxies.append(done)
                progress.advance()
                continue
            }
            let clock = Date()
            let base = proxyReference()
            var record = SensitivityRecord(kind: "proxy", key: key, part: model.detector.part(of: layer)?.rawValue,
                                           layer: layer, method: layerMethod.rawValue, bits: layerBits.description,
                                           seconds: 0)
            try withQuantized([layer], method: layerMethod, bits: layerBits) { report in
                let run = captureRun()
                record.proxyAP = try evaluator.stats(run.detections, reference: base.truth)[0]
                var (scoreError, scoreNorm, boxError, boxNorm) = (0.0, 0.0, 0.0, 0.0)
                for (path, quantizedMaps) in run.maps {
                    guard let floatMaps = base.maps[path], floatMaps.count == quantizedMaps.count else { continue }
                    for (q, f) in zip(quantizedMaps, floatMaps) where q.shape == f.shape {
                        var (error, norm) = (0.0, 0.0)
                        q.withUnsafeBufferPointer { qb in
                            f.withUnsafeBufferPointer { fb in
                                for i in 0..<fb.count {
                                    let d = Double(qb[i]) - Double(fb[i])
                                    error += d * d
                                    norm += Double(fb[i]) * Double(fb[i])
                                }
                            }
                        }
                        if isBoxPredictionLayer(path) { boxError += error; boxNorm += norm } else {
                            scoreError += error; scoreNorm += norm
                        }
                    }
                }
                record.scoreMapError = scoreNorm > 0 ? (scoreError / scoreNorm).squareRoot() : 0
                record.boxMapError = boxNorm > 0 ? (boxError / boxNorm).squareRoot() : 0
                record.multiplyAccumulates = report.totals.multiplyAccumulates
                record.bitOperations = bitOperations(report)
            }
            record.seconds = Date().timeIntervalSince(clock)
            try journal.append(record)
            proxies.append(record)
            progress.advance()
        }
        // Most damaging first: lowest proxy AP, then largest map error.
        let ranked = proxies.sorted {
            let (a, b) = ($0.proxyAP ?? 1, $1.proxyAP ?? 1)
            if a != b { return a < b }
            return ($0.scoreMapError ?? 0) + ($0.boxMapError ?? 0) > ($1.scoreMapError ?? 0) + ($1.boxMapError ?? 0)
        }
        let fullCount = min(request.fullLayers ?? ranked.count, ranked.count)
        // The worst by the proxy, plus layers spread evenly over the rest of its ranking, so
        // that the proxy's agreement is measured beyond the layers it picked.
        var chosen = Array(ranked.prefix(fullCount))
        let rest = Array(ranked.dropFirst(fullCount))
        let checks = min(request.checkLayers, rest.count)
        for k in 0..<checks { chosen.append(rest[(2 * k + 1) * rest.count / (2 * checks)]) }
        var drops: [String: (drop: Double?, standardError: Double?)] = [:]
        for proxy in chosen {
            guard let layer = proxy.layer else { continue }
            let record = try evaluate(kind: "layer", key: "layer|\(layer)|\(layerMethod.rawValue)|\(layerBits)",
                                      part: proxy.part, layer: layer, method: layerMethod, bits: layerBits, layers: [layer])
            drops[layer] = (record.stats.map { 100 * (fp32Stats[0] - $0[0]) }, record.dropStandardError)
        }
        layerRows = ranked.enumerated().map { index, proxy in
            SensitivityResult.LayerRow(layer: proxy.layer ?? "", part: proxy.part ?? "", proxyAP: proxy.proxyAP ?? 0,
                                       scoreMapError: proxy.scoreMapError ?? 0, boxMapError: proxy.boxMapError ?? 0,
                                       proxyRank: index + 1, apDrop: drops[proxy.layer ?? ""]?.drop,
                                       apDropStandardError: drops[proxy.layer ?? ""]?.standardError)
        }
        let both = layerRows.filter { $0.apDrop != nil }
        correlation = spearmanCorrelation(both.map { 1 - $0.proxyAP }, both.map { $0.apDrop ?? 0 })
        correlationCount = both.count
    }
    progress.finish()

    var result = SensitivityResult(
        model: request.model, weights: request.weights, images: evaluator.images.count,
        calibrationImages: calibration.map { URL(fileURLWithPath: $0).lastPathComponent },
        granularity: request.granularity.rawValue, fp32: fp32Stats, parts: parts, matrix: matrix,
        layerBits: request.perLayer ? layerBits.description : nil,
        layerMethod: request.perLayer ? layerMethod.rawValue : nil, layers: layerRows,
        proxyRankCorrelation: correlation, proxyCorrelationLayers: correlationCount, suggestion: nil, wallSeconds: 0)

    if request.suggest {
        result.suggestion = try suggestMixedPrecision(result, request: request, method: suggestMethod) { assignment in
            let key = "mixed|" + assignment.keys.sorted().map { "\($0)=\(assignment[$0] ?? "float")" }.joined(separator: ",")
                + "|\(suggestMethod.rawValue)"
            var layers: [String] = []
            var mixed: [String: LayerBits] = [:]
            for part in parts where part.coarse {
                guard let text = assignment[part.name], let bits = LayerBits(parsing: text) else { continue }
                layers += part.layers
                for layer in part.layers { mixed[layer] = bits }
            }
            guard !layers.isEmpty else { return (0, nil) }
            let record = try evaluate(kind: "mixed", key: key, part: nil, layer: nil, method: suggestMethod,
                                      bits: request.bits[0], layers: layers, mixed: mixed)
            return (100 * (fp32Stats[0] - (record.stats?[0] ?? 0)), record.dropStandardError)
        }
    }
    result.bootstrapDraws = request.bootstrap > 0 ? request.bootstrap : nil
    result.wallSeconds = Date().timeIntervalSince(start)
    try writeSensitivityOutputs(result, request: request)
    return result
}

/// The cheapest per-part assignment (bits pair or float for each of backbone, neck, head) whose
/// estimated AP drop — the sum of the parts' measured drops alone — is within the budget,
/// checked by quantizing and evaluating it (`measure` returns the drop and its standard error); an assignment that
/// fails the check is dropped and the next cheapest tried (at most five). Cost: bit operations
/// (Σ MACs × weight bits × activation bits; float counts 32 × 32).
func suggestMixedPrecision(_ result: SensitivityResult, request: SensitivityRequest, method: QuantizationMethod,
                           measure: ([String: String]) throws -> (drop: Double, standardError: Double?))
    throws -> SensitivityResult.Suggestion {
    let coarse = result.parts.filter(\.coarse)
    guard !coarse.isEmpty else {
        throw SensitivityError("--suggest needs the backbone, neck or head parts in --parts")
    }
    // Per part: options (label, drop, cost).
    var options: [[(label: String, drop: Double, cost: Double)]] = []
    for part in coarse {
        var list: [(label: String, drop: Double, cost: Double)] = []
        var floatCost = 0.0
        for bits in request.bits {
            let key = "part|\(part.name)|\(method.rawValue)|\(bits)"
            guard let record = result.matrix.first(where: { $0.key == key }), let drop = result.drop(record),
                  let ops = record.bitOperations, let macs = record.multiplyAccumulates else { continue }
            list.append((bits.description, max(drop, 0), ops))
            floatCost = macs * 32 * 32
        }
        list.append(("float", 0, floatCost))
        options.append(list)
    }
    var combinations: [(labels: [String], drop: Double, cost: Double)] = [([], 0, 0)]
    for list in options {
        combinations = combinations.flatMap { partial in
            list.map { (partial.labels + [$0.label], partial.drop + $0.drop, partial.cost + $0.cost) }
        }
    }
    var candidates = combinations.filter { $0.drop <= request.maxDrop }.sorted { $0.cost < $1.cost }
    var note = "estimated drop: the sum of each part's drop when quantized alone"
    func describe(_ labels: [String]) -> String {
        zip(coarse.map(\.name), labels).map { "\($0) \($1)" }.joined(separator: ", ")
    }
    // Up to five checks. When a check measures more than its estimate, the parts' drops do not
    // add up for this model: the further candidates must fit the budget with that excess too.
    var checks = 0
    while let candidate = candidates.first, checks < 5 {
        checks += 1
        candidates.removeFirst()
        let assignment = Dictionary(uniqueKeysWithValues: zip(coarse.map(\.name), candidate.labels))
        let (measured, standardError) = try measure(assignment)
        if measured <= request.maxDrop {
            // As the user named the folder (relative stays relative: the path goes into the reports).
            let file = (request.output as NSString).appendingPathComponent("suggested-recipe.json")
            try writeMixedPrecisionRecipe(MixedPrecisionRecipe(
                format: MixedPrecisionRecipe.formatTag, model: result.model, method: method.rawValue,
                granularity: result.granularity, parts: assignment, maxDrop: request.maxDrop,
                estimatedDrop: candidate.drop, measuredDrop: measured), to: file)
            return SensitivityResult.Suggestion(parts: assignment, method: method.rawValue, estimatedDrop: candidate.drop,
                                                measuredDrop: measured, bitOperations: candidate.cost, recipeFile: file,
                                                note: note, measuredDropStandardError: standardError)
        }
        note += "; \(describe(candidate.labels)) measured \(String(format: "%.2f", measured)) > budget"
        let excess = max(0, measured - candidate.drop)
        candidates = candidates.filter { $0.drop + excess <= request.maxDrop }
    }
    let float = Dictionary(uniqueKeysWithValues: coarse.map { ($0.name, "float") })
    return SensitivityResult.Suggestion(parts: float, method: method.rawValue, estimatedDrop: 0, measuredDrop: nil,
                                        bitOperations: options.reduce(0) { $0 + ($1.last?.cost ?? 0) }, recipeFile: nil,
                                        note: note + "; no assignment within the budget was confirmed: keep the model in float")
}

/// A per-part bit-width recipe `detq quantize --recipe` reads.
public struct MixedPrecisionRecipe: Codable, Sendable, Equatable {
    public static let formatTag = "detq-mixed-precision/1"
    public var format: String
    public var model: String
    public var method: String
    public var granularity: String
    /// Part (`backbone`, `neck`, `head`, or a layer-path prefix) → `W/A` or `float`.
    public var parts: [String: String]
    public var maxDrop: Double?
    public var estimatedDrop: Double?
    public var measuredDrop: Double?

    enum CodingKeys: String, CodingKey {
        case format, model, method, granularity, parts
        case maxDrop = "max_drop", estimatedDrop = "estimated_drop", measuredDrop = "measured_drop"
    }

    /// Reads and checks a recipe file; errors name the file and field.
    public static func load(from path: String) throws -> MixedPrecisionRecipe {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SensitivityError("--recipe \(path): cannot read the file")
        }
        let recipe: MixedPrecisionRecipe
        do {
            recipe = try JSONDecoder().decode(MixedPrecisionRecipe.self, from: data)
        } catch {
            throw SensitivityError("--recipe \(path): not a \(formatTag) recipe (\(describeDecodingFailure(error)))")
        }
        guard recipe.format == formatTag else {
            throw SensitivityError("--recipe \(path): format '\(recipe.format)', expected '\(formatTag)'")
        }
        guard QuantizationMethod(rawValue: recipe.method) != nil else {
            throw SensitivityError("--recipe \(path): method '\(recipe.method)' is unknown")
        }
        guard WeightGranularity(rawValue: recipe.granularity) != nil else {
            throw SensitivityError("--recipe \(path): granularity '\(recipe.granularity)' is unknown")
        }
        for (part, bits) in recipe.parts where bits != "float" && LayerBits(parsing: bits) == nil {
            throw SensitivityError("--recipe \(path): parts.\(part) = '\(bits)': expected W/A with bits in 2–8, or float")
        }
        return recipe
    }
}

func writeMixedPrecisionRecipe(_ recipe: MixedPrecisionRecipe, to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    try writeAtomically(try encoder.encode(recipe), to: path)
}
