import Checkpoints
import Detectors
import Foundation
import ImageIO
import Testing
@testable import DetQKit

/// torchvision's detections for the first validation images, written next to each shipped
/// model by `detectors/tools/eval_shapes_torch.py --golden`.
struct ShippedGolden: Decodable {
    struct Detection: Decodable {
        var box: [Float]
        var score: Float
        var label: Int
    }
    struct Image: Decodable {
        var file: String
        var detections: [Detection]
    }
    var model: String
    var images: [Image]
}

/// Every `detectors/*/golden_detections.json` in the repository.
func shippedModelsWithGoldens() -> [String] {
    let root = repositoryRoot.appendingPathComponent("detectors")
    let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
    return names.sorted().filter {
        FileManager.default.fileExists(atPath: root.appendingPathComponent("\($0)/golden_detections.json").path)
    }
}

private func iou(_ a: [Float], _ b: [Float]) -> Float {
    let w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    let h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    let inter = w * h
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return union > 0 ? inter / union : 0
}

/// What differs between detq's detections of one image and a reference's: the counts by more
/// than one (a candidate sitting on the score threshold or an NMS near-tie), or one of the
/// reference's first `compare` detections with no detq detection of the same label, IoU > 0.99
/// and a score within 1e-3. Empty when they agree; `compared` counts the reference's detections checked.
func goldenMismatches(_ found: Detections, reference: [ShippedGolden.Detection], referenceCount: Int, compare: Int = 20,
                      compared: inout Int) -> [String] {
    var problems: [String] = []
    if abs(found.count - referenceCount) > 1 {
        problems.append("\(found.count) detections, the reference \(referenceCount)")
    }
    for expected in reference.prefix(compare) {
        let match = (0..<found.count).contains { i in
            found.labels[i] == expected.label && iou(Array(found.boxes[(i * 4)..<(i * 4 + 4)]), expected.box) > 0.99
                && abs(found.scores[i] - expected.score) < 1e-3
        }
        if !match { problems.append("no match for label \(expected.label) score \(expected.score) box \(expected.box)") }
        compared += 1
    }
    return problems
}

@Suite struct ShippedModelTests {
    @Test func everyShippedModelHasAGolden() {
        // The four families of the shipped-models issue; a model without a golden is untested.
        let shipped = shippedModelsWithGoldens()
        for family in ["fcos", "retinanet", "ssdlite", "fasterrcnn"] {
            #expect(shipped.contains("\(family)_mobilenet_v2_shapes"), "\(shipped)")
        }
    }

    /// detq's detections for the shipped weights against torchvision's on the same images:
    /// each of torchvision's 20 best detections per image is found with the same label,
    /// IoU > 0.99 and a score within 1e-3, and the counts above the model's threshold differ by
    /// at most one per image (a candidate sitting on the threshold or an NMS near-tie).
    @Test(arguments: shippedModelsWithGoldens())
    func detectionsMatchTorchvision(model name: String) throws {
        let folder = repositoryRoot.appendingPathComponent("detectors/\(name)")
        let golden = try JSONDecoder().decode(
            ShippedGolden.self, from: Data(contentsOf: folder.appendingPathComponent("golden_detections.json")))
        #expect(golden.model == name)
        let model = try DetectionModel(model: name, weights: folder.appendingPathComponent("weights.safetensors").path,
                                       configPath: folder.appendingPathComponent("config.json").path)
        #expect(!golden.images.isEmpty)
        var compared = 0
        for image in golden.images {
            let found = model.detect(try loadImage(at: repositoryRoot.appendingPathComponent(image.file).path))
            let problems = goldenMismatches(found, reference: image.detections, referenceCount: image.detections.count,
                                            compared: &compared)
            #expect(problems.isEmpty, "\(name) \(image.file): \(problems.joined(separator: "; "))")
        }
        #expect(compared > 0, "\(name): torchvision found nothing to compare")
    }
}

@Suite struct LegacyCheckpointTests {
    /// A RetinaNet v1 checkpoint with torchvision's pre-0.13 head keys (`conv.{2i}.weight`)
    /// loads as torchvision 0.14 loads it, and runs the same network.
    @Test func retinaNetLegacyHeadKeysLoad() throws {
        let fixtures = repositoryRoot.appendingPathComponent("Tests/DetectorsTests/Fixtures/retinanet")
        let config = fixtures.appendingPathComponent("v1_config.json").path
        let weights = fixtures.appendingPathComponent("v1_weights.safetensors").path
        let current = try loadCheckpoint(at: weights)
        #expect(current.contains("head.classification_head.conv.1.0.weight"))
        var legacy: [(key: String, tensor: StoredTensor)] = []
        for key in current.keys {
            var renamed = key
            for branch in ["head.classification_head.conv.", "head.regression_head.conv."] where key.hasPrefix(branch) {
                let rest = key.dropFirst(branch.count).split(separator: ".")
                if rest.count == 3, let index = Int(rest[0]), rest[1] == "0" { renamed = "\(branch)\(2 * index).\(rest[2])" }
            }
            legacy.append((renamed, try #require(current[key])))
        }
        #expect(legacy.contains { $0.key == "head.regression_head.conv.6.weight" })
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("detq-legacy-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writeSafeTensors(StateDict(legacy), to: path)
        let upgraded = upgradingLegacyRetinaNetKeys(try loadCheckpoint(at: path))
        #expect(upgraded.keys == current.keys)
        let fromLegacy = try DetectionModel(model: "retinanet_resnet50_fpn", weights: path, configPath: config)
        let fromCurrent = try DetectionModel(model: "retinanet_resnet50_fpn", weights: weights, configPath: config)
        // The same network: the same parameters under the same keys, bit for bit. (Not their
        // detections compared for equality: tests run concurrently, and another test's tiled
        // convolution limits OpenBLAS to one thread for a while, which moves float sums by an ulp.)
        let legacyParameters = fromLegacy.detector.namedParameters()
        let currentParameters = fromCurrent.detector.namedParameters()
        #expect(legacyParameters.map(\.key) == currentParameters.map(\.key))
        #expect(zip(legacyParameters, currentParameters).allSatisfy { $0.tensor == $1.tensor })
        let image = try loadImage(at: repositoryRoot.appendingPathComponent("datasets/shapes/val/images/000001.jpg").path)
        #expect(fromLegacy.detect(image).count > 0)
    }
}
