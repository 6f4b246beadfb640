// Tests of nms and batchedNMS: hand-made cases and torchvision goldens.
import Testing
import TensorCore
@testable import BoxOps

@Suite("Non-maximum suppression")
struct NonMaximumSuppressionTests {
    @Test("empty input keeps nothing")
    func empty() {
        let none = Tensor(shape: [0, 4], scalars: [])
        #expect(nms(boxes: none, scores: [], iouThreshold: 0.5) == [])
        #expect(batchedNMS(boxes: none, scores: [], labels: [], iouThreshold: 0.5) == [])
    }

    @Test("the best box suppresses overlaps; output is by score")
    func basic() {
        // B (0.9) overlaps A (0.5) with IoU 90 / 110 = 0.82; C (0.7) is apart.
        let boxes = Tensor(shape: [3, 4], scalars: [0, 0, 10, 10, 1, 0, 11, 10, 20, 20, 30, 30])
        #expect(nms(boxes: boxes, scores: [0.5, 0.9, 0.7], iouThreshold: 0.5) == [1, 2])
        // A threshold above 0.82 keeps all three, by score.
        #expect(nms(boxes: boxes, scores: [0.5, 0.9, 0.7], iouThreshold: 0.85) == [1, 2, 0])
    }

    @Test("all copies of one box: only the best survives")
    func allSuppressed() {
        let boxes = Tensor(shape: [4, 4], scalars: Array(repeating: [5, 5, 25, 45] as [Float], count: 4).flatMap { $0 })
        #expect(nms(boxes: boxes, scores: [0.2, 0.8, 0.5, 0.7], iouThreshold: 0.3) == [1])
    }

    @Test("suppression needs IoU strictly above the threshold")
    func strictThreshold() {
        // [0,0,10,10] and [0,0,10,20]: intersection 100, union 200, IoU exactly 0.5.
        let boxes = Tensor(shape: [2, 4], scalars: [0, 0, 10, 10, 0, 0, 10, 20])
        #expect(nms(boxes: boxes, scores: [0.9, 0.8], iouThreshold: 0.5) == [0, 1])
        #expect(nms(boxes: boxes, scores: [0.9, 0.8], iouThreshold: 0.49) == [0])
    }

    @Test("a suppressed box suppresses nothing")
    func chain() {
        // A-B and B-C overlap with IoU 70 / 130 = 0.54; A-C only 40 / 160 = 0.25.
        let boxes = Tensor(shape: [3, 4], scalars: [0, 0, 10, 10, 3, 0, 13, 10, 6, 0, 16, 10])
        #expect(nms(boxes: boxes, scores: [0.9, 0.8, 0.7], iouThreshold: 0.5) == [0, 2])
    }

    @Test("ties go to the lower index, for small and large inputs")
    func ties() {
        // Two identical boxes with equal scores: index 0 wins, whichever is listed first.
        let pair = Tensor(shape: [2, 4], scalars: [0, 0, 10, 10, 0, 0, 10, 10])
        #expect(nms(boxes: pair, scores: [0.6, 0.6], iouThreshold: 0.5) == [0])
        // 40 boxes (past the 16 where torch's sort stops being stable): 20 copies of box P with
        // score 0.5 at odd indices, 20 disjoint boxes with score 0.5 at even indices.
        var values = [Float]()
        for i in 0..<40 {
            values += i % 2 == 1 ? [0, 0, 10, 10] : [Float(100 + 20 * i), 0, Float(110 + 20 * i), 10]
        }
        let keep = nms(boxes: Tensor(shape: [40, 4], scalars: values), scores: Array(repeating: 0.5, count: 40),
                       iouThreshold: 0.5)
        // Every even box survives, and of the copies of P only index 1; all in index order.
        #expect(keep == [0, 1] + stride(from: 2, to: 40, by: 2).map { $0 })
    }

    @Test("per-label batching keeps overlapping boxes of different labels")
    func batched() {
        // Boxes 0 and 1 are identical but labelled 3 and 7: both stay. Box 2 (label 3) overlaps
        // box 0 with IoU 0.82 and is suppressed by it.
        let boxes = Tensor(shape: [3, 4], scalars: [0, 0, 10, 10, 0, 0, 10, 10, 1, 0, 11, 10])
        #expect(batchedNMS(boxes: boxes, scores: [0.6, 0.9, 0.5], labels: [3, 7, 3], iouThreshold: 0.5) == [1, 0])
        #expect(batchedNMS(boxes: boxes, scores: [0.6, 0.9, 0.5], labels: [3, 3, 3], iouThreshold: 0.5) == [1])
    }

    @Test("the per-label loop (more than 1000 boxes) and the offset trick agree on separable input")
    func batchedLargePath() {
        // 501 pairs of identical boxes 20 px apart. Even pairs have labels (0, 1): both kept;
        // odd pairs have labels (2, 2): only the first (higher score) kept.
        func build(pairs: Int) -> (Tensor, [Float], [Int], [Int]) {
            var values = [Float](), scores = [Float](), labels = [Int](), expected = [Int]()
            for pair in 0..<pairs {
                let x = Float(pair * 20)
                values += [x, 0, x + 10, 10, x, 0, x + 10, 10]
                scores += [1 - Float(2 * pair) * 1e-4, 1 - Float(2 * pair + 1) * 1e-4]
                labels += pair % 2 == 0 ? [0, 1] : [2, 2]
                expected += pair % 2 == 0 ? [2 * pair, 2 * pair + 1] : [2 * pair]
            }
            return (Tensor(shape: [2 * pairs, 4], scalars: values), scores, labels, expected)
        }
        let (large, largeScores, largeLabels, largeExpected) = build(pairs: 501)
        #expect(large.count > 4000)
        #expect(batchedNMS(boxes: large, scores: largeScores, labels: largeLabels, iouThreshold: 0.5) == largeExpected)
        let (small, smallScores, smallLabels, smallExpected) = build(pairs: 12)
        #expect(batchedNMS(boxes: small, scores: smallScores, labels: smallLabels, iouThreshold: 0.5) == smallExpected)
    }

    struct Golden: Decodable {
        struct Single: Decodable {
            let iou_threshold: Double
            let keep: [Int]
        }
        struct Batched: Decodable {
            let boxes: [Float]
            let scores: [Float]
            let labels: [Int]
            let iou_threshold: Double
            let keep: [Int]
        }
        struct OffsetRounding: Decodable {
            let boxes: [Float]
            let scores: [Float]
            let labels: [Int]
            let iou_threshold: Double
            let keep: [Int]
            let keep_offset: [Int]
            let keep_per_class: [Int]
        }
        let boxes: [Float]
        let scores: [Float]
        let single: [Single]
        let batched: [Batched]
        let offset_rounding: OffsetRounding
    }

    @Test("matches torchvision's nms and batched_nms (offset and per-class paths) exactly")
    func torchvisionGoldens() throws {
        let golden = try Fixture.load("nms.json", as: Golden.self)
        let boxes = Tensor.rows(golden.boxes, width: 4)
        #expect(golden.single.count == 3)
        for item in golden.single {
            #expect(nms(boxes: boxes, scores: golden.scores, iouThreshold: item.iou_threshold) == item.keep,
                    "nms at \(item.iou_threshold)")
        }
        #expect(golden.batched.map { $0.labels.count } == [300, 1100])
        for item in golden.batched {
            let keep = batchedNMS(boxes: Tensor.rows(item.boxes, width: 4), scores: item.scores, labels: item.labels,
                                  iouThreshold: item.iou_threshold)
            #expect(keep == item.keep, "batched_nms over \(item.labels.count) boxes")
        }
    }

    @Test("the Float32 offset can flip an IoU: small inputs follow torchvision's offset path")
    func offsetRounding() throws {
        // Two label-90 boxes near 400 px next to an 800 px box: the offset 90 * 801 rounds their
        // coordinates to 1/128 px, which moves their IoU across 0.5.
        let item = try Fixture.load("nms.json", as: Golden.self).offset_rounding
        let boxes = Tensor.rows(item.boxes, width: 4)
        #expect(item.keep_offset != item.keep_per_class)
        #expect(batchedNMS(boxes: boxes, scores: item.scores, labels: item.labels, iouThreshold: item.iou_threshold) == item.keep)
        #expect(item.keep == item.keep_offset)
        #expect(batchedNMSCoordinateTrick(boxes: boxes, scores: item.scores, labels: item.labels,
                                          iouThreshold: item.iou_threshold) == item.keep_offset)
        #expect(batchedNMSPerLabel(boxes: boxes, scores: item.scores, labels: item.labels,
                                   iouThreshold: item.iou_threshold) == item.keep_per_class)
    }
}
