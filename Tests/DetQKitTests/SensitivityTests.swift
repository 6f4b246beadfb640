import COCO
import Checkpoints
import Detectors
import Foundation
import Quantization
import Testing
@testable import DetQKit

/// `detq sensitivity` on the shipped FCOS with a few images (the figures are small-sample;
/// what is checked is the structure, the resume and the suggestion's contract).
@Suite(.serialized) struct SensitivityTests {
    static let model = "fcos_mobilenet_v2_shapes"
    static let folder = repositoryRoot.appendingPathComponent("detectors/\(model)")
    static let weights = folder.appendingPathComponent("weights.safetensors").path
    static let shapes = repositoryRoot.appendingPathComponent("datasets/shapes")

    func request(out: String) -> SensitivityRequest {
        var request = SensitivityRequest(
            model: Self.model, weights: Self.weights,
            calibrationDirectory: Self.shapes.appendingPathComponent("calib/images").path,
            images: Self.shapes.appendingPathComponent("val/images").path,
            annotations: Self.shapes.appendingPathComponent("val/instances.json").path, output: out)
        request.config = Self.folder.appendingPathComponent("config.json").path
        request.calibrationCount = 2
        request.limit = 4
        request.parts = ["head.regression_head", "neck"]
        request.bits = [LayerBits(weight: 4, activation: 4), LayerBits(weight: 8, activation: 8)]
        request.methods = [.rtn]
        request.perLayer = true
        request.proxyImages = 2
        request.fullLayers = 2
        request.checkLayers = 1
        request.quiet = true
        return request
    }

    func temporaryDirectory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("detq-sensitivity-\(UUID().uuidString)").path
    }

    @Test func defaultPartsCoverTheDetectorAndItsHeadBranches() throws {
        let model = try DetectionModel(model: Self.model, weights: nil,
                                       configPath: Self.folder.appendingPathComponent("config.json").path)
        let scope = QuantizationTarget.detector(model).quantizationScope(parts: Set(DetectorPart.allCases))
        let layers = model.detector.namedModules().map(\.path).filter { scope.parts[$0] != nil }
        let parts = try sensitivityParts(detector: model.detector, layers: layers, requested: nil)
        #expect(parts.map(\.name) == ["all", "backbone", "neck", "head", "head.classification_head", "head.regression_head"])
        let byName = Dictionary(uniqueKeysWithValues: parts.map { ($0.name, $0) })
        #expect(byName["all"]?.layers == layers)
        #expect((byName["backbone"]?.layers.count ?? 0) + (byName["neck"]?.layers.count ?? 0)
                + (byName["head"]?.layers.count ?? 0) == layers.count)
        #expect(byName["head.classification_head"]?.layers.contains("head.classification_head.cls_logits") == true)
        #expect(byName["head.regression_head"]?.layers.contains("head.regression_head.bbox_ctrness") == true)
        #expect(parts.filter(\.coarse).map(\.name) == ["backbone", "neck", "head"])
        #expect {
            _ = try sensitivityParts(detector: model.detector, layers: layers, requested: ["head", "rpn"])
        } throws: { "\($0)".contains("'rpn' selects no conv or linear layer") }
    }

    @Test func spearmanRanks() throws {
        #expect(spearmanCorrelation([1, 2, 3, 4], [10, 20, 30, 40]) == 1)
        #expect(spearmanCorrelation([1, 2, 3, 4], [4, 3, 2, 1]) == -1)
        // One swapped pair: 1 − 6·2 / (4·15) = 0.8.
        #expect(abs((spearmanCorrelation([1, 2, 3, 4], [1, 3, 2, 4]) ?? 0) - 0.8) < 1e-12)
        // Ties take the average rank: a = [1, 2.5, 2.5, 4] against b = [1, 2, 3, 4].
        let tied = try #require(spearmanCorrelation([1, 2, 2, 3], [1, 2, 3, 4]))
        #expect(abs(tied - 4.5 / (4.5 * 5).squareRoot()) < 1e-12)
        #expect(spearmanCorrelation([1, 2], [2, 1]) == nil)
        #expect(spearmanCorrelation([1, 1, 1], [1, 2, 3]) == nil)
    }

    @Test func parsesBitPairs() {
        #expect(LayerBits(parsing: "4/8") == LayerBits(weight: 4, activation: 8))
        for bad in ["9/4", "4/1", "4", "4/4/4", "a/4", ""] { #expect(LayerBits(parsing: bad) == nil, "\(bad)") }
        var request = request(out: "unused")
        request.bits = []
        #expect(throws: SensitivityError.self) { try request.validate() }
        request = self.request(out: "unused")
        request.bootstrap = 1
        #expect { try request.validate() } throws: { "\($0)".contains("--bootstrap") }
    }

    @Test func runsResumesAndSuggests() throws {
        let out = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: out) }
        var request = request(out: out)
        request.suggest = true
        request.maxDrop = 100
        let result = try runSensitivity(request)
        #expect(result.images == 4)
        #expect(result.fp32.count == 12 && result.fp32[0] > 0)
        #expect(result.matrix.count == 2 * 1 * 2)
        #expect(result.matrix.allSatisfy { $0.stats?.count == 12 && ($0.bitOperations ?? 0) > 0 })
        // Per layer: every layer of the two parts has a proxy row, ranked.
        let partLayers = Set(result.parts.flatMap(\.layers))
        #expect(Set(result.layers.map(\.layer)) == partLayers)
        #expect(result.layers.map(\.proxyRank) == Array(1...result.layers.count))
        // Two worst by the proxy, plus one from the middle of the rest of its ranking.
        #expect(result.layers.filter { $0.apDrop != nil }.map(\.proxyRank)
                == [1, 2, 3 + (result.layers.count - 2) / 2])
        #expect(result.proxyCorrelationLayers == 3)
        #expect(result.layers.allSatisfy { (0...1).contains($0.proxyAP) && $0.scoreMapError >= 0 })
        // Every drop has its bootstrap spread, and fp32.results.json holds FP32's detections.
        #expect(result.bootstrapDraws == request.bootstrap)
        for record in result.matrix {
            let se = try #require(record.dropStandardError, "\(record.key)")
            let interval = try #require(record.dropInterval95)
            #expect(se.isFinite && se >= 0 && interval[0] <= interval[1], "\(record.key)")
        }
        #expect(result.layers.filter { $0.apDrop != nil }.allSatisfy { $0.apDropStandardError != nil })
        let all = try loadInstances(path: request.annotations)
        let truth = all.restricted(to: ImageSelection(limit: request.limit).apply(to: all.images.map(\.id)))
        let saved = try loadResults(path: out + "/fp32.results.json", groundTruth: truth)
        #expect(COCOEvaluator(groundTruth: truth, results: saved).run().stats == result.fp32)
        // The budget admits everything, so the cheapest assignment is the lowest bits on every
        // coarse part, confirmed by its own evaluation and written as a recipe.
        let suggestion = try #require(result.suggestion)
        #expect(suggestion.parts == ["neck": "4/4"])
        #expect(suggestion.measuredDrop != nil && suggestion.measuredDropStandardError != nil)
        let recipe = try MixedPrecisionRecipe.load(from: try #require(suggestion.recipeFile))
        #expect(recipe.parts == ["neck": "4/4"] && recipe.method == "rtn" && recipe.model == Self.model)
        for file in ["sensitivity.json", "sensitivity.md", "sensitivity.svg"] {
            #expect(FileManager.default.fileExists(atPath: out + "/" + file), "\(file)")
        }
        let svg = try String(contentsOfFile: out + "/sensitivity.svg", encoding: .utf8)
        #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))
        // A rerun reuses every journaled evaluation: no new line, the same figures.
        let journal = out + "/evaluations.jsonl"
        let lines = try String(contentsOfFile: journal, encoding: .utf8).split(separator: "\n").count
        let again = try runSensitivity(request)
        #expect(try String(contentsOfFile: journal, encoding: .utf8).split(separator: "\n").count == lines)
        #expect(again.matrix.map(\.stats) == result.matrix.map(\.stats))
        #expect(again.layers.map(\.layer) == result.layers.map(\.layer))
        // Evaluations added to the run take FP32 from the journal: its detections are made again
        // (in float, before the part is quantized) when fp32.results.json is gone, read from it
        // when it is there; either way the drops' spreads equal those of a fresh run.
        var more = request
        more.perLayer = false
        more.suggest = false
        more.bits = [LayerBits(weight: 6, activation: 6)]
        try FileManager.default.removeItem(atPath: out + "/fp32.results.json")
        let remade = try runSensitivity(more)
        more.bits = [LayerBits(weight: 5, activation: 5)]
        let reread = try runSensitivity(more)
        let freshOut = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: freshOut) }
        var fresh = more
        fresh.output = freshOut
        fresh.bits = [LayerBits(weight: 6, activation: 6), LayerBits(weight: 5, activation: 5)]
        let freshResult = try runSensitivity(fresh)
        func spreads(_ result: SensitivityResult, _ bits: String) -> [Double?] {
            result.matrix.filter { $0.bits == bits }.map(\.dropStandardError)
        }
        #expect(spreads(remade, "6/6").count == 2 && spreads(remade, "6/6").allSatisfy { $0 != nil })
        #expect(spreads(remade, "6/6") == spreads(freshResult, "6/6"))
        #expect(spreads(reread, "5/5") == spreads(freshResult, "5/5"))
        // (Spreads of zero would not tell FP32's detections from the quantized ones.)
        #expect(spreads(freshResult, "5/5").contains { ($0 ?? 0) > 0 })
        // Other settings in the same folder are refused, naming what differs.
        var other = request
        other.granularity = .perTensor
        #expect { _ = try runSensitivity(other) } throws: { "\($0)".contains("granularity") }
    }

    @Test func oneRunAtATimePerFolder() throws {
        let out = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: out) }
        let header = ["model": Self.model]
        let first = try SensitivityJournal(directory: out, header: header)
        #expect { _ = try SensitivityJournal(directory: out, header: header) } throws: {
            "\($0)".contains("in use by another detq sensitivity run")
        }
        // The refused one left the first's journal alone; after the first closes, the folder is free.
        try first.append(SensitivityRecord(kind: "fp32", key: "fp32", seconds: 1))
        first.close()
        let second = try SensitivityJournal(directory: out, header: header)
        #expect(second.records.keys.sorted() == ["fp32"])
        second.close()
    }

    @Test func refusesAJournalOfOtherWeightsAtTheSamePath() throws {
        let out = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: out) }
        let weights = out + "-weights.safetensors"
        defer { try? FileManager.default.removeItem(atPath: weights) }
        let original = try readSafeTensors(at: Self.weights)
        try writeSafeTensors(original, to: weights)
        var request = request(out: out)
        request.weights = weights
        request.perLayer = false
        request.parts = ["neck"]
        request.bits = [LayerBits(weight: 8, activation: 8)]
        request.limit = 2
        _ = try runSensitivity(request)
        // Retrained weights written over the same file: same path, other content.
        var retrained = original
        let key = "head.regression_head.bbox_reg.bias"
        var bias = try #require(retrained[key]).floatTensor()
        bias.withUnsafeMutableBufferPointer { $0[0] += 0.5 }
        retrained[key] = StoredTensor(bias)
        try writeSafeTensors(retrained, to: weights)
        #expect { _ = try runSensitivity(request) } throws: { "\($0)".contains("weights_checksum") }
    }

    @Test func recipeSetsBitsPerPart() throws {
        let model = try DetectionModel(model: Self.model, weights: nil,
                                       configPath: Self.folder.appendingPathComponent("config.json").path)
        let target = QuantizationTarget.detector(model)
        var scope = target.quantizationScope(parts: Set(DetectorPart.allCases))
        let recipe = MixedPrecisionRecipe(format: MixedPrecisionRecipe.formatTag, model: Self.model, method: "arcq",
                                          granularity: "per-channel",
                                          parts: ["backbone": "8/8", "head": "4/4", "head.classification_head": "float"])
        try applyMixedPrecision(recipe, to: &scope, target: target)
        #expect(!scope.parts.isEmpty)
        for (path, part) in scope.parts {
            #expect(part != "neck" && !path.hasPrefix("head.classification_head"), "\(path)")
            #expect(scope.bits[path] == (part == "backbone" ? LayerBits(weight: 8, activation: 8)
                                                           : LayerBits(weight: 4, activation: 4)), "\(path)")
        }
        #expect(scope.parts["head.regression_head.bbox_reg"] == "head")
        let options = try QuantizationOptions(recipe: recipe)
        #expect(options.method == .arcq && options.granularity == .perChannel && options.weightBits == 8)
        var wrong = recipe
        wrong.model = "retinanet_resnet50_fpn"
        #expect { try applyMixedPrecision(wrong, to: &scope, target: target) } throws: { "\($0)".contains("made for model") }
        wrong = recipe
        wrong.parts = ["head.no_such_branch": "4/4"]
        var fresh = target.quantizationScope(parts: Set(DetectorPart.allCases))
        #expect { try applyMixedPrecision(wrong, to: &fresh, target: target) } throws: { "\($0)".contains("no_such_branch") }
    }
}

@Suite struct QuantizedBenchTests {
    /// `bench --quantized` times the quantized model in either mode, and needs the weights the
    /// file was made from.
    @Test func benchRunsAQuantizedModel() throws {
        let model = SensitivityTests.model
        let folder = SensitivityTests.folder
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("detq-bench-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        _ = try runQuantize(QuantizeRequest(
            model: model, weights: SensitivityTests.weights, config: folder.appendingPathComponent("config.json").path,
            calibrationDirectory: SensitivityTests.shapes.appendingPathComponent("calib/images").path, calibrationCount: 1,
            options: QuantizationOptions(method: .rtn, weightBits: 8, activationBits: 8), parts: Set(DetectorPart.allCases),
            mode: .simulated, output: file, report: nil, quiet: true))
        for mode in [ExecutionMode.simulated, .integer] {
            let result = try runBenchmark(model: model, weights: SensitivityTests.weights,
                                          configPath: folder.appendingPathComponent("config.json").path, size: (64, 64),
                                          runs: 1, quantized: file, mode: mode)
            #expect(result.medianMilliseconds > 0 && result.rows.contains { $0.kind.hasPrefix("conv") })
        }
        #expect(throws: (any Error).self) {
            _ = try runBenchmark(model: model, weights: nil, configPath: folder.appendingPathComponent("config.json").path,
                                 size: (64, 64), runs: 1, quantized: file)
        }
    }
}
