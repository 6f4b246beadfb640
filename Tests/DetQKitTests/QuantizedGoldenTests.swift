import Checkpoints
import Detectors
import Foundation
import ImageIO
import Quantization
import TensorCore
import Testing
@testable import DetQKit

/// `eval/quantized_goldens_torch.py`'s goldens: quantized files of the shipped detectors run by
/// a second executor, in torch (exact integer sums in Float64, torchvision around the layers).
struct QuantizedGoldens: Decodable {
    struct Image: Decodable {
        var file: String
        /// All of torch's detections; `detections` holds the best 25.
        var count: Int
        var detections: [ShippedGolden.Detection]
    }
    struct LayerRanges: Decodable {
        var path: String
        /// `[low, high]` per call.
        var ranges: [[Float]]
    }
    struct Case: Decodable {
        var name: String
        var model: String
        var arguments: [String]
        var quantizedSha256: String
        /// The recipe of the file torch ran (its metadata).
        var recipe: QuantizationRecipe
        /// The file's static activation ranges.
        var inputRanges: [LayerRanges]
        var images: [Image]
    }
    var format: String
    var cases: [Case]

    static let path = repositoryRoot.appendingPathComponent("Tests/DetQKitTests/Fixtures/quantized_goldens.json").path

    static func load() throws -> QuantizedGoldens {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(QuantizedGoldens.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func caseNames() -> [String] {
        ((try? load())?.cases ?? []).map(\.name)
    }
}

@Suite struct QuantizedGoldenTests {
    @Test func goldensCoverEveryFamilyAndExecutionFeature() throws {
        let golden = try QuantizedGoldens.load()
        #expect(golden.format == "detq-quantized-goldens/1")
        let models = Set(golden.cases.map(\.model))
        for family in ["fcos", "retinanet", "ssdlite", "fasterrcnn"] {
            #expect(models.contains("\(family)_mobilenet_v2_shapes"), "\(models)")
        }
        let layers = golden.cases.flatMap(\.recipe.layers)
        // What an executor can get wrong: compensation terms, both remainder modes, per-level
        // ranges of a shared head, depthwise and linear layers, per-channel and per-tensor scales.
        #expect(layers.contains { $0.compensatesWeights && $0.compensatesActivations })
        #expect(Set(layers.filter(\.compensatesActivations).map(\.remainderMode)) == [.unclamped, .clamped])
        #expect(layers.contains { $0.activationRangeCount > 1 })
        #expect(layers.contains { $0.kind == .depthwise } && layers.contains { $0.kind == .linear })
        #expect(layers.contains { $0.weightQuantizerCount > 1 } && layers.contains { $0.weightQuantizerCount == 1 })
    }

    /// Quantizes with the golden's recipe (the same decisions: layers, bits, compensated layers,
    /// calibration images; the same activation ranges up to float noise), puts the golden's exact
    /// ranges in, then runs the file in both execution modes: every one of torch's 25 best
    /// detections per image is found with the same label, IoU > 0.99 and a score within 1e-3
    /// (measured here: IoU ≥ 0.999998, scores within 3e-7), and the counts differ by at most one.
    ///
    /// Why the exact ranges: calibration sums in BLAS, whose last bits depend on the machine (and
    /// on what else runs: concurrent tests moved ranges by one float step here), and one step moves
    /// a rounding somewhere; Faster R-CNN's proposals carried that into scores 0.03 apart.
    @Test(arguments: QuantizedGoldens.caseNames())
    func executionMatchesTorch(name: String) throws {
        let golden = try #require(try QuantizedGoldens.load().cases.first { $0.name == name })
        let folder = repositoryRoot.appendingPathComponent("detectors/\(golden.model)")
        let weights = folder.appendingPathComponent("weights.safetensors").path
        let config = folder.appendingPathComponent("config.json").path
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("detq-golden-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        let recipe = golden.recipe
        let parts = Set(recipe.scope.compactMap(DetectorPart.init(rawValue:)))
        #expect(parts.count == recipe.scope.count, "\(recipe.scope)")
        let request = QuantizeRequest(
            model: golden.model, weights: weights, config: config,
            calibrationDirectory: repositoryRoot.appendingPathComponent("datasets/shapes/calib/images").path,
            calibrationCount: recipe.calibrationSamples, options: recipe.options, parts: parts, mode: .simulated,
            output: file, report: nil, quiet: true)
        let made = try runQuantize(request).model.recipe
        #expect(made.calibrationImages == recipe.calibrationImages)
        #expect(made.layers == recipe.layers)
        #expect(made.compensatedLayers == recipe.compensatedLayers)
        var tensors = try readSafeTensors(at: file)
        #expect(Set(golden.inputRanges.map(\.path)) == Set(made.layers.map(\.path)))
        for layer in golden.inputRanges {
            let key = layer.path + ".input_range"
            let mine = try #require(tensors[key], "\(key)").floatTensor().scalars
            let theirs = layer.ranges.flatMap { $0 }
            #expect(mine.count == theirs.count, "\(key)")
            let off = zip(mine, theirs).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
            #expect(off < 1e-4, "\(key): \(mine) vs the golden's \(theirs)")
            tensors[key] = StoredTensor(Tensor(shape: [layer.ranges.count, 2], scalars: theirs))
        }
        try writeSafeTensors(tensors, to: file)
        for mode in [ExecutionMode.simulated, .integer] {
            let model = try DetectionModel(model: golden.model, weights: weights, configPath: config)
            _ = try installQuantized(file, on: model.detector, modelName: golden.model, mode: mode)
            var compared = 0
            for image in golden.images {
                let found = model.detect(try loadImage(at: repositoryRoot.appendingPathComponent(image.file).path))
                let problems = goldenMismatches(found, reference: image.detections, referenceCount: image.count,
                                                compare: 25, compared: &compared)
                #expect(problems.isEmpty, "\(name) \(mode) \(image.file): \(problems.joined(separator: "; "))")
            }
            #expect(compared > 0, "\(name): torch found nothing to compare")
        }
    }
}
