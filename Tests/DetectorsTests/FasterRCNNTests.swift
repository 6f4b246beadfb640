// Faster R-CNN against torchvision 0.14 goldens (detectors/tools/make_rcnn_goldens.py) and the shipped configs.
import Checkpoints
import Foundation
import Layers
import Testing
import TensorCore
@testable import Detectors

/// The R-CNN fixtures: `Tests/DetectorsTests/Fixtures/rcnn/<variant>/`, found through `#filePath`.
enum RCNNFixture {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/rcnn")
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    struct Meta: Decodable {
        var levels: [String]
        var proposalCounts: [Int]
        var candidatesPerLevel: [Int]
        var detectionCounts: [Int]
        var fullDetectionCounts: [Int]
        var batchShape: [Int]
        var batchImageSizes: [[Int]]
        var originalSizes: [[Int]]
    }

    /// A snake_case JSON file decoded as detq's model catalog decodes configs.
    static func decode<T: Decodable>(_ type: T.Type, _ url: URL) throws -> T {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(T.self, from: Data(contentsOf: url))
    }

    /// The fixture's model with its weights loaded strictly and batch norms folded, as
    /// `detq` loads a checkpoint.
    static func model(_ variant: String) throws -> FasterRCNN {
        let folder = directory.appendingPathComponent(variant)
        let config = try decode(DetectorConfig.self, folder.appendingPathComponent("config.json"))
        let model = try FasterRCNN(config)
        let weights = folder.appendingPathComponent("weights.safetensors").path
        try model.load(from: ParameterLoader(try readSafeTensors(at: weights), source: weights))
        model.foldBatchNorms()
        return model
    }

    static func golden(_ variant: String) throws -> (tensors: StateDict, meta: Meta) {
        let folder = directory.appendingPathComponent(variant)
        return (try readSafeTensors(at: folder.appendingPathComponent("golden.safetensors").path),
                try decode(Meta.self, folder.appendingPathComponent("golden.json")))
    }

    /// The make_rcnn_goldens.py pattern: an integer in 0..<256 for image n, channel c, (y, x).
    static func pattern(_ n: Int, _ c: Int, _ y: Int, _ x: Int) -> Int {
        (x * (c + 3) + y * (2 * n + 5) + ((x / 7) ^ (y / 5)) * 11 + c * 37) % 256
    }

    /// The detector input: `(p - 128) / 64` inside each image, zeros in the padding (exact in Float32).
    static func batch(shape: [Int], imageSizes: [Size2]) -> Tensor {
        let (height, width) = (shape[2], shape[3])
        var batch = Tensor(zeros: shape)
        for (n, size) in imageSizes.enumerated() {
            for c in 0..<3 {
                for y in 0..<size.h {
                    for x in 0..<size.w {
                        batch.scalars[((n * 3 + c) * height + y) * width + x] = Float(pattern(n, c, y, x) - 128) / 64
                    }
                }
            }
        }
        return batch
    }

    /// The full-pipeline input: images `[3, H, W]` with values `p / 255`.
    static func images(sizes: [Size2]) -> [Tensor] {
        sizes.enumerated().map { n, size in
            Tensor(shape: [3, size.h, size.w]) { out in
                for c in 0..<3 {
                    for y in 0..<size.h {
                        for x in 0..<size.w { out[(c * size.h + y) * size.w + x] = Float(pattern(n, c, y, x)) / 255 }
                    }
                }
            }
        }
    }
}

/// `|actual - expected| <= tolerance * max(1, |expected|)` for every element.
func expectRCNNClose(_ actual: Tensor, _ expected: StoredTensor?, tolerance: Float = 1e-4, _ what: String,
                     sourceLocation: SourceLocation = #_sourceLocation) {
    guard let expected, let values = try? expected.floatTensor() else {
        Issue.record("\(what): missing from the golden", sourceLocation: sourceLocation)
        return
    }
    #expect(actual.shape == values.shape, "\(what): shape \(actual.shape), expected \(values.shape)",
            sourceLocation: sourceLocation)
    guard actual.shape == values.shape else { return }
    var worst: (index: Int, error: Float) = (-1, 0)
    var failures = 0
    for index in 0..<values.count {
        let error = abs(actual.scalars[index] - values.scalars[index])
        if error > tolerance * max(1, abs(values.scalars[index])) {
            failures += 1
            if error > worst.error { worst = (index, error) }
        }
    }
    #expect(failures == 0, "\(what): \(failures) of \(values.count) values differ, worst at \(worst.index) by \(worst.error)",
            sourceLocation: sourceLocation)
}

/// Same labels in the same order, boxes within 1e-2 px, scores within 1e-4.
func expectRCNNDetections(_ actual: Detections, _ golden: StateDict, prefix: String,
                          sourceLocation: SourceLocation = #_sourceLocation) throws {
    let boxes = try #require(golden[prefix + ".boxes"]).floatTensor().scalars
    let scores = try #require(golden[prefix + ".scores"]).floatTensor().scalars
    let labels = try #require(golden[prefix + ".labels"]).floatTensor().scalars.map { Int($0) }
    #expect(actual.labels == labels, "\(prefix): labels", sourceLocation: sourceLocation)
    #expect(actual.count == scores.count, "\(prefix): \(actual.count) detections, expected \(scores.count)",
            sourceLocation: sourceLocation)
    guard actual.count == scores.count else { return }
    let boxError = zip(actual.boxes, boxes).map { abs($0 - $1) }.max() ?? 0
    let scoreError = zip(actual.scores, scores).map { abs($0 - $1) }.max() ?? 0
    #expect(boxError <= 1e-2, "\(prefix): box error \(boxError) px", sourceLocation: sourceLocation)
    #expect(scoreError <= 1e-4, "\(prefix): score error \(scoreError)", sourceLocation: sourceLocation)
}

@Suite struct FasterRCNNTests {
    /// Every stage on the golden's batch: FPN levels, RPN head outputs, proposals and their
    /// scores, box head features, predictor outputs, detections.
    @Test(arguments: ["v1", "v2", "mobilenet_v3"])
    func intermediatesMatchTorchvision(variant: String) throws {
        let model = try RCNNFixture.model(variant)
        let (golden, meta) = try RCNNFixture.golden(variant)
        let sizes = meta.batchImageSizes.map { Size2($0[0], $0[1]) }
        let trace = model.trace(batch: RCNNFixture.batch(shape: meta.batchShape, imageSizes: sizes), imageSizes: sizes)

        #expect(model.levelNames == meta.levels)
        for (name, level) in zip(model.levelNames, trace.features) {
            expectRCNNClose(level, golden["features.\(name)"], "\(variant) features.\(name)")
        }
        for level in trace.rpn.objectness.indices {
            expectRCNNClose(trace.rpn.objectness[level], golden["rpn.objectness.\(level)"], "\(variant) objectness \(level)")
            expectRCNNClose(trace.rpn.deltas[level], golden["rpn.deltas.\(level)"], "\(variant) deltas \(level)")
        }
        #expect(trace.rpn.proposals.map { $0.shape[0] } == meta.proposalCounts)
        for image in sizes.indices {
            expectRCNNClose(trace.rpn.proposals[image], golden["proposals.\(image)"], "\(variant) proposals \(image)")
            expectRCNNClose(Tensor(shape: [trace.rpn.scores[image].count], scalars: trace.rpn.scores[image]),
                            golden["proposal_scores.\(image)"], "\(variant) proposal scores \(image)")
        }
        expectRCNNClose(trace.roiHeads.boxFeatures, golden["box_features"], "\(variant) box features")
        expectRCNNClose(trace.roiHeads.classLogits, golden["class_logits"], "\(variant) class logits")
        expectRCNNClose(trace.roiHeads.boxRegression, golden["box_regression"], "\(variant) box regression")
        #expect(trace.roiHeads.detections.map(\.count) == meta.detectionCounts)
        for image in sizes.indices {
            try expectRCNNDetections(trace.roiHeads.detections[image], golden, prefix: "detections.\(image)")
        }
    }

    /// The whole model on original images: transform, network, rescale to original pixels.
    @Test(arguments: ["v1", "v2", "mobilenet_v3"])
    func detectionsMatchTorchvisionThroughTheTransform(variant: String) throws {
        let model = try RCNNFixture.model(variant)
        let (golden, meta) = try RCNNFixture.golden(variant)
        let images = RCNNFixture.images(sizes: meta.originalSizes.map { Size2($0[0], $0[1]) })
        let detections = model(images)
        #expect(detections.map(\.count) == meta.fullDetectionCounts)
        for image in images.indices {
            try expectRCNNDetections(detections[image], golden, prefix: "full.\(image)")
        }
    }

    /// torchvision's per-level cap: min(pre_nms_top_n, anchors of the level) candidates.
    @Test func candidatesPerLevelFollowTheCap() throws {
        let model = try RCNNFixture.model("v1")
        let (_, meta) = try RCNNFixture.golden("v1")
        let sizes = meta.batchImageSizes.map { Size2($0[0], $0[1]) }
        let batch = RCNNFixture.batch(shape: meta.batchShape, imageSizes: sizes)
        let features = model.backbone(batch)
        let (objectness, deltas) = model.rpn.head(features)
        let anchors = try model.rpn.anchorGenerator.anchors(
            imageSize: Size2(batch.shape[2], batch.shape[3]), featureSizes: features.map { Size2($0.shape[2], $0.shape[3]) })
        let candidates = model.rpn.topCandidates(objectness: objectness, deltas: deltas, anchors: anchors, image: 0)
        let perLevel = (0..<features.count).map { level in candidates.levels.filter { $0 == level }.count }
        #expect(perLevel == meta.candidatesPerLevel)
    }

    /// No proposal survives the RPN (sigmoid never reaches 1 here): no detections, no crash.
    @Test(arguments: ["v1", "v2"])
    func imagesWithoutProposalsGiveNoDetections(variant: String) throws {
        let folder = RCNNFixture.directory.appendingPathComponent(variant)
        var config = try RCNNFixture.decode(DetectorConfig.self, folder.appendingPathComponent("config.json"))
        config.rpn?.scoreThresh = 1
        let model = try FasterRCNN(config)
        let weights = folder.appendingPathComponent("weights.safetensors").path
        try model.load(from: ParameterLoader(try readSafeTensors(at: weights), source: weights))
        let sizes = [Size2(64, 96)]
        let trace = model.trace(batch: RCNNFixture.batch(shape: [1, 3, 64, 96], imageSizes: sizes), imageSizes: sizes)
        #expect(trace.rpn.proposals[0].shape == [0, 4])
        #expect(trace.roiHeads.boxFeatures.shape == [0, 32])
        #expect(trace.roiHeads.detections == [.empty])
    }

    /// Thresholds torchvision compares in double precision keep the decimal the config wrote.
    @Test func nmsThresholdKeepsTheConfigDecimal() throws {
        #expect(FasterRCNN.decimal(0.3) == 0.3 && Double(Float(0.3)) != 0.3)
        let model = try RCNNFixture.model("v1")
        #expect(model.roiHeads.nmsThreshold == 0.5 && model.rpn.nmsThreshold == 0.7)
    }

    @Test func partsFollowTheStateDictPaths() throws {
        let model = try RCNNFixture.model("v2")
        #expect(model.part(of: "backbone.body.3.conv.0.0") == .backbone)
        #expect(model.part(of: "backbone.fpn.inner_blocks.0.0") == .neck)
        #expect(model.part(of: "rpn.head.conv.1.0") == .head)
        #expect(model.part(of: "roi_heads.box_head.5") == .head)
        #expect(model.part(of: "roi_heads.box_predictor.cls_score") == .head)
        #expect(FasterRCNN.subParts.map(\.name) == ["backbone", "neck", "rpn", "roi_heads"])
        // Every layer with parameters belongs to exactly one sub-part.
        for (path, module) in model.namedModules() where !module.ownParameters.isEmpty {
            let owners = FasterRCNN.subParts.filter { path == $0.prefix || path.hasPrefix($0.prefix + ".") }
            #expect(owners.count == 1, "\(path) belongs to \(owners.map(\.name))")
        }
    }

    /// The v2 box head's Sequential indices: convs 0…3, flatten 4, linear 5.
    @Test func convFCHeadKeepsTorchvisionIndices() throws {
        let model = try RCNNFixture.model("v2")
        let keys = Set(model.namedParameters().map(\.key))
        #expect(keys.contains("roi_heads.box_head.3.1.running_var"))
        #expect(keys.contains("roi_heads.box_head.5.weight"))
        #expect(keys.contains("rpn.head.conv.1.0.bias"))
        #expect(!keys.contains("roi_heads.box_head.4.weight"))
    }
}

@Suite struct FasterRCNNConfigTests {
    static let shipped = ["fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "fasterrcnn_mobilenet_v3_large_fpn"]

    static func shippedConfig(_ name: String) throws -> DetectorConfig {
        try RCNNFixture.decode(DetectorConfig.self,
                               RCNNFixture.repositoryRoot.appendingPathComponent("detectors/\(name)/config.json"))
    }

    /// Parameter counts from torchvision's weight metadata (`num_params`): the layer trees
    /// hold exactly torchvision's parameters. Batch-norm statistics are buffers, not counted;
    /// the v1 body's FrozenBatchNorm2d keeps its affine terms as buffers too.
    @Test(arguments: [("fasterrcnn_resnet50_fpn", 41_755_286, true), ("fasterrcnn_resnet50_fpn_v2", 43_712_278, false),
                      ("fasterrcnn_mobilenet_v3_large_fpn", 19_386_354, true)])
    func shippedModelsHaveTorchvisionsParameterCount(name: String, parameters: Int, frozenBodyNorms: Bool) throws {
        let model = try makeDetector(try Self.shippedConfig(name))
        var count = 0
        for (path, module) in model.namedModules() {
            let frozen = module is BatchNorm2d && (!frozenBodyNorms ? false : path.hasPrefix("backbone.body."))
            for (key, tensor) in module.ownParameters where !key.hasPrefix("running_") && !frozen {
                count += tensor.count
            }
        }
        #expect(count == parameters)
    }

    @Test func shippedConfigsCarryTorchvisionDefaults() throws {
        for name in Self.shipped {
            let config = try Self.shippedConfig(name)
            #expect(config.family == "fasterrcnn" && config.numClasses == 91, "\(name)")
            #expect(config.minSize == 800 && config.maxSize == 1333, "\(name)")
            #expect(config.scoreThresh == 0.05 && config.nmsThresh == 0.5 && config.detectionsPerImg == 100, "\(name)")
            let rpn = try #require(config.rpn)
            #expect(rpn.preNmsTopNTest == 1000 && rpn.postNmsTopNTest == 1000 && rpn.nmsThresh == 0.7, "\(name)")
            #expect(rpn.scoreThresh == (name.contains("mobilenet") ? 0.05 : 0.0), "\(name)")
            #expect(config.roiHeads?.samplingRatio == 2 && config.roiHeads?.outputSize == 7, "\(name)")
        }
        #expect(try Self.shippedConfig("fasterrcnn_resnet50_fpn").backbone.batchNormEps == 0)
        #expect(try Self.shippedConfig("fasterrcnn_resnet50_fpn_v2").backbone.batchNormEps == 1e-5)
    }

    @Test func invalidConfigsNameTheField() throws {
        let base = try RCNNFixture.decode(DetectorConfig.self,
                                          RCNNFixture.directory.appendingPathComponent("v1/config.json"))
        func message(_ change: (inout DetectorConfig) -> Void) -> String {
            var config = base
            change(&config)
            do {
                _ = try FasterRCNN(config)
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        let cases: [(change: (inout DetectorConfig) -> Void, expected: String)] = [
            ({ $0.rpn = nil }, "'rpn' section"),
            ({ $0.roiHeads?.boxHead = "mlp" }, "roi_heads.box_head 'mlp'"),
            ({ $0.roiHeads?.featmapNames = ["p3"] }, "roi_heads.featmap_names"),
            ({ $0.anchorSizes = [[32], [64]]; $0.aspectRatios = [[1], [1]] }, "anchor_sizes has 2 levels"),
            ({ $0.aspectRatios = [[1], [1], [1], [0.5, 1]] }, "same number of anchors per location"),
            ({ $0.roiHeads?.boxCoderWeights = [10, 10, 5] }, "roi_heads.box_coder_weights"),
            ({ $0.rpn?.preNmsTopNTest = 0 }, "rpn.pre_nms_top_n_test"),
            ({ $0.roiHeads?.boxHead = "conv_fc" }, "conv_layers and fc_layers"),
            ({ _ in }, "no error"),
        ]
        for (change, expected) in cases {
            let text = message(change)
            #expect(text.contains(expected), "\(text)")
        }
    }

    /// The MobileNetV3 fixture lists torchvision's default names "0"…"3"; its pyramid has "0", "1".
    @Test func mobileNetPyramidPoolsTheLevelsItHas() throws {
        let model = try RCNNFixture.model("mobilenet_v3")
        #expect(model.levelNames == ["0", "1", "pool"])
        #expect(model.roiHeads.pooledLevels == [0, 1])
        let shipped = try makeDetector(try Self.shippedConfig("fasterrcnn_mobilenet_v3_large_fpn"))
        let keys = Set(shipped.namedParameters().map(\.key))
        #expect(keys.contains("backbone.body.16.0.weight") && !keys.contains("backbone.body.17.0.weight"))
        #expect(keys.contains("backbone.fpn.inner_blocks.1.0.weight"))
        #expect(keys.contains("rpn.head.cls_logits.bias"))
    }

    @Test func mobileNetReturnedLayersAreChecked() throws {
        var config = try RCNNFixture.decode(DetectorConfig.self,
                                            RCNNFixture.directory.appendingPathComponent("mobilenet_v3/config.json"))
        config.backbone.returnedLayers = [7, 4]
        #expect(throws: UnsupportedModelError.self) { try FasterRCNN(config) }
        config.backbone.returnedLayers = [4, 17]
        #expect(throws: UnsupportedModelError.self) { try FasterRCNN(config) }
        config.backbone.returnedLayers = nil  // torchvision's default: the last two stages, 13 and 16
        let model = try FasterRCNN(config)
        #expect(model.backbone.fpn.innerBlocks.count == 2)
        #expect((model.backbone.body as? SequentialBody)?.returnIndices == [13, 16])
    }

    /// torchvision ignores featmap names the pyramid lacks (the MobileNet FPN has no "2", "3").
    @Test func featmapNamesMissingFromThePyramidAreIgnored() throws {
        var config = try RCNNFixture.decode(DetectorConfig.self,
                                            RCNNFixture.directory.appendingPathComponent("v1/config.json"))
        config.roiHeads?.featmapNames = ["0", "2", "3", "7"]
        let model = try FasterRCNN(config)
        #expect(model.roiHeads.pooledLevels == [0, 2])
    }
}
