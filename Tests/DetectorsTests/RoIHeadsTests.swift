// Hand-computed checks of the RoI heads' postprocess (torchvision's postprocess_detections) and box heads.
import BoxOps
import Foundation
import Testing
import TensorCore
@testable import Detectors

@Suite struct RoIHeadsTests {
    static func heads(detectionsPerImage: Int = 10) -> RoIHeads {
        RoIHeads(boxHead: RoIHeads.TwoMLPHead(inFeatures: 4, representationSize: 2),
                 boxPredictor: RoIHeads.Predictor(inFeatures: 2, numClasses: 3),
                 pooler: MultiScaleRoIAlign(outputSize: Size2(1), samplingRatio: 2), pooledLevels: [0],
                 boxCoder: BoxCoder(weights: (10, 10, 5, 5)), scoreThreshold: 0.15, nmsThreshold: 0.5,
                 detectionsPerImage: detectionsPerImage)
    }

    /// Two images; three classes (0 = background). Expected values by hand:
    ///   r0 (0, 0, 10, 10), logits (0, ln 4, 0) → p = (1/6, 2/3, 1/6); class 2 has dx = 10, i.e.
    ///      one width right after the weight 10: (10, 0, 20, 10).
    ///   r1 (20, 20, 40, 40), logits (ln 8, 0, 0) → (0.8, 0.1, 0.1): nothing above 0.15.
    ///   r2 (45, 5, 60, 15), logits (0, 0, ln 6) → class 2 0.75, clipped to (45, 5, 50, 15).
    ///   r3 (5, 5, 5.005, 9): 0.005 wide, removed although class 1 scores 10/12.
    ///   r4 (1, 0, 11, 10), logits (0, ln 2, 0) → (0.25, 0.5, 0.25): class 1 overlaps r0's
    ///      class-1 box with IoU 90/110 > 0.5 and is suppressed; class 2 overlaps r0's class-2
    ///      box by 10/190 and stays.
    ///   image 1: (0, 0, 4, 4), logits (0, 0, ln 3) → (0.2, 0.2, 0.6).
    static func inputs() -> (logits: Tensor, deltas: Tensor, proposals: [Tensor]) {
        let proposals = [
            Tensor(shape: [5, 4], scalars: [0, 0, 10, 10, 20, 20, 40, 40, 45, 5, 60, 15, 5, 5, 5.005, 9, 1, 0, 11, 10]),
            Tensor(shape: [1, 4], scalars: [0, 0, 4, 4]),
        ]
        let ln = { (x: Float) in Float(Foundation.log(Double(x))) }
        let logits = Tensor(shape: [6, 3], scalars: [
            0, ln(4), 0,
            ln(8), 0, 0,
            0, 0, ln(6),
            0, ln(10), 0,
            0, ln(2), 0,
            0, 0, ln(3),
        ])
        var deltas = Tensor(zeros: [6, 12])
        deltas.scalars[0 * 12 + 2 * 4] = 10
        return (logits, deltas, proposals)
    }

    @Test func postprocessDecodesFiltersAndSuppressesPerClass() {
        let (logits, deltas, proposals) = Self.inputs()
        let results = Self.heads().postprocess(classLogits: logits, boxRegression: deltas, proposals: proposals,
                                               imageSizes: [Size2(30, 50), Size2(10, 10)])
        #expect(results.count == 2)
        #expect(results[0].labels == [2, 1, 2, 2])
        let expectedScores: [Float] = [0.75, 2.0 / 3, 0.25, 1.0 / 6]
        #expect(zip(results[0].scores, expectedScores).allSatisfy { abs($0 - $1) < 1e-6 }, "\(results[0].scores)")
        #expect(results[0].boxes == [45, 5, 50, 15, 0, 0, 10, 10, 1, 0, 11, 10, 10, 0, 20, 10])
        #expect(results[1].labels == [2, 1])
        #expect(zip(results[1].scores, [0.6, 0.2] as [Float]).allSatisfy { abs($0 - $1) < 1e-6 }, "\(results[1].scores)")
        #expect(results[1].boxes == [0, 0, 4, 4, 0, 0, 4, 4])
    }

    @Test func postprocessKeepsTheBestDetectionsPerImage() {
        let (logits, deltas, proposals) = Self.inputs()
        let results = Self.heads(detectionsPerImage: 3).postprocess(
            classLogits: logits, boxRegression: deltas, proposals: proposals, imageSizes: [Size2(30, 50), Size2(10, 10)])
        #expect(results[0].labels == [2, 1, 2])
        #expect(results[1].count == 2)
    }

    @Test func boxHeadsFlattenAsTorchvision() {
        // TwoMLPHead: flatten (R, C, h, w) row-major, then fc6/fc7 with ReLU.
        let head = RoIHeads.TwoMLPHead(inFeatures: 4, representationSize: 2)
        head.fc6.weight = Tensor(shape: [2, 4], scalars: [1, 0, 0, 0, 0, 0, 0, -1])
        head.fc6.bias = Tensor(shape: [2], scalars: [0, 0])
        head.fc7.weight = Tensor(shape: [2, 2], scalars: [1, 1, 1, -1])
        head.fc7.bias = Tensor(shape: [2], scalars: [0, 0.5])
        let pooled = Tensor(shape: [1, 1, 2, 2], scalars: [3, 1, 1, -2])
        // fc6: (3, 2) → ReLU (3, 2) → fc7: (5, 1.5)
        #expect(head(pooled).scalars == [5, 1.5])
        // ConvFCHead indices: convs 0, 1; flatten 2; linears 3, 5.
        let convFC = RoIHeads.ConvFCHead(inChannels: 2, height: 3, width: 3, convLayers: [4, 4], fcLayers: [6, 5],
                                         batchNorm: false)
        #expect(convFC.namedParameters().map(\.key) == [
            "0.0.weight", "0.0.bias", "1.0.weight", "1.0.bias", "3.weight", "3.bias", "5.weight", "5.bias",
        ])
        #expect(convFC.representationSize == 5)
        #expect(convFC(Tensor(zeros: [7, 2, 3, 3])).shape == [7, 5])
    }
}
