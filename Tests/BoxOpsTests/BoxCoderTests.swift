// Tests of BoxCoder and BoxLinearCoder: hand-computed decodes, the clamp, round trips, goldens.
import Foundation
import Testing
import TensorCore
@testable import BoxOps

@Suite("Box coders")
struct BoxCoderTests {
    // Reference box: x 10...30, y 20...60, so width 20, height 40, centre (20, 40).
    let reference = Tensor(shape: [1, 4], scalars: [10, 20, 30, 60])

    @Test("decode by hand, unit and (10, 10, 5, 5) weights")
    func decodeByHand() {
        // dx 0.5 -> centre x 20 + 0.5 * 20 = 30; dy -0.25 -> 40 - 10 = 30; dw log 2 -> width 40;
        // dh 0 -> height 40. Box: (30 -+ 20, 30 -+ 20).
        let unit = BoxCoder(weights: (1, 1, 1, 1))
        let codes = Tensor(shape: [1, 4], scalars: [0.5, -0.25, Float(log(2.0)), 0])
        expectClose(unit.decode(relativeCodes: codes, boxes: reference).scalars, [10, 10, 50, 50], "unit weights")
        // The same box with weights (10, 10, 5, 5): codes are multiplied by the weights.
        let ssd = BoxCoder(weights: (10, 10, 5, 5))
        let weighted = Tensor(shape: [1, 4], scalars: [5, -2.5, 5 * Float(log(2.0)), 0])
        expectClose(ssd.decode(relativeCodes: weighted, boxes: reference).scalars, [10, 10, 50, 50], "weighted")
    }

    @Test("dw and dh are clamped at log(1000 / 16) before exp")
    func clamp() {
        let coder = BoxCoder(weights: (1, 1, 1, 1))
        #expect(close(coder.bboxXformClip, 4.1351666))
        // dw 10 clamps to log 62.5: width 62.5 * 20 = 1250 around x 20 -> (-605, 645).
        // dh 4 stays: height 40 * e^4 = 2183.926 around y 40.
        let codes = Tensor(shape: [1, 4], scalars: [0, 0, 10, 4])
        let halfHeight = Float(20 * exp(4.0))
        expectClose(coder.decode(relativeCodes: codes, boxes: reference).scalars,
                    [-605, 40 - halfHeight, 645, 40 + halfHeight], "clamped width")
        // With weight 5 a code of 50 is dw 10: clamped the same way.
        let ssd = BoxCoder(weights: (10, 10, 5, 5))
        let weighted = Tensor(shape: [1, 4], scalars: [0, 0, 50, 0])
        expectClose(ssd.decode(relativeCodes: weighted, boxes: reference).scalars, [-605, 20, 645, 60], "weighted clamp")
    }

    @Test("weights from a config list: four non-zero values or a named error")
    func weightsFromList() throws {
        let coder = try BoxCoder(weights: [10, 10, 5, 5])
        #expect(coder.weights == (10, 10, 5, 5))
        #expect(throws: BoxOpsError.self) { try BoxCoder(weights: [10, 10, 5]) }
        do {
            _ = try BoxCoder(weights: [1, 0, 1, 1], field: "roi_heads.box_coder_weights")
            Issue.record("a zero weight was accepted")
        } catch let error as BoxOpsError {
            #expect(error.description.hasPrefix("roi_heads.box_coder_weights:"))
        }
    }

    @Test("decode handles K code sets per box ([N, 4K])")
    func multipleClasses() {
        let coder = BoxCoder(weights: (10, 10, 5, 5))
        // Class 0: zero codes give the reference box back; class 1: dx 10 / 10 = 1 moves it by a width.
        let codes = Tensor(shape: [1, 8], scalars: [0, 0, 0, 0, 10, 0, 0, 0])
        let decoded = coder.decode(relativeCodes: codes, boxes: reference)
        #expect(decoded.shape == [1, 8])
        expectClose(decoded.scalars, [10, 20, 30, 60, 30, 20, 50, 60], "two classes")
    }

    @Test("encode then decode returns the targets")
    func roundTrip() {
        var generator = SeededGenerator(seed: 7)
        let corners = Tensor.randomUniform([50, 2], low: 0, high: 300, generator: &generator).scalars
        // Anchor sizes come from the first 50 rows of `sizes`, target sizes from the last 50.
        let sizes = Tensor.randomUniform([100, 2], low: 4, high: 120, generator: &generator).scalars
        var anchors = [Float](), targets = [Float]()
        for i in 0..<50 {
            let x = corners[2 * i], y = corners[2 * i + 1]
            anchors += [x, y, x + sizes[2 * i], y + sizes[2 * i + 1]]
            targets += [x + 5, y - 7, x + 5 + sizes[100 + 2 * i], y - 7 + sizes[100 + 2 * i + 1]]
        }
        let anchorBoxes = Tensor.rows(anchors, width: 4), targetBoxes = Tensor.rows(targets, width: 4)
        for weights in [(Float(1), Float(1), Float(1), Float(1)), (10, 10, 5, 5)] {
            let coder = BoxCoder(weights: weights)
            let codes = coder.encode(referenceBoxes: targetBoxes, proposals: anchorBoxes)
            let decoded = coder.decode(relativeCodes: codes, boxes: anchorBoxes)
            expectClose(decoded.scalars, targets, tolerance: 1e-4, "round trip \(weights)")
        }
        let linear = BoxLinearCoder(normalizeBySize: true)
        let linearCodes = linear.encode(referenceBoxes: anchorBoxes, proposals: targetBoxes)
        expectClose(linear.decode(relativeCodes: linearCodes, boxes: anchorBoxes).scalars, targets, tolerance: 1e-4,
                    "linear round trip")
    }

    @Test("linear coder by hand")
    func linearByHand() {
        // Centre (20, 40), size 20 x 40: codes (0.5, 0.25, 1, 0.5) are distances (10, 10, 20, 20).
        let codes = Tensor(shape: [1, 4], scalars: [0.5, 0.25, 1, 0.5])
        expectClose(BoxLinearCoder(normalizeBySize: true).decode(relativeCodes: codes, boxes: reference).scalars,
                    [10, 30, 40, 60], "normalized")
        expectClose(BoxLinearCoder(normalizeBySize: false).decode(relativeCodes: codes, boxes: reference).scalars,
                    [19.5, 39.75, 21, 40.5], "raw distances")
    }

    struct Golden: Decodable {
        struct Case: Decodable {
            let weights: [Float]
            let bbox_xform_clip: Double
            let decoded: [Float]
            let targets: [Float]
            let encoded: [Float]
        }
        struct Linear: Decodable {
            let codes: [Float]
            let decoded: [Float]
            let targets: [Float]
            let encoded: [Float]
            let decoded_unnormalized: [Float]
        }
        let boxes: [Float]
        let codes: [Float]
        let box_coder: [Case]
        let linear: Linear
    }

    @Test("matches torchvision: decode with clamped codes, encode, linear coder")
    func torchvisionGoldens() throws {
        let golden = try Fixture.load("box_coder.json", as: Golden.self)
        let boxes = Tensor.rows(golden.boxes, width: 4)
        let codes = Tensor.rows(golden.codes, width: 8)
        for item in golden.box_coder {
            let w = item.weights
            let coder = BoxCoder(weights: (w[0], w[1], w[2], w[3]))
            #expect(coder.bboxXformClip == Float(item.bbox_xform_clip))
            expectClose(coder.decode(relativeCodes: codes, boxes: boxes).scalars, item.decoded, "decode \(w)")
            expectClose(coder.encode(referenceBoxes: Tensor.rows(item.targets, width: 4), proposals: boxes).scalars,
                        item.encoded, "encode \(w)")
        }
        let linearCodes = Tensor.rows(golden.linear.codes, width: 4)
        expectClose(BoxLinearCoder().decode(relativeCodes: linearCodes, boxes: boxes).scalars,
                    golden.linear.decoded, "linear decode")
        expectClose(BoxLinearCoder().encode(referenceBoxes: boxes, proposals: Tensor.rows(golden.linear.targets, width: 4)).scalars,
                    golden.linear.encoded, "linear encode")
        let scaled = Tensor.rows(golden.linear.codes.map { $0 * 40 }, width: 4)
        expectClose(BoxLinearCoder(normalizeBySize: false).decode(relativeCodes: scaled, boxes: boxes).scalars,
                    golden.linear.decoded_unnormalized, "linear decode, not normalized")
    }
}
