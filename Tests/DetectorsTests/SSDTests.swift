// SSD300 (VGG-16) against torchvision 0.14: goldens from detectors/tools/make_ssd_goldens.py, plus the support the SSD-family tests share.
import Checkpoints
import Foundation
import Layers
import TensorCore
import Testing
@testable import Detectors

/// Fixtures of the SSD family (`Fixtures/ssd`, `Fixtures/ssdlite`), found through `#filePath`.
enum SSDFixture {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let detectors = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("detectors")

    static func url(_ family: String, _ file: String) -> URL {
        root.appendingPathComponent(family).appendingPathComponent(file)
    }

    /// A detq config (snake_case JSON) at `url`.
    static func config(at url: URL) throws -> DetectorConfig {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(DetectorConfig.self, from: Data(contentsOf: url))
    }

    /// The test model of `family` with its F16 weights loaded (batch norms not folded).
    static func model(_ family: String) throws -> SSD {
        let config = try config(at: url(family, "config.json"))
        let detector = try #require(try makeDetector(config) as? SSD)
        let path = url(family, "weights.safetensors").path
        try detector.load(from: ParameterLoader(try readSafeTensors(at: path), source: path))
        return detector
    }

    /// `[[key, shape], …]` as written by the golden script.
    static func structure(_ family: String, _ file: String) throws -> [(key: String, shape: [Int])] {
        try structure(fromJSON: JSONSerialization.jsonObject(with: Data(contentsOf: url(family, file))))
    }

    static func structure(fromJSON object: Any) throws -> [(key: String, shape: [Int])] {
        let rows = try #require(object as? [[Any]])
        return try rows.map { row in
            (try #require(row[0] as? String), try #require(row[1] as? [Int]))
        }
    }

    /// The script's test pattern: byte `((i · 2654435761) mod 2³²) >> 24` at flat index i, / 255.
    static func patternImage(channels: Int, height: Int, width: Int) -> Tensor {
        Tensor(shape: [channels, height, width]) { out in
            for i in 0..<out.count {
                let byte = ((UInt64(i) &* 2_654_435_761) & 0xffff_ffff) >> 24
                out[i] = Float(byte) / 255
            }
        }
    }
}

/// One golden file pair: sampled tensors and detections (`goldens.safetensors`) with their
/// shapes, strides and sums (`goldens.json`).
struct SSDGoldens {
    struct Entry: Decodable {
        let shape: [Int]
        let stride: Int?
        let sum: Double?
        let absSum: Double?
    }

    private struct File: Decodable {
        let tensors: [String: Entry]
    }

    let entries: [String: Entry]
    let values: StateDict

    init(family: String, name: String = "goldens") throws {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        entries = try decoder.decode(File.self, from: Data(contentsOf: SSDFixture.url(family, name + ".json"))).tensors
        values = try readSafeTensors(at: SSDFixture.url(family, name + ".safetensors").path)
    }

    func tensor(_ name: String) throws -> Tensor {
        try #require(values[name], "golden '\(name)' missing").floatTensor()
    }

    /// Expects `actual` to have the golden's shape; on its strided sample a norm-wise relative
    /// difference `‖a − e‖ / ‖e‖` within `tolerance` and every element within `10 · tolerance`
    /// of the golden relative to `max(|e|, mean |x|)`; and its sum within `tolerance · Σ|x|`.
    func expectMatches(_ actual: Tensor, _ name: String, tolerance: Double = 1e-4,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let entry = try #require(entries[name], "golden '\(name)' missing", sourceLocation: sourceLocation)
        #expect(actual.shape == entry.shape, "\(name): shape \(actual.shape), torchvision \(entry.shape)",
                sourceLocation: sourceLocation)
        guard actual.shape == entry.shape, let step = entry.stride, let absSum = entry.absSum, let sum = entry.sum
        else { return }
        let expected = try tensor(name).scalars
        let scale = max(absSum / Double(max(1, actual.count)), 1e-12)
        var worst = 0.0
        var worstIndex = 0
        var differenceSquares = 0.0
        var expectedSquares = 0.0
        actual.withUnsafeBufferPointer { values in
            for (position, index) in stride(from: 0, to: values.count, by: step).enumerated() {
                let golden = Double(expected[position])
                let difference = abs(Double(values[index]) - golden)
                differenceSquares += difference * difference
                expectedSquares += golden * golden
                let relative = difference / max(abs(golden), scale)
                if relative > worst { (worst, worstIndex) = (relative, index) }
            }
        }
        let normwise = (differenceSquares / max(expectedSquares, 1e-30)).squareRoot()
        #expect(normwise <= tolerance, "\(name): norm-wise relative difference \(normwise)",
                sourceLocation: sourceLocation)
        #expect(worst <= 10 * tolerance, "\(name): relative difference \(worst) at flat index \(worstIndex)",
                sourceLocation: sourceLocation)
        let actualSum = actual.scalars.reduce(0.0) { $0 + Double($1) }
        #expect(abs(actualSum - sum) <= tolerance * max(absSum, 1e-12),
                "\(name): sum \(actualSum), torchvision \(sum)", sourceLocation: sourceLocation)
    }

    /// Expects the same number of detections, sorted by score, each of torchvision's matched by
    /// one of detq's with the same label, a box within `boxTolerance` pixels and a score within
    /// `scoreTolerance`. Near-equal scores may come in either order, and at the
    /// `detections_per_img` cut a near-tie may keep a different detection.
    func expectDetections(_ actual: Detections, _ prefix: String, boxTolerance: Float = 1e-2,
                          scoreTolerance: Float = 1e-4, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let boxes = try tensor(prefix + ".boxes").scalars
        let scores = try tensor(prefix + ".scores").scalars
        let labels = try tensor(prefix + ".labels").scalars.map { Int($0) }
        #expect(actual.count == scores.count, "\(prefix): \(actual.count) detections, torchvision \(scores.count)",
                sourceLocation: sourceLocation)
        #expect(zip(actual.scores, actual.scores.dropFirst()).allSatisfy { $0 >= $1 },
                "\(prefix): detections not sorted by score", sourceLocation: sourceLocation)
        func boxDifference(_ i: Int, _ j: Int) -> Float {
            (0..<4).map { abs(actual.boxes[4 * j + $0] - boxes[4 * i + $0]) }.max() ?? 0
        }
        func matches(_ i: Int, _ j: Int) -> Bool {
            actual.labels[j] == labels[i] && abs(actual.scores[j] - scores[i]) <= scoreTolerance
                && boxDifference(i, j) <= boxTolerance
        }
        var used = [Bool](repeating: false, count: actual.count)
        var unmatched: [Int] = []
        var worstBox: Float = 0
        var worstScore: Float = 0
        for i in scores.indices {
            let candidates = [i] + Array(actual.scores.indices)
            guard let j = candidates.first(where: { $0 < actual.count && !used[$0] && matches(i, $0) }) else {
                unmatched.append(i)
                continue
            }
            used[j] = true
            worstBox = max(worstBox, boxDifference(i, j))
            worstScore = max(worstScore, abs(actual.scores[j] - scores[i]))
        }
        let cut = (scores.min() ?? 0) + scoreTolerance
        let strays = unmatched.filter { scores[$0] > cut }
        let extra = used.indices.filter { !used[$0] && actual.scores[$0] > cut }
        let described = strays.prefix(3).map { i in
            "label \(labels[i]) score \(scores[i]) box \(boxes[(4 * i)..<(4 * i + 4)]) (detq at \(i): label \(i < actual.count ? actual.labels[i] : -1) score \(i < actual.count ? actual.scores[i] : .nan) box \(i < actual.count ? Array(actual.boxes[(4 * i)..<(4 * i + 4)]) : []))"
        }
        #expect(strays.isEmpty && extra.isEmpty,
                "\(prefix): \(strays.count) torchvision detections unmatched, \(extra.count) of detq's; first: \(described)",
                sourceLocation: sourceLocation)
        #expect(unmatched.count <= 2, "\(prefix): \(unmatched.count) detections at the cut differ",
                sourceLocation: sourceLocation)
        #expect(worstBox <= boxTolerance && worstScore <= scoreTolerance, sourceLocation: sourceLocation)
    }
}

/// Runs the checks both SSD test models share: transform, every intermediate, detections on
/// the transformed batch and end to end, and after batch-norm folding.
func checkSSDAgainstGoldens(family: String) throws {
    let model = try SSDFixture.model(family)
    let goldens = try SSDGoldens(family: family)
    let batchEntry = try #require(goldens.entries["pattern.batch"])
    let size = Size2(batchEntry.shape[2], batchEntry.shape[3])
    let pattern = SSDFixture.patternImage(channels: 3, height: size.h, width: size.w)

    let (batch, sizes) = model.transform([pattern])
    #expect(sizes == [size])
    try goldens.expectMatches(batch, "pattern.batch", tolerance: 1e-6)

    let outputs = model.headOutputs(batch: batch)
    #expect(outputs.features.count == 6)
    for (level, feature) in outputs.features.enumerated() {
        try goldens.expectMatches(feature, "pattern.features.\(level)")
    }
    try goldens.expectMatches(outputs.boxRegression, "pattern.bbox_regression")
    try goldens.expectMatches(outputs.classLogits, "pattern.cls_logits")
    try goldens.expectMatches(outputs.defaultBoxes.reshaped([outputs.defaultBoxes.shape[0], 4]),
                              "pattern.default_boxes", tolerance: 1e-6)
    try goldens.expectDetections(model.detect(batch: batch, imageSizes: sizes)[0], "pattern.detections")
    try goldens.expectDetections(model([pattern])[0], "pattern.detections")

    let small = try goldens.tensor("small.image")
    let image = Tensor(shape: small.shape, scalars: small.scalars.map { $0 / 255 })
    try goldens.expectMatches(model.transform([image]).batch, "small.batch", tolerance: 1e-5)
    try goldens.expectDetections(model([image])[0], "small.detections")

    // detq folds batch norms after loading; the folded model must still match.
    model.foldBatchNorms()
    try goldens.expectDetections(model([pattern])[0], "pattern.detections")
    try goldens.expectDetections(model([image])[0], "small.detections")
}

/// Expects `model`'s parameters to be exactly torchvision's state-dict keys and shapes.
func expectSameStructure(_ model: any Module, _ expected: [(key: String, shape: [Int])],
                         sourceLocation: SourceLocation = #_sourceLocation) {
    let ours = model.namedParameters().map { ($0.key, $0.tensor.shape) }
    let ourKeys = Set(ours.map(\.0)), theirKeys = Set(expected.map(\.key))
    #expect(ourKeys.subtracting(theirKeys).sorted().isEmpty,
            "keys detq has and torchvision not: \(ourKeys.subtracting(theirKeys).sorted().prefix(8))",
            sourceLocation: sourceLocation)
    #expect(theirKeys.subtracting(ourKeys).sorted().isEmpty,
            "keys torchvision has and detq not: \(theirKeys.subtracting(ourKeys).sorted().prefix(8))",
            sourceLocation: sourceLocation)
    let theirShapes = Dictionary(uniqueKeysWithValues: expected.map { ($0.key, $0.shape) })
    let mismatched = ours.filter { key, shape in theirShapes[key].map { $0 != shape } ?? false }.map(\.0)
    #expect(mismatched.isEmpty, "shapes differ: \(mismatched.prefix(8))", sourceLocation: sourceLocation)
}

@Suite struct SSDTests {
    @Test func matchesTorchvisionOnTheNarrowSSD300() throws {
        try checkSSDAgainstGoldens(family: "ssd")
    }

    @Test func fullSizeModelHasTorchvisionsStateDict() throws {
        let config = try SSDFixture.config(at: SSDFixture.detectors.appendingPathComponent("ssd300_vgg16/config.json"))
        let model = try makeDetector(config)
        expectSameStructure(model, try SSDFixture.structure("ssd", "ssd300_vgg16_structure.json"))
        let ssd = try #require(model as? SSD)
        #expect(ssd.backbone.outChannels == [512, 1024, 512, 256, 256, 256])
        #expect(ssd.anchorGenerator.boxesPerLocation == [4, 6, 6, 6, 4, 4])
    }

    @Test func fullSizeFeatureMapsAre38To1() throws {
        // Narrow widths, full geometry: the ceil-mode pool and the unpadded conv10/11 decide the sizes.
        let extractor = SSDFeatureExtractorVGG(widthMultiplier: 1.0 / 64)
        let maps = extractor.featureMaps(Tensor(zeros: [1, 3, 300, 300]))
        #expect(maps.map { $0.shape[2] } == [38, 19, 10, 5, 3, 1])
        #expect(maps.map { $0.shape[1] } == extractor.outChannels)
    }

    @Test func partsFollowThePaper() throws {
        let config = try SSDFixture.config(at: SSDFixture.url("ssd", "config.json"))
        let model = try makeDetector(config)
        #expect(model.part(of: "backbone.features.0") == .backbone)
        #expect(model.part(of: "backbone.extra.0.7.1") == .backbone)
        #expect(model.part(of: "backbone.extra.1.0") == .neck)
        #expect(model.part(of: "backbone.extra.4.2") == .neck)
        #expect(model.part(of: "head.classification_head.module_list.5") == .head)
        // Every conv belongs to some part.
        for (path, module) in model.namedModules() where module is Conv2d {
            #expect(model.part(of: path) != nil, "\(path) has no part")
        }
    }

    @Test func rejectsConfigsThatDoNotFit() throws {
        let url = SSDFixture.url("ssd", "config.json")
        var config = try SSDFixture.config(at: url)
        config.defaultBoxes?.aspectRatios.removeLast()
        config.defaultBoxes?.steps?.removeLast()
        #expect(throws: UnsupportedModelError.self) { try makeDetector(config) }

        config = try SSDFixture.config(at: url)
        config.backbone.name = "resnet50"
        #expect(throws: UnsupportedModelError.self) { try makeDetector(config) }

        config = try SSDFixture.config(at: url)
        config.head = HeadConfig(inChannels: [1, 2, 3, 4, 5, 6])
        #expect(throws: UnsupportedModelError.self) { try makeDetector(config) }

        config = try SSDFixture.config(at: url)
        config.defaultBoxes?.steps = [8, 16]
        #expect(throws: (any Error).self) { try makeDetector(config) }
    }

    @Test func strictLoadingNamesTheWrongKey() throws {
        let config = try SSDFixture.config(at: SSDFixture.url("ssd", "config.json"))
        let model = try makeDetector(config)
        let path = SSDFixture.url("ssd", "weights.safetensors").path
        var dict = try readSafeTensors(at: path)
        dict["backbone.scale_weight"] = nil
        do {
            try model.load(from: ParameterLoader(dict, source: path))
            Issue.record("loading without backbone.scale_weight succeeded")
        } catch let error as LoadError {
            #expect(error.missing == ["backbone.scale_weight"])
        }
    }
}
