// The bootstrap's weighted accumulate against the plain evaluator on explicitly copied images.
import Foundation
import Testing
import TensorCore
@testable import COCO

@Suite struct BootstrapTests {
    /// A golden ground truth and its detections, each detection's score nudged to be distinct
    /// (the bootstrap equals explicit copies up to the order of equal scores in one image).
    func golden(_ name: String) throws -> (COCODataset, [COCODetection]) {
        let groundTruth = try loadInstances(path: goldenFolder.appendingPathComponent("\(name).gt.json").path)
        let results = try loadResults(path: goldenFolder.appendingPathComponent("\(name).dt.json").path,
                                      groundTruth: groundTruth)
        let detections = results.detections.enumerated().map { index, d in
            COCODetection(imageId: d.imageId, categoryId: d.categoryId, bbox: d.bbox, score: d.score + 1e-9 * Double(index))
        }
        return (groundTruth, detections)
    }

    /// The ground truth and detections with image i (in sorted id order) present `counts[i]`
    /// times, copies next to each other under new ascending ids, annotations under new ids.
    func copied(_ groundTruth: COCODataset, _ detections: [COCODetection], counts: [Int]) -> (COCODataset, [COCODetection]) {
        let ids = groundTruth.images.map(\.id).sorted()
        var images: [COCOImage] = [], annotations: [COCOAnnotation] = [], copiedDetections: [COCODetection] = []
        for (index, id) in ids.enumerated() {
            for _ in 0..<counts[index] {
                let newId = images.count + 1
                images.append(COCOImage(id: newId))
                for a in groundTruth.annotations where a.imageId == id {
                    annotations.append(COCOAnnotation(id: annotations.count + 1, imageId: newId, categoryId: a.categoryId,
                                                      bbox: a.bbox, area: a.area, isCrowd: a.isCrowd))
                }
                for d in detections where d.imageId == id {
                    copiedDetections.append(COCODetection(imageId: newId, categoryId: d.categoryId, bbox: d.bbox, score: d.score))
                }
            }
        }
        return (COCODataset(images: images, annotations: annotations, categories: groundTruth.categories), copiedDetections)
    }

    @Test(arguments: ["mixed", "crowds", "sparse"])
    func drawsEqualTheEvaluationOfCopiedImages(name: String) throws {
        let (groundTruth, detections) = try golden(name)
        let results = try COCOResults(detections: detections, groundTruth: groundTruth)
        let bootstrap = COCOBootstrap(groundTruth: groundTruth, results: [results], threads: 2)
        // all ones is the plain evaluation
        let plain = COCOEvaluator(groundTruth: groundTruth, results: results, threads: 2).run().stats
        #expect(bootstrap.stats(counts: Array(repeating: 1, count: groundTruth.images.count))[0] == plain)
        // an evaluation made once, on its own, gives the same plain stats and the same draws
        let evaluation = COCOBootstrap.Evaluation(groundTruth: groundTruth, results: results, threads: 1)
        #expect(evaluation.stats(threads: 1) == plain)
        let shared = COCOBootstrap(evaluations: [evaluation], imageIds: groundTruth.images.map(\.id), threads: 2)
        #expect(shared.imageIds == bootstrap.imageIds)
        var sharedGenerator = SeededGenerator(seed: 11), ownGenerator = SeededGenerator(seed: 11)
        #expect(shared.run(draws: 2, using: &sharedGenerator) == bootstrap.run(draws: 2, using: &ownGenerator))
        var generator = SeededGenerator(seed: 7)
        var differs = false
        for _ in 0..<3 {
            let counts = bootstrap.draw(using: &generator)
            #expect(counts.reduce(0, +) == groundTruth.images.count)
            let (copiedTruth, copiedDetections) = copied(groundTruth, detections, counts: counts)
            let expected = try evaluate(copiedTruth, copiedDetections)
            let drawn = bootstrap.stats(counts: counts)[0]
            #expect(drawn == expected.stats, "\(name) counts \(counts)")
            differs = differs || drawn != plain
        }
        #expect(differs)
    }

    /// Two results files are scored on the same draw: a file scored against itself drops by 0.
    @Test func pairedDrawsScoreEveryFileOnTheSameImages() throws {
        let (groundTruth, detections) = try golden("mixed")
        let results = try COCOResults(detections: detections, groundTruth: groundTruth)
        let fewer = try COCOResults(detections: Array(detections.prefix(detections.count / 2)), groundTruth: groundTruth)
        let bootstrap = COCOBootstrap(groundTruth: groundTruth, results: [results, fewer, results], threads: 1)
        var generator = SeededGenerator(seed: 1)
        let counts = bootstrap.draw(using: &generator)
        let stats = bootstrap.stats(counts: counts)
        #expect(stats.count == 3)
        #expect(stats[0] == stats[2])
        #expect(stats[0][0] != stats[1][0])
        // an image drawn twice counts twice: the same as its copies evaluated plainly
        let (copiedTruth, copiedDetections) = copied(groundTruth, Array(detections.prefix(detections.count / 2)), counts: counts)
        #expect(stats[1] == (try evaluate(copiedTruth, copiedDetections)).stats)
    }

    /// A draw of images without regular ground truth leaves -1, as pycocotools does.
    @Test func drawsWithoutGroundTruthGiveMinusOne() throws {
        let groundTruth = dataset(images: 2, annotations: [annotation(1, image: 1, box(0, 0, 10, 10))])
        let results = try COCOResults(detections: [detection(image: 2, box(0, 0, 10, 10), score: 0.9)], groundTruth: groundTruth)
        let bootstrap = COCOBootstrap(groundTruth: groundTruth, results: [results], threads: 1)
        #expect(bootstrap.stats(counts: [0, 2])[0] == Array(repeating: -1, count: 12))
        #expect(bootstrap.stats(counts: [1, 1])[0][0] == 0)
        #expect(bootstrap.stats(counts: [2, 0])[0][0] == 0)
    }

    /// `cocoeval --compare --bootstrap`'s JSON members parse, carry the drop as the difference of the two
    /// files' stats (null where undefined) and one spread per stat; the text lines name AP and the drop.
    @Test func comparisonReportHasTheDropsAndTheirSpread() throws {
        let (groundTruth, detections) = try golden("mixed")
        let results = try COCOResults(detections: detections, groundTruth: groundTruth)
        let fewer = try COCOResults(detections: Array(detections.prefix(detections.count / 2)), groundTruth: groundTruth)
        let evaluation = COCOEvaluator(groundTruth: groundTruth, results: results, threads: 1).run()
        let other = COCOEvaluator(groundTruth: groundTruth, results: fewer, threads: 1).run()
        let sampler = COCOBootstrap(groundTruth: groundTruth, results: [results, fewer], threads: 1)
        var generator = SeededGenerator(seed: 3)
        let draws = sampler.run(draws: 20, using: &generator)
        let bootstrap = COCOComparison.Bootstrap(draws: 20, seed: 3, images: sampler.imageIds.count,
                                                 own: COCOSpread.perStat(draws.map { $0[0] }),
                                                 drop: COCOSpread.perStatDifference(draws.map { $0[0] }, draws.map { $0[1] }))
        let comparison = COCOComparison(evaluation: evaluation, compared: ("fewer.json", other), bootstrap: bootstrap)
        let text = evaluation.reportJSON(extraMembers: comparison.jsonMembers)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let compare = try #require(object["compare"] as? [String: Any])
        let drop = try #require(compare["drop"] as? [Any])
        #expect(drop.count == 12)
        // (Foundation's JSON reader may miss the last bit: compare to within 1e-15)
        #expect(abs(((drop[0] as? Double) ?? 0) - (evaluation.stats[0] - other.stats[0])) < 1e-15)
        #expect(evaluation.stats[0] - other.stats[0] > 0.01)
        #expect(compare["dt"] as? String == "fewer.json")
        #expect((compare["drop_bootstrap"] as? [Any])?.count == 12)
        let spreads = try #require((object["bootstrap"] as? [String: Any])?["stats"] as? [Any])
        #expect(spreads.count == 12)
        let first = try #require(spreads[0] as? [String: Any])
        #expect(first["draws"] as? Int == 20)
        #expect(((first["standard_error"] as? Double) ?? 0) > 0)
        let lines = comparison.lines
        #expect(lines.count == 2)
        #expect(lines[0].hasPrefix("Bootstrap over the 30 images (20 draws, seed 3): AP "))
        #expect(lines[1].hasPrefix("fewer.json: AP ") && lines[1].contains("paired draws"))
        // a spread is the sample standard deviation and NumPy's linear-interpolation percentiles
        let spread = try #require(COCOSpread([1, 2, 3, 4]))
        #expect(spread.mean == 2.5)
        #expect(abs(spread.standardError - (5.0 / 3).squareRoot()) < 1e-15)
        #expect(spread.interval95 == [1.075, 3.925])
        #expect(COCOSpread([1]) == nil)
    }
}
