// Hand-worked evaluations: each expectation follows from pycocotools' rules, not from our output.
import Foundation
import Testing
@testable import COCO

func box(_ x: Double, _ y: Double, _ width: Double, _ height: Double) -> COCOBox {
    COCOBox(x: x, y: y, width: width, height: height)
}

/// A small dataset: images 1...imageCount, categories (id, name).
func dataset(images imageCount: Int = 1, categories: [(Int, String)] = [(1, "a")],
             annotations: [COCOAnnotation]) -> COCODataset {
    COCODataset(images: (1...imageCount).map { COCOImage(id: $0) }, annotations: annotations,
                categories: categories.map { COCOCategory(id: $0.0, name: $0.1) })
}

func annotation(_ id: Int, image: Int = 1, category: Int = 1, _ bbox: COCOBox, area: Double? = nil,
                crowd: Bool = false) -> COCOAnnotation {
    COCOAnnotation(id: id, imageId: image, categoryId: category, bbox: bbox, area: area ?? bbox.area, isCrowd: crowd)
}

func detection(image: Int = 1, category: Int = 1, _ bbox: COCOBox, score: Double) -> COCODetection {
    COCODetection(imageId: image, categoryId: category, bbox: bbox, score: score)
}

func evaluate(_ groundTruth: COCODataset, _ detections: [COCODetection], useCategories: Bool = true) throws -> COCOEvaluation {
    let results = try COCOResults(detections: detections, groundTruth: groundTruth)
    return COCOEvaluator(groundTruth: groundTruth, results: results, useCategories: useCategories, threads: 2).run()
}

/// pycocotools' precision after one true positive: `tp / (fp + tp + np.spacing(1))` = 1 / (1 + 2^-52),
/// one ulp below 1 (from two true positives on it rounds to 1).
let onePositive = 1.0 / (1.0 + Double.ulpOfOne)

/// Stats when the only, small box is found: AP `onePositive` and AR 1 for all and small, -1 for
/// medium and large.
let allFoundSmall: [Double] = [onePositive, onePositive, onePositive, onePositive, -1, -1, 1, 1, 1, 1, -1, -1]
let noneFoundSmall: [Double] = [0, 0, 0, 0, -1, -1, 0, 0, 0, 0, -1, -1]

/// Equal within 1e-15 (means of equal values may move in the last bit).
func close(_ ours: [Double], _ expected: [Double]) -> Bool {
    ours.count == expected.count && zip(ours, expected).allSatisfy { abs($0 - $1) <= 1e-15 }
}

@Suite struct EvaluatorTests {
    @Test func boxIoUFollowsMaskApi() {
        // 10x10 boxes overlapping by 5x10: 50 / (100 + 100 - 50)
        #expect(boxIoU(box(0, 0, 10, 10), box(5, 0, 10, 10), crowd: false) == 50.0 / 150.0)
        // a crowd divides by the detection's area only: 50 / 100
        #expect(boxIoU(box(5, 0, 10, 10), box(0, 0, 10, 10), crowd: true) == 0.5)
        #expect(boxIoU(box(0, 0, 10, 10), box(10, 0, 10, 10), crowd: false) == 0, "touching is no overlap")
        #expect(boxIoU(box(0, 0, 10, 10), box(0, 20, 10, 10), crowd: false) == 0)
        #expect(boxIoU(box(2, 2, 4, 4), box(0, 0, 10, 10), crowd: true) == 1)
        #expect(boxIoU(box(0, 0, 0, 10), box(0, 0, 10, 10), crowd: false) == 0, "an empty box has no intersection")
    }

    @Test func aPerfectDetectionScoresOne() throws {
        let truth = dataset(annotations: [annotation(1, box(10, 10, 10, 10))])
        let evaluation = try evaluate(truth, [detection(box(10, 10, 10, 10), score: 0.5)])
        #expect(close(evaluation.stats, allFoundSmall), "\(evaluation.stats)")
        let row = try #require(evaluation.perCategory.first)
        #expect(row.categoryId == 1 && row.name == "a" && evaluation.perCategory.count == 1)
        #expect(close([row.ap, row.ap50, row.ap75, row.ar100], [onePositive, onePositive, onePositive, 1]))
    }

    @Test func aMatchToAnnotationIdZeroCountsAsNoMatch() throws {
        // pycocotools stores the matched gt id in dtMatches and tests it for truth: id 0 is "unmatched"
        let truth = dataset(annotations: [annotation(0, box(10, 10, 10, 10))])
        let evaluation = try evaluate(truth, [detection(box(10, 10, 10, 10), score: 0.5)])
        #expect(evaluation.stats == noneFoundSmall)
    }

    @Test func noDetectionsScoreZeroWhereThereIsGroundTruth() throws {
        let truth = dataset(categories: [(1, "a"), (2, "b")], annotations: [annotation(1, box(10, 10, 10, 10))])
        let evaluation = try evaluate(truth, [])
        #expect(evaluation.stats == noneFoundSmall)
        #expect(evaluation.perCategory.map(\.ap) == [0, -1], "category 2 has no ground truth")
        #expect(try evaluate(dataset(annotations: []), []).stats == Array(repeating: -1, count: 12))
    }

    @Test func theAnnotationsAreaFieldPicksTheRange() throws {
        // a 10x10 box whose annotation says area 2000 (a mask area, say) is medium, not small
        let truth = dataset(annotations: [annotation(1, box(10, 10, 10, 10), area: 2000)])
        let evaluation = try evaluate(truth, [detection(box(10, 10, 10, 10), score: 0.5)])
        #expect(close(evaluation.stats, [onePositive, onePositive, onePositive, -1, onePositive, -1, 1, 1, 1, -1, 1, -1]))
    }

    @Test func detectionsOnACrowdAreIgnored() throws {
        let truth = dataset(annotations: [annotation(1, box(0, 0, 100, 100), crowd: true),
                                          annotation(2, box(200, 200, 10, 10))])
        let onCrowd = (0..<5).map { detection(box(Double($0) * 10, 0, 10, 10), score: 0.9) }
        let evaluation = try evaluate(truth, onCrowd + [detection(box(200, 200, 10, 10), score: 0.1)])
        // the crowd is neither to find nor a reason for false positives; the large range holds only
        // it. With one detection per image only a detection on the crowd is left: AR@1 is 0.
        var expected = allFoundSmall
        expected[6] = 0
        #expect(close(evaluation.stats, expected), "\(evaluation.stats)")
    }

    @Test func onlyTheFirstHundredDetectionsCountAndTiesKeepFileOrder() throws {
        let truth = dataset(annotations: [annotation(1, box(10, 10, 10, 10))])
        let far = (0..<100).map { detection(box(300, Double($0) * 20, 10, 10), score: 0.5) }
        let hit = detection(box(10, 10, 10, 10), score: 0.5)
        // equal scores: the stable sort keeps the hit first, or cuts it as the 101st
        #expect(try evaluate(truth, [hit] + far).stats[6...8] == [1, 1, 1])
        #expect(try evaluate(truth, far + [hit]).stats[6...8] == [0, 0, 0])
        // by score the hit is last, so 0.5 precision is never reached before it: it is cut
        let lower = detection(box(10, 10, 10, 10), score: 0.4)
        #expect(try evaluate(truth, [lower] + far).stats[8] == 0)
    }

    @Test func greedyMatchingTakesTheBestFreeBox() throws {
        // Two boxes side by side; the first detection (higher score) overlaps B best, the second only A.
        let truth = dataset(annotations: [annotation(1, box(0, 0, 10, 10)), annotation(2, box(10, 0, 10, 10))])
        let first = detection(box(8, 0, 10, 10), score: 0.9)  // IoU A 20/180, B 80/120
        let second = detection(box(1, 0, 10, 10), score: 0.8)  // IoU A 90/110, B 10/190
        let evaluation = try evaluate(truth, [first, second])
        // At IoU 0.5, 0.55, 0.6, 0.65 both match (80/120 = 0.667 and 90/110 = 0.818); at 0.7, 0.75,
        // 0.8 only the second does; at 0.85 and above neither.
        // recall per threshold: 1, 1, 1, 1, 0.5, 0.5, 0.5, 0, 0, 0 -> mean 0.55
        #expect(abs(evaluation.stats[8] - 0.55) < 1e-15)
        // AR with one detection per image: the first detection only -> recall 0.5 at 0.5...0.65
        #expect(abs(evaluation.stats[6] - 0.2) < 1e-15)
    }

    @Test func anIgnoredBoxIsNotTakenOnceARegularOneIsHeld() throws {
        // The detection overlaps a regular box (IoU 0.6) and a crowd (IoU over its area = 1); regular
        // boxes come first, and once matched to one pycocotools stops at the ignored ones.
        let truth = dataset(annotations: [annotation(1, box(0, 0, 10, 10), crowd: true),
                                          annotation(2, box(0, 0, 10, 6))])
        let evaluation = try evaluate(truth, [detection(box(0, 0, 10, 10), score: 0.9)])
        // At 0.5 and 0.55 and 0.6 it matches the regular box; from 0.65 on it goes to the crowd
        // and is ignored: recall 3 of 10 thresholds.
        #expect(abs(evaluation.stats[8] - 0.3) < 1e-15)
    }

    @Test func withoutCategoriesLabelsDoNotMatter() throws {
        let truth = dataset(categories: [(1, "a"), (2, "b")], annotations: [annotation(1, category: 1, box(10, 10, 10, 10))])
        let wrongLabel = [detection(category: 2, box(10, 10, 10, 10), score: 0.5)]
        #expect(try evaluate(truth, wrongLabel).stats == noneFoundSmall)
        let pooled = try evaluate(truth, wrongLabel, useCategories: false)
        #expect(close(pooled.stats, allFoundSmall))
        #expect(pooled.categoryIds == [-1] && pooled.perCategory.isEmpty)
    }

    @Test func detectionsOfUnlistedCategoriesAreNotEvaluated() throws {
        let truth = dataset(annotations: [annotation(1, box(10, 10, 10, 10))])
        let evaluation = try evaluate(truth, [detection(category: 7, box(10, 10, 10, 10), score: 0.9),
                                              detection(box(10, 10, 10, 10), score: 0.5)])
        #expect(close(evaluation.stats, allFoundSmall))
    }

    @Test func summaryLinesHavePycocotoolsFormat() throws {
        let truth = dataset(annotations: [annotation(1, box(10, 10, 10, 10))])
        let lines = try evaluate(truth, []).summaryText.split(separator: "\n", omittingEmptySubsequences: false)
        try #require(lines.count == 13 && lines[12].isEmpty)
        #expect(lines[0] == " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.000")
        #expect(lines[2] == " Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=100 ] = 0.000")
        #expect(lines[4] == " Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = -1.000")
        #expect(lines[6] == " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 0.000")
        #expect(lines[9] == " Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = 0.000")
    }

    @Test func sortByScoreIsAStableDescendingSort() {
        var generator = SystemRandomNumberGenerator()
        for count in [0, 1, 2, 5, 16, 17, 40, 300] {
            let scores = (0..<count).map { _ in Double(Int.random(in: 0..<5, using: &generator)) / 4 }
            var keys = Array(0..<count)
            sortByScore(&keys) { scores[$0] }
            // the naive twin: for each score from high to low, the keys with it in ascending order
            let expected = Set(scores).sorted(by: >).flatMap { value in (0..<count).filter { scores[$0] == value } }
            #expect(keys == expected)
        }
    }

    @Test func numpyMeanOfShortArraysIsTheSequentialSum() {
        #expect(numpyMean([]) == nil)
        let values = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
        #expect(numpyMean(values) == values.reduce(0, +) / 7)
        // eight or more: ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)), then the rest
        let nine = [1e16, 1, -1e16, 1, 1, 1, 1, 1, 1.0]
        #expect(numpyMean(nine) == ((((1e16 + 1) + (-1e16 + 1)) + ((1 + 1) + (1 + 1))) + 1) / 9)
    }

    @Test func threadCountsAgree() throws {
        let groundTruth = try loadInstances(path: goldenFolder.appendingPathComponent("mixed.gt.json").path)
        let results = try loadResults(path: goldenFolder.appendingPathComponent("mixed.dt.json").path, groundTruth: groundTruth)
        let one = COCOEvaluator(groundTruth: groundTruth, results: results, threads: 1).run()
        let four = COCOEvaluator(groundTruth: groundTruth, results: results, threads: 4).run()
        #expect(one.precision == four.precision && one.recall == four.recall && one.stats == four.stats)
    }
}

@Suite struct OutputTests {
    func sampleEvaluation() throws -> COCOEvaluation {
        let groundTruth = try loadInstances(path: goldenFolder.appendingPathComponent("mixed.gt.json").path)
        let results = try loadResults(path: goldenFolder.appendingPathComponent("mixed.dt.json").path, groundTruth: groundTruth)
        return COCOEvaluator(groundTruth: groundTruth, results: results).run()
    }

    @Test func reportIsTheSpecObject() throws {
        let evaluation = try sampleEvaluation()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(evaluation.reportJSON().utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["stats", "per_category"])
        let stats = try #require(object["stats"] as? [NSNumber]).map(\.doubleValue)
        #expect(zip(stats, evaluation.stats).allSatisfy { abs($0 - $1) <= 1e-15 } && stats.count == 12)
        let rows = try #require(object["per_category"] as? [[String: Any]])
        #expect(rows.count == evaluation.perCategory.count)
        for (row, metrics) in zip(rows, evaluation.perCategory) {
            #expect(Set(row.keys) == ["category_id", "name", "ap", "ap50", "ap75", "ar100"])
            #expect((row["category_id"] as? NSNumber)?.intValue == metrics.categoryId)
            #expect(row["name"] as? String == metrics.name)
            #expect(abs(((row["ap"] as? NSNumber)?.doubleValue ?? .nan) - metrics.ap) <= 1e-15)
        }
        // names with quotes, backslashes and non-ASCII letters survive
        #expect(rows.contains { $0["name"] as? String == "traffic \"light\"" })
        #expect(rows.contains { $0["name"] as? String == "a/b\\c" })
    }

    @Test func curvesHaveTheDocumentedLayout() throws {
        let evaluation = try sampleEvaluation()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("detq-curves-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("curves.json").path
        try evaluation.writeCurves(to: path)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["curves.json"], "no temporary left")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        let (t, r, k, a, m) = evaluation.counts
        #expect((object["category_ids"] as? [Int]) == evaluation.categoryIds)
        #expect((object["area_ranges"] as? [String]) == ["all", "small", "medium", "large"])
        #expect((object["max_detections"] as? [Int]) == [1, 10, 100])
        let precision = try #require(object["precision"] as? [[[[[NSNumber]]]]])
        #expect(precision.count == t && precision[0].count == r && precision[0][0].count == k
                && precision[0][0][0].count == a && precision[0][0][0][0].count == m)
        let tIndex = 3, rIndex = 57, kIndex = k - 1, aIndex = 2, mIndex = 1
        #expect(precision[tIndex][rIndex][kIndex][aIndex][mIndex].doubleValue
                == evaluation.precision[(((tIndex * r + rIndex) * k + kIndex) * a + aIndex) * m + mIndex])
        let recall = try #require(object["recall"] as? [[[[NSNumber]]]])
        #expect(recall.count == t && recall[0].count == k && recall[0][0].count == a && recall[0][0][0].count == m)
        #expect(recall[9][0][3][2].doubleValue == evaluation.recall[((9 * k + 0) * a + 3) * m + 2])
    }

    @Test func anUnwritableCurvesPathIsAnError() throws {
        let evaluation = try sampleEvaluation()
        #expect(throws: COCOError.self) { try evaluation.writeCurves(to: "/nonexistent-folder/curves.json") }
    }
}
