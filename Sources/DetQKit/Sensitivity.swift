// `detq sensitivity`: where quantization hurts a detector, in AP — part × bit-width matrix, per-layer ranking with a cheap proxy, mixed-precision suggestion.
import COCO
import Detectors
import Foundation
import Glibc
import ImageIO
import Layers
import Quantization
import TensorCore

/// What `detq sensitivity` is asked to do.
public struct SensitivityRequest: Sendable {
    public var model: String
    public var weights: String?
    public var config: String?
    public var calibrationDirectory: String
    public var calibrationCount = 32
    public var images: String
    public var annotations: String
    /// Evaluate on the first N images (id order) only.
    public var limit: Int?
    /// Part names (`backbone`, `neck`, `head`, `all`, or a layer-path prefix such as
    /// `head.classification_head` or `rpn`); nil: the detector's parts and head branches.
    public var parts: [String]?
    public var bits: [LayerBits] = [LayerBits(weight: 8, activation: 8), LayerBits(weight: 4, activation: 8),
                                    LayerBits(weight: 4, activation: 4)]
    public var methods: [QuantizationMethod] = [.arcq, .rtn]
    public var granularity = WeightGranularity.perChannel
    public var seed: UInt64 = 0
    /// Rank single layers (quantized alone) too.
    public var perLayer = false
    /// Bits of the per-layer runs; nil: the lowest pair of `bits`.
    public var layerBits: LayerBits?
    /// Method of the per-layer runs; nil: the first of `methods`.
    public var layerMethod: QuantizationMethod?
    /// Images the proxy runs on (the first of the evaluation set).
    public var proxyImages = 16
    /// FP32 detections at or above this score are the proxy's reference boxes.
    public var proxyScore: Float = 0.3
    /// Layers (best by the proxy's ranking, worst first) that get a full evaluation; nil: all.
    public var fullLayers: Int? = 10
    /// Further layers, spread evenly over the rest of the proxy's ranking, that get a full
    /// evaluation so the proxy's rank correlation covers the whole range.
    public var checkLayers = 0
    /// Propose per-part bit widths under `maxDrop` AP points.
    public var suggest = false
    public var maxDrop = 1.0
    /// Bootstrap draws of the evaluation images for the standard error of every AP drop
    /// (paired with FP32, seeded by `seed`); 0: none.
    public var bootstrap = 200
    public var output: String
    public var quiet = false

    public init(model: String, weights: String?, calibrationDirectory: String, images: String, annotations: String,
                output: String) {
        self.model = model
        self.weights = weights
        self.calibrationDirectory = calibrationDirectory
        self.images = images
        self.annotations = annotations
        self.output = output
    }

    /// Checks what can be checked without the model; throws naming the option.
    public func validate() throws {
        guard !bits.isEmpty else { throw SensitivityError("--bits: give at least one W/A pair, e.g. 4/4") }
        guard !methods.isEmpty else { throw SensitivityError("--methods: give at least one method") }
        guard calibrationCount >= 1 else { throw SensitivityError("--calib-count must be at least 1") }
        if let limit, limit < 1 { throw SensitivityError("--limit must be at least 1") }
        guard proxyImages >= 1 else { throw SensitivityError("--proxy-images must be at least 1") }
        if let fullLayers, fullLayers < 0 { throw SensitivityError("--full-layers must be >= 0 or 'all'") }
        guard checkLayers >= 0 else { throw SensitivityError("--check-layers must be >= 0") }
        guard maxDrop >= 0 else { throw SensitivityError("--max-drop must be >= 0 (AP points)") }
        guard bootstrap == 0 || bootstrap >= 2 else {
            throw SensitivityError("--bootstrap must be 0 (none) or at least 2 draws, got \(bootstrap)")
        }
    }
}

public struct SensitivityError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A named group of conv/linear layers quantized together.
public struct SensitivityPart: Codable, Sendable, Equatable {
    public var name: String
    /// Layer paths in execution order.
    public var layers: [String]
    /// `backbone`, `neck` or `head` when the part is one of those (used by `--suggest`).
    public var coarse: Bool
}

/// The parts of `detector` among `layers` (execution order) that `requested` names; nil gives
/// `all`, the detector's parts, and the head's branches (the classification and regression
/// branches of a dense head; RPN and RoI heads of Faster R-CNN).
public func sensitivityParts(detector: any Detector, layers: [String], requested: [String]?) throws -> [SensitivityPart] {
    func coarse(_ part: DetectorPart) -> SensitivityPart {
        SensitivityPart(name: part.rawValue, layers: layers.filter { detector.part(of: $0) == part }, coarse: true)
    }
    func branches() -> [SensitivityPart] {
        let head = layers.filter { detector.part(of: $0) == .head }
        func group(depth: Int) -> [String] {
            var seen: [String] = []
            for path in head {
                let prefix = path.split(separator: ".").prefix(depth).joined(separator: ".")
                if !seen.contains(prefix) { seen.append(prefix) }
            }
            return seen
        }
        var prefixes = group(depth: 1)
        if prefixes.count < 2 { prefixes = group(depth: 2) }
        guard prefixes.count >= 2 else { return [] }
        return prefixes.map { prefix in
            SensitivityPart(name: prefix, layers: head.filter { $0 == prefix || $0.hasPrefix(prefix + ".") }, coarse: false)
        }
    }
    guard let requested else {
        let parts = [SensitivityPart(name: "all", layers: layers, coarse: false)]
            + DetectorPart.allCases.map(coarse).filter { !$0.layers.isEmpty } + branches()
        return parts
    }
    var parts: [SensitivityPart] = []
    for name in requested {
        let part: SensitivityPart
        if name == "all" {
            part = SensitivityPart(name: "all", layers: layers, coarse: false)
        } else if let known = DetectorPart(rawValue: name) {
            part = coarse(known)
        } else {
            part = SensitivityPart(name: name, layers: layers.filter { $0 == name || $0.hasPrefix(name + ".") },
                                   coarse: false)
        }
        guard !part.layers.isEmpty else {
            let known = (["all"] + DetectorPart.allCases.map(\.rawValue) + branches().map(\.name)).joined(separator: ", ")
            throw SensitivityError("--parts: '\(name)' selects no conv or linear layer of the model (known: \(known), or any layer-path prefix)")
        }
        if !parts.contains(where: { $0.name == part.name }) { parts.append(part) }
    }
    return parts
}

/// One finished evaluation of a sensitivity run; the journal keeps one per line.
public struct SensitivityRecord: Codable, Sendable {
    /// `fp32`, `part`, `layer`, `proxy` or `mixed`.
    public var kind: String
    public var key: String
    public var part: String?
    public var layer: String?
    public var method: String?
    /// `W/A`.
    public var bits: String?
    /// pycocotools' 12 stats (full evaluation); nil for proxy records.
    public var stats: [Double]?
    /// Proxy figures: AP of the quantized detections against the FP32 detections, and the
    /// relative RMS error of the prediction layers' score and box maps.
    public var proxyAP: Double?
    public var scoreMapError: Double?
    public var boxMapError: Double?
    /// Multiply-accumulates of the quantized layers per image and Σ MACs × weight bits ×
    /// activation bits (bit operations), from the quantization report.
    public var multiplyAccumulates: Double?
    public var bitOperations: Double?
    /// The AP drop's spread over bootstrap draws of the images, paired with FP32 (AP points);
    /// nil for FP32, proxy records and runs without `--bootstrap`.
    public var dropStandardError: Double?
    public var dropInterval95: [Double]?
    public var seconds: Double
}

/// The journal of a run: `run.json` (what the run is) and `evaluations.jsonl` (one record per
/// finished evaluation, flushed as written), so a killed run resumes without losing any. A
/// run holds an exclusive lock on `DIR/.lock` while the journal is open: a second run in the
/// same folder would interleave its lines with the first's.
final class SensitivityJournal {
    let path: String
    private(set) var records: [String: SensitivityRecord] = [:]
    private let handle: FileHandle
    private let lock: Int32

    init(directory: String, header: [String: String]) throws {
        let manager = FileManager.default
        try createOutputDirectory(directory)
        let lockPath = directory + "/.lock"
        let lock = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lock >= 0 else { throw SensitivityError("cannot create \(lockPath)") }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            Glibc.close(lock)
            throw SensitivityError("\(directory) is in use by another detq sensitivity run: wait for it to finish, "
                                   + "or give another --out")
        }
        self.lock = lock
        var opened = false
        defer { if !opened { Glibc.close(lock) } }
        let headerPath = directory + "/run.json"
        path = directory + "/evaluations.jsonl"
        let headerData = try encodeJSON(header)
        if let existing = manager.contents(atPath: headerPath),
           let old = try? JSONDecoder().decode([String: String].self, from: existing) {
            if old != header {
                let changed = Set(old.keys).union(header.keys).filter { old[$0] != header[$0] }.sorted()
                throw SensitivityError("\(directory) holds a run with other settings (\(changed.joined(separator: ", "))): "
                                       + "use another --out, or delete the folder to start over")
            }
        } else {
            try? manager.removeItem(atPath: path)
            try writeAtomically(headerData, to: headerPath)
        }
        if !manager.fileExists(atPath: path) { manager.createFile(atPath: path, contents: nil) }
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        var validBytes = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            guard let record = try? JSONDecoder().decode(SensitivityRecord.self, from: Data(line.utf8)) else { break }
            records[record.key] = record
            validBytes += line.utf8.count + 1
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw SensitivityError("cannot write \(path)")
        }
        // A line cut short by a kill is dropped.
        try handle.truncate(atOffset: UInt64(min(validBytes, text.utf8.count)))
        try handle.seekToEnd()
        self.handle = handle
        opened = true
    }

    func append(_ record: SensitivityRecord) throws {
        var line = try JSONEncoder().encode(record)
        line.append(UInt8(ascii: "\n"))
        try handle.write(contentsOf: line)
        try handle.synchronize()
        records[record.key] = record
    }

    private var closed = false

    func close() {
        guard !closed else { return }
        closed = true
        try? handle.close()
        Glibc.close(lock)
    }
}

/// The evaluation images decoded once, their ground truth, and the detector.
final class SensitivityEvaluator {
    let model: DetectionModel
    let imageIDs: [Int]
    let images: [RGBImage]
    let groundTruth: COCODataset

    init(model: DetectionModel, imagesDirectory: String, annotations: String, limit: Int?) throws {
        self.model = model
        let all = try loadInstances(path: annotations)
        let selected = ImageSelection(limit: limit).apply(to: all.images.map(\.id))
        let files = try imageFiles(of: all, ids: selected, in: imagesDirectory, annotations: annotations)
        guard !selected.isEmpty else { throw EvaluationRunError("\(annotations): no images to evaluate") }
        imageIDs = selected
        images = try selected.map { try loadImage(at: files[$0] ?? "") }
        groundTruth = all.restricted(to: selected)
    }

    func detect(count: Int? = nil) -> [Detections] {
        images.prefix(count ?? images.count).map(model.detect)
    }

    /// The COCO results records of `detections` (the first `detections.count` images).
    func records(_ detections: [Detections]) -> [ResultRecord] {
        zip(imageIDs, detections).flatMap { id, found in cocoResults(found, imageID: id, categoryID: model.categoryID(label:)) }
    }

    /// pycocotools' 12 stats of `detections` (the first `detections.count` images) against `reference`.
    func stats(_ detections: [Detections], reference: COCODataset? = nil) throws -> [Double] {
        let ids = Array(imageIDs.prefix(detections.count))
        var truth = reference ?? groundTruth
        if detections.count < imageIDs.count { truth = truth.restricted(to: ids) }
        let results = try COCOResults(detections: records(detections).map(\.cocoDetection), groundTruth: truth)
        return COCOEvaluator(groundTruth: truth, results: results).run().stats
    }

    /// `records` evaluated on all the evaluation images, once: the plain stats and any bootstrap
    /// draws come from it (refused when a record names another image).
    func evaluated(_ records: [ResultRecord]) throws -> COCOBootstrap.Evaluation {
        let results = try COCOResults(detections: records.map(\.cocoDetection), groundTruth: groundTruth)
        return COCOBootstrap.Evaluation(groundTruth: groundTruth, results: results, threads: Threads.count)
    }

    /// The spread of AP(`base`) − AP(`other`) in AP points over `draws` paired bootstrap draws
    /// of all the evaluation images (seeded by `seed`); nil with fewer than two usable draws.
    func apDropSpread(base: COCOBootstrap.Evaluation, other: COCOBootstrap.Evaluation, draws: Int,
                      seed: UInt64) -> COCOSpread? {
        let sampler = COCOBootstrap(evaluations: [base, other], imageIds: base.imageIds, threads: Threads.count)
        var generator = SeededGenerator(seed: seed)
        let stats = sampler.run(draws: draws, using: &generator)
        let pairs = stats.filter { $0[0][0] > -1 && $0[1][0] > -1 }
        return COCOSpread(pairs.map { 100 * ($0[0][0] - $0[1][0]) })
    }

    /// FP32 detections of the first images at or above `score` as a ground truth (the proxy's).
    func pseudoGroundTruth(_ detections: [Detections], score: Float) -> COCODataset {
        var annotations: [COCOAnnotation] = []
        for (id, found) in zip(imageIDs, detections) {
            for i in 0..<found.count where found.scores[i] >= score {
                let category = model.categoryID(label: found.labels[i])
                let b = found.box(i)
                let box = COCOBox(x: Double(b.x1), y: Double(b.y1), width: Double(b.x2 - b.x1), height: Double(b.y2 - b.y1))
                annotations.append(COCOAnnotation(id: annotations.count + 1, imageId: id, categoryId: category, bbox: box,
                                                  area: box.width * box.height))
            }
        }
        let images = groundTruth.restricted(to: imageIDs.prefix(detections.count)).images
        return COCODataset(images: images, annotations: annotations, categories: groundTruth.categories)
    }
}

/// Records the outputs of a layer (the detector's score and box maps) while passing them on.
final class CapturingExecutor: LayerExecutor {
    let inner: (any LayerExecutor)?
    var outputs: [Tensor] = []

    init(inner: (any LayerExecutor)?) { self.inner = inner }

    func conv(_ layer: Conv2d, _ input: Tensor) -> Tensor {
        let output = inner?.conv(layer, input) ?? layer.floatForward(input)
        outputs.append(output)
        return output
    }

    func linear(_ layer: Linear, _ input: Tensor) -> Tensor {
        let output = inner?.linear(layer, input) ?? layer.floatForward(input)
        outputs.append(output)
        return output
    }
}

/// Whether a prediction layer gives box codes (else class scores or centerness).
func isBoxPredictionLayer(_ path: String) -> Bool {
    let last = path.split(separator: ".").last.map(String.init) ?? ""
    return ["bbox_pred", "bbox_reg"].contains(last) || path.contains("regression_head.module_list")
}

/// Spearman's rank correlation of two equally long lists (average ranks for ties); nil under 3 items.
public func spearmanCorrelation(_ a: [Double], _ b: [Double]) -> Double? {
    precondition(a.count == b.count, "spearmanCorrelation: \(a.count) and \(b.count) values")
    guard a.count >= 3 else { return nil }
    func ranks(_ values: [Double]) -> [Double] {
        let order = values.indices.sorted { values[$0] < values[$1] }
        var result = [Double](repeating: 0, count: values.count)
        var start = 0
        while start < order.count {
            var end = start
            while end + 1 < order.count && values[order[end + 1]] == values[order[start]] { end += 1 }
            let rank = Double(start + end) / 2 + 1
            for k in start...end { result[order[k]] = rank }
            start = end + 1
        }
        return result
    }
    let (ra, rb) = (ranks(a), ranks(b))
    let n = Double(a.count)
    let (ma, mb) = (ra.reduce(0, +) / n, rb.reduce(0, +) / n)
    var (sab, saa, sbb) = (0.0, 0.0, 0.0)
    for i in ra.indices {
        sab += (ra[i] - ma) * (rb[i] - mb)
        saa += (ra[i] - ma) * (ra[i] - ma)
        sbb += (rb[i] - mb) * (rb[i] - mb)
    }
    guard saa > 0, sbb > 0 else { return nil }
    return sab / (saa * sbb).squareRoot()
}
