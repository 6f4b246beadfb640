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

    @Test func needsOneAnchorPerLocation() throws {
        var config = try DenseGolden(folder: "fcos", stem: "fcos").config()
        config.aspectRatios = Array(repeating: [0.5, 1.0], count: 5)
        #expect { try FCOS(config) } throws: { "\($0)".contains("one anchor per location") }
    }
}
