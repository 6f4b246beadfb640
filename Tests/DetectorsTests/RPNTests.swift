// Hand-computed checks of the RPN's proposal selection (torchvision's _get_top_n_idx and filter_proposals).
import BoxOps
import Foundation
import Testing
import TensorCore
@testable import Detectors

private func logistic(_ x: Double) -> Float { Float(1 / (1 + exp(-x))) }

private func expectValues(_ actual: [Float], _ expected: [Float], tolerance: Float = 1e-6, _ what: String,
                          sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, "\(what): \(actual) vs \(expected)", sourceLocation: sourceLocation)
    let worst = zip(actual, expected).map { abs($0 - $1) }.max() ?? 0
    #expect(worst <= tolerance, "\(what): \(actual) vs \(expected)", sourceLocation: sourceLocation)
}

@Suite struct RPNTests {
    /// Two levels, two anchors per location (ratios 0.5 and 2).
    ///
    /// Cell anchors, half extents rounded half to even: size 8 → (-6, -3, 6, 3) and
    /// (-3, -6, 3, 6); size 16 → (-11, -6, 11, 6) and (-6, -11, 6, 11). The batch is 8 × 16:
    /// level 0 is 1 × 2 (stride 8, 8), level 1 is 1 × 1 (stride 8, 16).
    /// Level 0 anchors in torchvision's order (position, then anchor):
    ///   p0a0 (-6, -3, 6, 3), p0a1 (-3, -6, 3, 6), p1a0 (2, -3, 14, 3), p1a1 (5, -6, 11, 6).
    static func network(preNmsTopN: Int = 3, postNmsTopN: Int = 10, scoreThreshold: Float = 0) throws -> RegionProposalNetwork {
        RegionProposalNetwork(inChannels: 1,
                              anchorGenerator: try AnchorGenerator(sizes: [[8], [16]], aspectRatios: [[0.5, 2], [0.5, 2]]),
                              convDepth: 1, preNmsTopN: preNmsTopN, postNmsTopN: postNmsTopN, nmsThreshold: 0.7,
                              scoreThreshold: scoreThreshold)
    }

    /// Head outputs in NCHW as the head writes them: objectness `[1, A, H, W]` (anchor-major),
    /// deltas `[1, 4A, H, W]` (channel 4a + k).
    static func headOutputs() -> (objectness: [Tensor], deltas: [Tensor]) {
        // level 0: a0 = (0.1 at p0, 0.4 at p1), a1 = (0.3, 0.2) → flattened p0a0 .1, p0a1 .3, p1a0 .4, p1a1 .2
        let objectness0 = Tensor(shape: [1, 2, 1, 2], scalars: [0.1, 0.4, 0.3, 0.2])
        var deltas0 = Tensor(zeros: [1, 8, 1, 2])
        deltas0.scalars[0 * 2 + 1] = 0.5     // dx of a0 at p1
        // level 1: a0 0.9, a1 -0.5
        let objectness1 = Tensor(shape: [1, 2, 1, 1], scalars: [0.9, -0.5])
        var deltas1 = Tensor(zeros: [1, 8, 1, 1])
        deltas1.scalars[5] = 0.25            // dy of a1
        return ([objectness0, objectness1], [deltas0, deltas1])
    }

    @Test func topCandidatesArePerLevelInTorchvisionOrder() throws {
        let rpn = try Self.network(preNmsTopN: 3)
        let (objectness, deltas) = Self.headOutputs()
        let anchors = try rpn.anchorGenerator.anchors(imageSize: Size2(8, 16), featureSizes: [Size2(1, 2), Size2(1, 1)])
        let candidates = rpn.topCandidates(objectness: objectness, deltas: deltas, anchors: anchors, image: 0)
        // Level 0 keeps its 3 best of 4 (p1a0, p0a1, p1a1); level 1 has 2 ≤ 3 anchors and keeps both.
        #expect(candidates.levels == [0, 0, 0, 1, 1])
        expectValues(candidates.logits, [0.4, 0.3, 0.2, 0.9, -0.5], "logits")
        // p1a0 + dx 0.5: centre 8 + 0.5 · 12 = 14 → (8, -3, 20, 3); level 1 a1 + dy 0.25:
        // centre 0 + 0.25 · 22 = 5.5 → (-6, -5.5, 6, 16.5).
        expectValues(candidates.boxes.scalars, [8, -3, 20, 3, -3, -6, 3, 6, 5, -6, 11, 6,
                                                -11, -6, 11, 6, -6, -5.5, 6, 16.5], "boxes")
    }

    @Test func selectionClipsThenSuppressesWithinLevelsOnly() throws {
        let rpn = try Self.network(preNmsTopN: 3)
        let (objectness, deltas) = Self.headOutputs()
        let anchors = try rpn.anchorGenerator.anchors(imageSize: Size2(8, 16), featureSizes: [Size2(1, 2), Size2(1, 1)])
        let candidates = rpn.topCandidates(objectness: objectness, deltas: deltas, anchors: anchors, image: 0)
        let (boxes, scores) = rpn.selectProposals(candidates, imageSize: Size2(8, 16))
        // Clipped to 16 × 8: (8, 0, 16, 3), (0, 0, 3, 6), (5, 0, 11, 6), (0, 0, 11, 6), (0, 0, 6, 8);
        // the largest IoU within a level is 36 / 78 (level 1), so all stay, by score.
        expectValues(boxes.scalars, [0, 0, 11, 6, 8, 0, 16, 3, 0, 0, 3, 6, 5, 0, 11, 6, 0, 0, 6, 8], "boxes")
        expectValues(scores, [0.9, 0.4, 0.3, 0.2, -0.5].map { logistic($0) }, "scores")
    }

    @Test func selectionDropsSmallAndLowScoringBoxesAndCaps() throws {
        let candidates = RegionProposalNetwork.Candidates(
            boxes: Tensor(shape: [7, 4], scalars: [
                0, 0, 10, 10,    // 0: level 0, logit 2
                1, 0, 11, 10,    // 1: level 0, IoU 90/110 with box 0 → suppressed
                0, 0, 10, 10,    // 2: level 1, same box as 0 on another level → kept
                25, 5, 40, 15,   // 3: level 1, clipped to (25, 5, 30, 15)
                35, 0, 45, 10,   // 4: level 0, clipped to zero width → removed
                0, 12, 10, 20,   // 5: level 0, sigmoid(-3) = 0.047 < 0.05 → removed
                12, 12, 18, 18,  // 6: level 1, sigmoid(0) = 0.5
            ]),
            logits: [2, 1.5, 1, 3, 4, -3, 0], levels: [0, 0, 1, 1, 0, 0, 1])
        let all = try Self.network(postNmsTopN: 10, scoreThreshold: 0.05).selectProposals(candidates, imageSize: Size2(20, 30))
        expectValues(all.boxes.scalars, [25, 5, 30, 15, 0, 0, 10, 10, 0, 0, 10, 10, 12, 12, 18, 18], "boxes")
        expectValues(all.scores, [3, 2, 1, 0].map { logistic($0) }, "scores")
        let capped = try Self.network(postNmsTopN: 3, scoreThreshold: 0.05).selectProposals(candidates, imageSize: Size2(20, 30))
        expectValues(capped.scores, [3, 2, 1].map { logistic($0) }, "capped scores")
        // With torchvision's default threshold 0 the low-scoring box 5 stays.
        let unfiltered = try Self.network(postNmsTopN: 10).selectProposals(candidates, imageSize: Size2(20, 30))
        #expect(unfiltered.scores.count == 5)
        expectValues(Array(unfiltered.boxes.scalars.suffix(4)), [0, 12, 10, 20], "last box")
    }

    /// Key names of the head, as torchvision's `RPNHead` (conv_depth 2: `conv.0.0`, `conv.1.0`).
    @Test func headKeys() {
        let head = RegionProposalNetwork.Head(inChannels: 4, anchorsPerLocation: 3, convDepth: 2)
        #expect(head.namedParameters().map(\.key) == [
            "conv.0.0.weight", "conv.0.0.bias", "conv.1.0.weight", "conv.1.0.bias",
            "cls_logits.weight", "cls_logits.bias", "bbox_pred.weight", "bbox_pred.bias",
        ])
        #expect(head.bboxPred.outChannels == 12)
    }
}
