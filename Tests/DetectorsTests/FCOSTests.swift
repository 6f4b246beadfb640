// FCOS against torchvision 0.14 goldens (make_dense_goldens.py): intermediates, detections, shipped config.
import Checkpoints
import Foundation
import Layers
import TensorCore
import Testing
@testable import Detectors

@Suite struct FCOSTests {
    /// The shapes FCOS's composition (MobileNetV2 features 6/13/17, FPN with P6/P7 from P5,
    /// FCOSHead with 3 GroupNorm(32) convs) at width 0.1.
    @Test func intermediatesAndDetectionsMatchTorchvision() throws {
        let golden = try DenseGolden(folder: "fcos", stem: "fcos")
        let model = try FCOS(try golden.config())
        try golden.load(into: model)
        let (batch, imageSizes) = try golden.batch()

        let body = model.backbone.body.features(batch)
        for (index, feature) in body.enumerated() { try golden.expectSampled("body.\(index)", feature) }
        let levels = model.backbone.fpn(body)
        for (index, level) in levels.enumerated() { try golden.expectSampled("fpn.\(index)", level) }
        let head = model.head(levels)
        try golden.expectSampled("head.cls_logits", concat(head.classLogits, axis: 1))
        try golden.expectSampled("head.bbox_regression", concat(head.boxRegression, axis: 1))
        try golden.expectSampled("head.bbox_ctrness", concat(head.centerness, axis: 1))

        try golden.expectDetections("batch", model.detect(batch: batch, imageSizes: imageSizes))
    }

    @Test func endToEndDetectionsMatchTorchvision() throws {
        let golden = try DenseGolden(folder: "fcos", stem: "fcos")
        let model = try makeDetector(try golden.config())
        try golden.load(into: model)
        model.foldBatchNorms()
        try golden.expectDetections("images", model(try golden.images()))
    }

    @Test func shippedConfigBuildsTorchvisionsStateDict() throws {
        let config = try shippedDetectorConfig("fcos_resnet50_fpn")
        let model = try makeDetector(config)
        #expect(model is FCOS)
        try expectTorchvisionKeys(model, folder: "fcos", name: "fcos_resnet50_fpn")
        #expect(config.scoreThresh == 0.2 && config.nmsThresh == 0.6 && config.detectionsPerImg == 100)
        #expect(config.topkCandidates == 1000 && config.backbone.batchNormEps == 1e-5)
        #expect(config.anchorSizes == FCOS.defaultAnchorSizes && config.aspectRatios == FCOS.defaultAspectRatios)
    }

    /// The shipped `fcos_mobilenet_v2_shapes` composition at its real width (MobileNetV2 1.0,
    /// 64-channel FPN, 3 GroupNorm convs per branch, 9 classes), described in detq's schema.
    @Test func shapesCompositionBuildsTorchvisionsStateDict() throws {
        let config = try DenseGolden.decode(DetectorConfig.self, from: DenseGolden.fixtures
            .appendingPathComponent("fcos/shapes_fcos_config.json"))
        try expectTorchvisionKeys(try makeDetector(config), folder: "fcos", name: "shapes_fcos")
    }

    @Test func partsSplitBackboneNeckAndHead() throws {
        let model = try makeDetector(try DenseGolden(folder: "fcos", stem: "fcos").config())
        #expect(model.part(of: "backbone.body.0.0") == .backbone)
        #expect(model.part(of: "backbone.fpn.inner_blocks.2.0") == .neck)
        #expect(model.part(of: "head.regression_head.bbox_ctrness") == .head)
        #expect(model.part(of: "head.classification_head.conv.3") == .head)
    }

    /// FCOS pre-filters class logits with the bound for `score_thresh²` (`σ(ctrness) ≤ 1`): with
    /// centre-ness logits where σ is 1, the candidates equal those of scoring every value.
    @Test func logitPrefilterKeepsEveryPassingScore() {
        let threshold: Float = 0.2
        let postprocess = DensePostprocess(scoreThreshold: threshold, topkCandidates: 100_000, nmsThreshold: 0.6,
                                           detectionsPerImage: 100)
        let center = Float(Foundation.log(0.04 / 0.96))
        var generator = SeededGenerator(seed: 11)
        let logits = (0..<20_000).map { _ in center + generator.nextNormal() * 1e-3 }
        let centerness = (0..<20_000).map { $0 % 2 == 0 ? Float(30) : generator.nextNormal() * 3 }
        let bound = DensePostprocess.logitBound(probability: threshold * threshold)
        logits.withUnsafeBufferPointer { values in
            let score = { (i: Int) in
                (DensePostprocess.sigmoid(values[i]) * DensePostprocess.sigmoid(centerness[i])).squareRoot()
            }
            let filtered = postprocess.candidates(values, bound: bound, score: score)
            let everything = postprocess.candidates(values, bound: -.infinity, score: score)
            #expect(filtered.indices == everything.indices && filtered.scores == everything.scores)
            #expect(filtered.indices.count > 100)
        }
    }

    @Test func needsOneAnchorPerLocation() throws {
        var config = try DenseGolden(folder: "fcos", stem: "fcos").config()
        config.aspectRatios = Array(repeating: [0.5, 1.0], count: 5)
        #expect { try FCOS(config) } throws: { "\($0)".contains("one anchor per location") }
    }
}
