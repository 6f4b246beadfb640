// RetinaNet against torchvision 0.14 goldens (make_dense_goldens.py): intermediates, detections, shipped configs.
import Checkpoints
import Foundation
import Layers
import TensorCore
import Testing
@testable import Detectors

@Suite struct RetinaNetTests {
    /// v1: head without norm, P6 from P5, FrozenBatchNorm2d body (the shapes RetinaNet's
    /// composition); v2: GroupNorm head with bias-free convs, P6 from C5, BatchNorm2d body.
    @Test(arguments: ["v1", "v2"])
    func intermediatesAndDetectionsMatchTorchvision(stem: String) throws {
        let golden = try DenseGolden(folder: "retinanet", stem: stem)
        let model = try RetinaNet(try golden.config())
        try golden.load(into: model)
        let (batch, imageSizes) = try golden.batch()

        let body = model.backbone.body.features(batch)
        for (index, feature) in body.enumerated() { try golden.expectSampled("body.\(index)", feature) }
        let levels = model.backbone.fpn(body)
        #expect(levels.count == 5)
        for (index, level) in levels.enumerated() { try golden.expectSampled("fpn.\(index)", level) }
        let head = model.head(levels)
        try golden.expectSampled("head.cls_logits", concat(head.classLogits, axis: 1))
        try golden.expectSampled("head.bbox_regression", concat(head.boxRegression, axis: 1))

        try golden.expectDetections("batch", model.detect(batch: batch, imageSizes: imageSizes))
    }

    /// Transform, network, postprocess and rescaling to the original images together.
    @Test(arguments: ["v1", "v2"])
    func endToEndDetectionsMatchTorchvision(stem: String) throws {
        let golden = try DenseGolden(folder: "retinanet", stem: stem)
        let model = try makeDetector(try golden.config())
        try golden.load(into: model)
        try golden.expectDetections("images", model(try golden.images()))
    }

    /// detq folds frozen batch norms after loading; the detections must not move.
    @Test func foldedBatchNormsKeepTheDetections() throws {
        let golden = try DenseGolden(folder: "retinanet", stem: "v1")
        let model = try RetinaNet(try golden.config())
        try golden.load(into: model)
        model.foldBatchNorms()
        let (batch, imageSizes) = try golden.batch()
        try golden.expectDetections("batch", model.detect(batch: batch, imageSizes: imageSizes))
    }

    @Test(arguments: ["retinanet_resnet50_fpn", "retinanet_resnet50_fpn_v2"])
    func shippedConfigBuildsTorchvisionsStateDict(name: String) throws {
        let config = try shippedDetectorConfig(name)
        #expect(config.architecture == name)
        let model = try makeDetector(config)
        try expectTorchvisionKeys(model, folder: "retinanet", name: name)
    }

    /// The shipped `retinanet_mobilenet_v2_shapes` composition at its real width (MobileNetV2 1.0,
    /// 64-channel FPN, 9 classes), described in detq's schema.
    @Test func shapesCompositionBuildsTorchvisionsStateDict() throws {
        let config = try DenseGolden.decode(DetectorConfig.self, from: DenseGolden.fixtures
            .appendingPathComponent("retinanet/shapes_retinanet_config.json"))
        try expectTorchvisionKeys(try makeDetector(config), folder: "retinanet", name: "shapes_retinanet")
    }

    @Test func shippedConfigsWriteOutTorchvisionsDefaults() throws {
        let v1 = try shippedDetectorConfig("retinanet_resnet50_fpn")
        let v2 = try shippedDetectorConfig("retinanet_resnet50_fpn_v2")
        for config in [v1, v2] {
            #expect(config.anchorSizes == RetinaNet.defaultAnchorSizes)
            #expect(config.aspectRatios == RetinaNet.defaultAspectRatios)
            #expect(config.scoreThresh == 0.05 && config.nmsThresh == 0.5)
            #expect(config.detectionsPerImg == 300 && config.topkCandidates == 1000)
            #expect(config.minSize == 800 && config.maxSize == 1333 && config.numClasses == 91)
        }
        // torchvision's int(x * 2 ** (1/3)), int(x * 2 ** (2/3)) for x = 32…512, written by hand.
        #expect(RetinaNet.defaultAnchorSizes == [[32, 40, 50], [64, 80, 101], [128, 161, 203], [256, 322, 406],
                                                 [512, 645, 812]])
        // Legacy COCO checkpoint: FrozenBatchNorm2d with eps overwritten to 0; v2 keeps 1e-5.
        #expect(v1.backbone.batchNormEps == 0 && v2.backbone.batchNormEps == 1e-5)
        #expect(v1.backbone.p6p7InChannels == 256 && v2.backbone.p6p7InChannels == 2048)
        #expect(v1.head?.norm == nil && v2.head?.norm == "group_norm" && v2.head?.groupNormGroups == 32)
    }

    @Test func partsSplitBackboneNeckAndHead() throws {
        let model = try makeDetector(try DenseGolden(folder: "retinanet", stem: "v2").config())
        #expect(model.part(of: "backbone.body.6.conv.0.0") == .backbone)
        #expect(model.part(of: "backbone.fpn.extra_blocks.p6") == .neck)
        #expect(model.part(of: "head.classification_head.cls_logits") == .head)
        #expect(model.part(of: "head.regression_head.conv.3.0") == .head)
        #expect(model.part(of: "backbone") == nil)
        for (path, module) in model.namedModules() where module is Conv2d {
            #expect(model.part(of: path) != nil, "conv \(path) belongs to no part")
        }
        let branches = model.namedModules().map(\.path).filter { $0.hasPrefix("head.") && !$0.dropFirst(5).contains(".") }
        #expect(branches == ["head.classification_head", "head.regression_head"])
    }

    /// The logit pre-filter only skips values whose sigmoid cannot pass: the candidates equal
    /// those of scoring every value, for logits crowded around each threshold's logit.
    @Test(arguments: [Float(0.05), 0.2, 0.5, 1e-6, 0.999])
    func logitPrefilterKeepsEveryPassingScore(threshold: Float) {
        let postprocess = DensePostprocess(scoreThreshold: threshold, topkCandidates: 100_000, nmsThreshold: 0.5,
                                           detectionsPerImage: 100)
        let center = Float(Foundation.log(Double(threshold) / (1 - Double(threshold))))
        var generator = SeededGenerator(seed: 7)
        var logits = (0..<20_000).map { _ in center + generator.nextNormal() * 1e-3 }
        logits += (0..<200).map { Float($0 - 100) / 8 } + [.nan, .infinity, -.infinity]
        let bound = DensePostprocess.logitBound(probability: threshold)
        #expect(bound < center)
        logits.withUnsafeBufferPointer { values in
            let filtered = postprocess.candidates(values, bound: bound) { DensePostprocess.sigmoid(values[$0]) }
            let everything = postprocess.candidates(values, bound: -.infinity) { DensePostprocess.sigmoid(values[$0]) }
            #expect(filtered.indices == everything.indices && filtered.scores == everything.scores)
            #expect(filtered.indices.count > 100, "threshold \(threshold): \(filtered.indices.count) candidates")
        }
    }

    /// top-k keeps the best `topkCandidates` by score, highest first.
    @Test func candidatesAreTheTopScoresAboveTheThreshold() {
        let postprocess = DensePostprocess(scoreThreshold: 0.5, topkCandidates: 3, nmsThreshold: 0.5, detectionsPerImage: 10)
        let scores: [Float] = [0.1, 0.9, 0.6, 0.5, 0.95, 0.7, 0.2]
        scores.withUnsafeBufferPointer { values in
            let result = postprocess.candidates(values, bound: -.infinity) { values[$0] }
            #expect(result.indices == [4, 1, 5] && result.scores == [0.95, 0.9, 0.7])
        }
    }

    /// torchvision's `_v1_to_v2_weights`: `conv.{2i}` → `conv.{i}.0` for i < 4, weights and biases.
    @Test func legacyHeadKeysAreUpgraded() {
        #expect(RetinaNetHead.upgradedLegacyKey("head.classification_head.conv.0.weight")
                == "head.classification_head.conv.0.0.weight")
        #expect(RetinaNetHead.upgradedLegacyKey("head.regression_head.conv.6.bias") == "head.regression_head.conv.3.0.bias")
        #expect(RetinaNetHead.upgradedLegacyKey("head.classification_head.conv.4.bias")
                == "head.classification_head.conv.2.0.bias")
        for unchanged in ["head.classification_head.conv.1.0.weight", "head.classification_head.cls_logits.weight",
                          "head.regression_head.conv.8.weight", "backbone.fpn.layer_blocks.0.0.weight"] {
            #expect(RetinaNetHead.upgradedLegacyKey(unchanged) == unchanged)
        }
    }

    @Test func badConfigsNameTheField() throws {
        var config = try DenseGolden(folder: "retinanet", stem: "v1").config()
        config.anchorSizes = Array(config.anchorSizes!.prefix(4))
        config.aspectRatios = Array(config.aspectRatios!.prefix(4))
        #expect { try RetinaNet(config) } throws: { "\($0)".contains("anchor_sizes") }

        config = try DenseGolden(folder: "retinanet", stem: "v2").config()
        config.head?.norm = "batch_norm"
        #expect { try RetinaNet(config) } throws: { "\($0)".contains("head.norm") }
        config.head?.norm = "group_norm"
        config.head?.groupNormGroups = 5
        #expect { try RetinaNet(config) } throws: { "\($0)".contains("group_norm_groups") }

        config = try DenseGolden(folder: "retinanet", stem: "v1").config()
        config.aspectRatios![2] = [1.0]
        #expect { try RetinaNet(config) } throws: { "\($0)".contains("anchors per level") }
        config = try DenseGolden(folder: "retinanet", stem: "v1").config()
        config.head?.boxCoderWeights = [1, 1, 0, 1]
        #expect { try RetinaNet(config) } throws: { "\($0)".contains("box_coder_weights") }
    }

    /// Strict loading: a torchvision v1 state dict does not load into a v2 model.
    @Test func v1WeightsDoNotLoadIntoV2() throws {
        let v1 = try DenseGolden(folder: "retinanet", stem: "v1")
        let v2 = try RetinaNet(try DenseGolden(folder: "retinanet", stem: "v2").config())
        #expect { try v1.load(into: v2) } throws: { error in
            let text = "\(error)"
            return text.contains("head.classification_head.conv.0.1.weight") && text.contains("unused")
        }
    }
}
