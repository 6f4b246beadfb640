// `detq eval`: run a detector over a COCO image set, append results image by image, resume, shard, evaluate.
import COCO
import Detectors
import Foundation
import ImageIO

/// Which images of the ground truth a run covers.
public struct ImageSelection: Sendable {
    /// `--shard I/N`: the images at positions ≡ I (mod N) of the id-sorted list (I from 0).
    public var shard: (index: Int, count: Int)?
    /// `--limit N`: the first N images of the (sharded) list.
    public var limit: Int?

    public init(shard: (index: Int, count: Int)? = nil, limit: Int? = nil) {
        self.shard = shard
        self.limit = limit
    }

    /// The selected image ids, ascending.
    public func apply(to ids: [Int]) -> [Int] {
        var selected = ids.sorted()
        if let shard { selected = selected.enumerated().filter { $0.offset % shard.count == shard.index }.map(\.element) }
        if let limit { selected = Array(selected.prefix(limit)) }
        return selected
    }
}

/// An error of an evaluation run, naming the file or image concerned.
public struct EvaluationRunError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One image's results as a line of the `.partial` journal: `{"image_id": I, "results": [...]}`.
struct JournalLine: Codable {
    var image_id: Int
    var results: [ResultRecord]
}

/// A COCO results record `{"image_id", "category_id", "bbox": [x, y, w, h], "score"}`.
public struct ResultRecord: Codable, Sendable, Equatable {
    public var image_id: Int
    public var category_id: Int
    public var bbox: [Double]
    public var score: Double
}

extension ResultRecord {
    /// Decodes one COCO result; a `bbox` that is not four numbers is an error here, so that no
    /// file read back (`merge`, `eval --resume`) carries a box the evaluator cannot index.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        image_id = try container.decode(Int.self, forKey: .image_id)
        category_id = try container.decode(Int.self, forKey: .category_id)
        bbox = try container.decode([Double].self, forKey: .bbox)
        score = try container.decode(Double.self, forKey: .score)
        guard bbox.count == 4 else {
            throw DecodingError.dataCorruptedError(forKey: .bbox, in: container,
                                                   debugDescription: "bbox must be [x, y, width, height], got \(bbox.count) numbers")
        }
    }

    /// The record as the evaluator's detection.
    var cocoDetection: COCODetection {
        COCODetection(imageId: image_id, categoryId: category_id,
                      bbox: COCOBox(x: bbox[0], y: bbox[1], width: bbox[2], height: bbox[3]), score: score)
    }
}

/// The results of one image in COCO format: xyxy → xywh, labels → category ids. Float32
/// values are widened exactly to Double, as torchvision's `.tolist()` does.
public func cocoResults(_ detections: Detections, imageID: Int, categoryID: (Int) -> Int?) -> [ResultRecord] {
    (0..<detections.count).compactMap { i in
        guard let category = categoryID(detections.labels[i]) else { return nil }
        let b = detections.box(i)
        return ResultRecord(image_id: imageID, category_id: category,
                            bbox: [Double(b.x1), Double(b.y1), Double(b.x2 - b.x1), Double(b.y2 - b.y1)],
                            score: Double(detections.scores[i]))
    }
}

/// A journal of finished images next to the results file: one JSON line per image, flushed
/// as it is written, so a killed run loses at most the image in flight.
final class ResultsJournal {
    let path: String
    private let handle: FileHandle
    /// Images already in the journal (when resuming) and their records.
    private(set) var done: [Int: [ResultRecord]] = [:]

    init(path: String, resume: Bool) throws {
        self.path = path
        let manager = FileManager.default
        if manager.fileExists(atPath: path) {
            guard resume else {
                throw EvaluationRunError("\(path) exists from an earlier run: pass --resume to continue it, or delete it")
            }
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            var valid = 0
            let decoder = JSONDecoder()
            for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                // A line cut short by a kill is dropped, with everything after it.
                guard let entry = try? decoder.decode(JournalLine.self, from: Data(line.utf8)) else { break }
                done[entry.image_id] = entry.results
                valid += line.utf8.count + 1
            }
            // Drop a torn tail so that appends start on a clean line.
            let url = URL(fileURLWithPath: path)
            let kept = Data(text.utf8.prefix(valid))
            try kept.write(to: url)
        } else {
            guard manager.createFile(atPath: path, contents: nil) else {
                throw EvaluationRunError("cannot create \(path)")
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw EvaluationRunError("cannot open \(path)") }
        self.handle = handle
        handle.seekToEndOfFile()
    }

    func append(imageID: Int, results: [ResultRecord]) throws {
        let data = try JSONEncoder().encode(JournalLine(image_id: imageID, results: results)) + Data("\n".utf8)
        handle.write(data)
        try handle.synchronize()
        done[imageID] = results
    }

    func close() { try? handle.close() }
}

/// Writes a COCO results array (one record per line) to `path` atomically.
public func writeResults(_ records: [ResultRecord], to path: String) throws {
    var text = "[\n"
    for (index, r) in records.enumerated() {
        text += "{\"image_id\": \(r.image_id), \"category_id\": \(r.category_id), \"bbox\": [\(r.bbox.map { "\($0)" }.joined(separator: ", "))], \"score\": \(r.score)}"
        text += index + 1 < records.count ? ",\n" : "\n"
    }
    text += "]\n"
    try writeAtomically(Data(text.utf8), to: path)
}

/// `detq merge`: concatenates shard results, refusing an image that appears in two files.
public func mergeResults(_ paths: [String], to output: String) throws -> Int {
    var merged: [ResultRecord] = []
    var owner: [Int: String] = [:]
    for path in paths {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw EvaluationRunError("cannot read \(path): \(error.localizedDescription)")
        }
        let records: [ResultRecord]
        do { records = try JSONDecoder().decode([ResultRecord].self, from: data) } catch {
            throw EvaluationRunError("\(path) is not a COCO results file: \(describeDecodingFailure(error))")
        }
        for id in Set(records.map(\.image_id)) {
            if let first = owner[id] { throw EvaluationRunError("image \(id) is in both \(first) and \(path)") }
            owner[id] = path
        }
        merged += records
    }
    try writeResults(merged, to: output)
    return merged.count
}

/// What `detq eval --report` writes: the cocoeval object plus how it was made.
public struct EvaluationSummary: Sendable {
    public var evaluation: COCOEvaluation
    public var images: Int
    public var wallSeconds: Double
    public var imagesPerSecond: Double
}

/// Runs `model` over the selected images of `annotations`, journaling results next to
/// `resultsPath` (if any), then evaluates against the same images' ground truth.
public func runEvaluation(model: DetectionModel, imagesDirectory: String, annotations: String,
                          selection: ImageSelection, resultsPath: String?, resume: Bool,
                          quiet: Bool) throws -> EvaluationSummary {
    let groundTruth = try loadInstances(path: annotations)
    let selected = selection.apply(to: groundTruth.images.map(\.id))
    let files = try imageFiles(of: groundTruth, ids: selected, in: imagesDirectory, annotations: annotations)
    let journal = try resultsPath.map { try ResultsJournal(path: $0 + ".partial", resume: resume) }
    defer { journal?.close() }
    var results: [Int: [ResultRecord]] = journal?.done ?? [:]
    let todo = selected.filter { results[$0] == nil }
    let progress = ProgressReporter("eval", total: todo.count, quiet: quiet)
    let start = Date()
    for id in todo {
        guard let path = files[id] else { continue }
        let image = try loadImage(at: path)
        let records = cocoResults(model.detect(image), imageID: id, categoryID: model.categoryID(label:))
        try journal?.append(imageID: id, results: records)
        results[id] = records
        progress.advance()
    }
    progress.finish()
    let wall = Date().timeIntervalSince(start)
    let records = selected.flatMap { results[$0] ?? [] }
    if let resultsPath {
        try writeResults(records, to: resultsPath)
        try? FileManager.default.removeItem(atPath: resultsPath + ".partial")
    }
    // Evaluate on the selected images only (pycocotools' params.imgIds), all categories.
    let subset = groundTruth.restricted(to: selected)
    let detections = records.map(\.cocoDetection)
    let cocoResults = try COCOResults(detections: detections, groundTruth: subset, source: resultsPath ?? "results")
    let evaluation = COCOEvaluator(groundTruth: subset, results: cocoResults).run()
    return EvaluationSummary(evaluation: evaluation, images: selected.count, wallSeconds: wall,
                             imagesPerSecond: todo.isEmpty ? 0 : Double(todo.count) / max(wall, 1e-9))
}

/// The paths of images `ids` of `groundTruth` in `imagesDirectory`; every one must exist
/// (checked before any work starts), errors name the annotations file or the image.
func imageFiles(of groundTruth: COCODataset, ids: [Int], in imagesDirectory: String,
                annotations: String) throws -> [Int: String] {
    let byID = Dictionary(groundTruth.images.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    var files: [Int: String] = [:]
    for id in ids {
        guard let name = byID[id]?.fileName else {
            throw EvaluationRunError("\(annotations): image \(id) has no file_name")
        }
        let path = URL(fileURLWithPath: imagesDirectory).appendingPathComponent(name).path
        guard FileManager.default.fileExists(atPath: path) else {
            throw EvaluationRunError("image \(id): \(path) not found")
        }
        files[id] = path
    }
    return files
}

extension COCODataset {
    /// The images `ids` and their annotations (pycocotools' `params.imgIds`), all categories.
    func restricted(to ids: some Sequence<Int>) -> COCODataset {
        let keep = Set(ids)
        return COCODataset(images: images.filter { keep.contains($0.id) },
                           annotations: annotations.filter { keep.contains($0.imageId) }, categories: categories)
    }
}

/// The `--report` object: `cocoeval --json`'s stats and per-category table, plus the model,
/// weights, quantization recipe (if any), image count, wall time and images per second.
public func evaluationReport(_ summary: EvaluationSummary, model: String, weights: String?,
                             recipe: String?) throws -> Data {
    guard var object = try JSONSerialization.jsonObject(with: Data(summary.evaluation.reportJSON().utf8))
            as? [String: Any] else { throw EvaluationRunError("internal: cocoeval report is not an object") }
    object["model"] = model
    object["weights"] = weights ?? NSNull()
    object["quantization"] = try recipe.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) } ?? NSNull()
    object["images"] = summary.images
    object["wall_seconds"] = summary.wallSeconds
    object["images_per_second"] = summary.imagesPerSecond
    return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
}
