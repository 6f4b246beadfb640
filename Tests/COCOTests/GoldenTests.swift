// The evaluator against pycocotools' own numbers (eval/goldens/cocoeval, made by eval/tools/make_golden.py).
import Foundation
import Testing
@testable import COCO

/// Tolerance for every number compared with pycocotools (SPEC.md: stats equal to 1e-12).
let goldenTolerance = 1e-12

/// The repository root, found from this file's path (Tests/COCOTests/GoldenTests.swift).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
let goldenFolder = repositoryRoot.appendingPathComponent("eval/goldens/cocoeval")
let samplePath = repositoryRoot.appendingPathComponent("../shared/data/coco-val2017-sample/instances.json").standardized.path
let sampleIsPresent = FileManager.default.fileExists(atPath: samplePath)

/// One case of goldens.json, read with Foundation's JSONSerialization (not with the parser under test).
struct GoldenCase: CustomStringConvertible, Sendable {
    let name: String
    let groundTruth: String  // a file in the goldens folder, or "SAMPLE"
    let results: String
    let useCategories: Bool
    let stats: [Double]
    let summary: String
    let perCategory: [[String: any Sendable]]
    let recall: [Double]?  // flattened [T][K][A][M]; absent for the cases with 80 categories
    let precisionMeanOverRecall: [Double]?  // flattened [T][K][A][M]

    var description: String { name }
    var needsSample: Bool { groundTruth == "SAMPLE" }
    var groundTruthPath: String {
        needsSample ? samplePath : goldenFolder.appendingPathComponent(groundTruth).path
    }
    var resultsPath: String { goldenFolder.appendingPathComponent(results).path }
}

/// Exact values are stored as Python repr strings; Double(String) rounds correctly (Foundation's
/// JSONSerialization does not always give the nearest double).
func exact(_ value: Any?) -> Double {
    (value as? String).flatMap(Double.init) ?? .nan
}

func flattened(_ value: Any) -> [Double] {
    if let list = value as? [Any] { return list.flatMap(flattened) }
    return [(value as? NSNumber)?.doubleValue ?? .nan]
}

func loadGoldens() -> (iou: [String], recall: [String], cases: [GoldenCase]) {
    guard let data = try? Data(contentsOf: goldenFolder.appendingPathComponent("goldens.json")),
          let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
          let cases = root["cases"] as? [[String: Any]] else { return ([], [], []) }
    let parsed = cases.map { item in
        GoldenCase(name: item["name"] as? String ?? "?", groundTruth: item["gt"] as? String ?? "",
                   results: item["dt"] as? String ?? "", useCategories: item["use_cats"] as? Bool ?? true,
                   stats: (item["stats"] as? [Any] ?? []).map(exact), summary: item["summary"] as? String ?? "",
                   perCategory: (item["per_category"] as? [[String: Any]] ?? []).map { row in
                       row.mapValues { value -> any Sendable in
                           if let number = value as? NSNumber { return number.doubleValue }
                           return value as? String ?? ""
                       }
                   },
                   recall: item["recall"].map(flattened),
                   precisionMeanOverRecall: item["precision_mean_over_recall"].map(flattened))
    }
    return (root["iou_thresholds"] as? [String] ?? [], root["recall_thresholds"] as? [String] ?? [], parsed)
}

let goldens = loadGoldens()

@Suite struct GoldenTests {
    @Test func goldensAreThere() {
        #expect(goldens.cases.count >= 12, "eval/goldens/cocoeval/goldens.json is missing or short")
    }

    @Test func thresholdsAreNumPysLinspaceBitForBit() {
        let parameters = COCOParameters.standard
        #expect(parameters.iouThresholds.count == 10)
        #expect(parameters.recallThresholds.count == 101)
        #expect(parameters.iouThresholds == goldens.iou.compactMap(Double.init))
        #expect(parameters.recallThresholds == goldens.recall.compactMap(Double.init))
        #expect(parameters.iouThresholds[5] == 0.75, "AP75 looks its threshold up by equality, as np.where does")
    }

    @Test(arguments: goldens.cases.filter { !$0.needsSample })
    func matchesPycocotools(_ golden: GoldenCase) throws {
        try check(golden)
    }

    @Test(.enabled(if: sampleIsPresent, "../shared/data/coco-val2017-sample is absent"),
          arguments: goldens.cases.filter(\.needsSample))
    func matchesPycocotoolsOnTheCOCOSample(_ golden: GoldenCase) throws {
        try check(golden)
    }

    /// The sample's ground truth used as detections (score 1) gives AP 1, built here in Swift.
    @Test(.enabled(if: sampleIsPresent, "../shared/data/coco-val2017-sample is absent"))
    func groundTruthAsDetectionsHasAPOne() throws {
        let groundTruth = try loadInstances(path: samplePath)
        #expect(groundTruth.images.count == 10 && groundTruth.annotations.count == 68)
        let detections = groundTruth.annotations.map {
            COCODetection(imageId: $0.imageId, categoryId: $0.categoryId, bbox: $0.bbox, score: 1)
        }
        let results = try COCOResults(detections: detections, groundTruth: groundTruth)
        let evaluation = COCOEvaluator(groundTruth: groundTruth, results: results).run()
        #expect(evaluation.stats[0] == 1 && evaluation.stats[1] == 1 && evaluation.stats[2] == 1)
        #expect(evaluation.stats[8] == 1)
        let golden = try #require(goldens.cases.first { $0.name == "sample_identity" })
        #expect(evaluation.stats == golden.stats)
        #expect(evaluation.summaryText == golden.summary)
    }

    private func check(_ golden: GoldenCase) throws {
        let groundTruth = try loadInstances(path: golden.groundTruthPath)
        let results = try loadResults(path: golden.resultsPath, groundTruth: groundTruth)
        for threads in [1, 3] {
            let evaluation = COCOEvaluator(groundTruth: groundTruth, results: results,
                                           useCategories: golden.useCategories, threads: threads).run()
            #expect(evaluation.summaryText == golden.summary)
            try #require(evaluation.stats.count == 12 && golden.stats.count == 12)
            for (index, (ours, theirs)) in zip(evaluation.stats, golden.stats).enumerated() {
                #expect(abs(ours - theirs) <= goldenTolerance, "stats[\(index)]: \(ours) vs pycocotools \(theirs)")
            }
            // Same operations in the same order as NumPy: the same doubles.
            #expect(evaluation.stats == golden.stats, "not bit for bit")
            #expect(evaluation.perCategory.count == golden.perCategory.count)
            for (ours, theirs) in zip(evaluation.perCategory, golden.perCategory) {
                #expect(Double(ours.categoryId) == theirs["category_id"] as? Double)
                #expect(ours.name == theirs["name"] as? String)
                for (key, value) in [("ap", ours.ap), ("ap50", ours.ap50), ("ap75", ours.ap75), ("ar100", ours.ar100)] {
                    let expected = exact(theirs[key])
                    #expect(abs(value - expected) <= goldenTolerance, "category \(ours.categoryId) \(key)")
                    #expect(value == expected, "category \(ours.categoryId) \(key) not bit for bit")
                }
            }
            guard let goldenRecall = golden.recall, let goldenPrecision = golden.precisionMeanOverRecall else { continue }
            let (t, r, k, a, m) = evaluation.counts
            try #require(goldenRecall.count == t * k * a * m && goldenPrecision.count == t * k * a * m)
            #expect(zip(evaluation.recall, goldenRecall).allSatisfy { abs($0 - $1) <= goldenTolerance })
            var means: [Double] = []
            for tIndex in 0..<t {
                for kIndex in 0..<k {
                    for aIndex in 0..<a {
                        for mIndex in 0..<m {
                            let sum = (0..<r).reduce(0.0) { total, rIndex in
                                total + evaluation.precision[(((tIndex * r + rIndex) * k + kIndex) * a + aIndex) * m + mIndex]
                            }
                            means.append(sum / Double(r))
                        }
                    }
                }
            }
            #expect(zip(means, goldenPrecision).allSatisfy { abs($0 - $1) <= goldenTolerance })
        }
    }
}
