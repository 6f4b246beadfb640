// The quantized safetensors file: exact round trip and clear errors for a file made for another model.
import Checkpoints
import Foundation
import Layers
import Testing
import TensorCore
@testable import Quantization

@Suite struct FileTests {
    private func quantizedToy(_ network: ToyNetwork, configure: (inout QuantizationOptions) -> Void = { _ in }) throws -> QuantizedModel {
        var result = try quantizeToy(network, inputs: toyInputs(3)) { options in
            options.compensation = .topK(2)
            options.granularity = .perChannel
            options.perLevelActivationRanges = true
            configure(&options)
        }
        result.model.recipe.model = "toy"
        result.model.recipe.calibrationImages = ["a.jpg", "b.jpg", "c.jpg"]
        return result.model
    }

    private func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("detq-quant-\(ProcessInfo.processInfo.processIdentifier)-\(name)").path
    }

    @Test(arguments: [ActivationRangeMode.static, .dynamic])
    func reloadGivesExactlyTheInMemoryModel(ranges: ActivationRangeMode) throws {
        let network = ToyNetwork()
        let quantized = try quantizedToy(network) { $0.activationRanges = ranges }
        let path = temporaryPath("roundtrip-\(ranges.rawValue).safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try quantized.write(to: path, floatParametersOf: network)

        let rebuilt = ToyNetwork()
        let loaded = try QuantizedModel.load(from: path, model: rebuilt, modelName: "toy")
        #expect(loaded == quantized)
        #expect(loaded.recipe.calibrationImages == ["a.jpg", "b.jpg", "c.jpg"])
        #expect(loaded.layers.contains { $0.weightRemainders != nil })
        for mode in ExecutionMode.allCases {
            try quantized.install(on: network, mode: mode)
            try loaded.install(on: rebuilt, mode: mode)
            for input in toyInputs(2, seed: 9) {
                #expect(network(input) == rebuilt(input), "\(mode)")
            }
        }
    }

    @Test func storesSignedCodesAndMetadata() throws {
        let network = ToyNetwork()
        let quantized = try quantizedToy(network)
        let dict = try quantized.stateDict(floatParametersOf: network)
        #expect(dict.metadata["format"] == "detq-quantized/1")
        #expect(dict.metadata["model"] == "toy")
        let recipe = try #require(dict.metadata["recipe"])
        #expect(recipe.contains("\"method\":\"arcq\"") && recipe.contains("\"compensated_layers\""))
        let codes = try #require(dict["grouped.weight_q"])
        #expect(codes.dtype == .int8 && codes.shape == [8, 4, 3, 3])
        #expect(try #require(dict["grouped.weight_scale"]).shape == [8])
        #expect(try #require(dict["shared.input_range"]).shape == [2, 2])
        // Float parameters stay under their state-dict keys; quantized weights do not.
        #expect(dict["stem.weight"] == nil && dict["stem.weight_q"] != nil && dict["stem.bias"] != nil)
        let compensated = quantized.layers.filter { $0.weightRemainders != nil }
        for layer in compensated {
            let remainders = try #require(dict[layer.path + ".weight_remainder"]).int8Values()
            #expect(remainders.allSatisfy { abs(Int($0)) <= 1 << (layer.weightBits - 1) })
        }
    }

    @Test func refusesAFileMadeForAnotherModel() throws {
        let network = ToyNetwork()
        let quantized = try quantizedToy(network)
        let dict = try quantized.stateDict(floatParametersOf: network)
        func message(_ body: () throws -> Void) -> String {
            do {
                try body()
                return ""
            } catch {
                return "\(error)"
            }
        }
        let otherName = message { _ = try QuantizedModel.load(from: dict, source: "q.safetensors", model: ToyNetwork(), modelName: "mobilenet_v2") }
        #expect(otherName.contains("made for model 'toy', not 'mobilenet_v2'"), "\(otherName)")
        let wider = message { _ = try QuantizedModel.load(from: dict, source: "q.safetensors", model: ToyNetwork(width: 16), modelName: "toy") }
        #expect(wider.contains("q.safetensors") && wider.contains("stem") && wider.contains("[16, 3, 3, 3]"), "\(wider)")
        let otherWeights = message { _ = try QuantizedModel.load(from: dict, source: "q.safetensors", model: ToyNetwork(seed: 50), modelName: "toy") }
        #expect(otherWeights.contains("differs"), "\(otherWeights)")
        var noFormat = dict
        noFormat.metadata["format"] = nil
        let plain = message { _ = try QuantizedModel.load(from: noFormat, source: "w.safetensors", model: ToyNetwork(), modelName: "toy") }
        #expect(plain.contains("not a detq quantized file"), "\(plain)")
        var missing = dict
        missing["shared.weight_scale"] = nil
        let incomplete = message { _ = try QuantizedModel.load(from: missing, source: "q.safetensors", model: ToyNetwork(), modelName: "toy") }
        #expect(incomplete.contains("shared.weight_scale"), "\(incomplete)")
    }
}
