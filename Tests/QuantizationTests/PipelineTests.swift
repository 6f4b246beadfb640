// The whole quantize() pipeline on a toy network: methods, bits, selection, modes, per-level ranges.
import Foundation
import Layers
import Testing
import TensorCore
@testable import Quantization

@Suite struct PipelineTests {
    @Test func selectionCountsFollowThePolicy() throws {
        let candidates = (1...10).map { (index: $0, score: Double($0 * 7 % 11)) }
        let all = Set(1...12)
        #expect(try selectLayers(candidates, policy: .all, allIndices: all).count == 10)
        #expect(try selectLayers(candidates, policy: .none, allIndices: all).isEmpty)
        // τ = sorted[floor(10·0.1)] = the second lowest score: 9 layers.
        #expect(try selectLayers(candidates, policy: .top(0.9), allIndices: all).count == 9)
        #expect(try selectLayers(candidates, policy: .top(0.5), allIndices: all).count == 5)
        #expect(try selectLayers(candidates, policy: .top(1), allIndices: all).count == 10)
        #expect(try selectLayers(candidates, policy: .top(0), allIndices: all).isEmpty)
        let top3 = try selectLayers(candidates, policy: .topK(3), allIndices: all)
        #expect(top3 == Set(candidates.sorted { $0.score > $1.score }.prefix(3).map(\.index)))
        #expect(try selectLayers(candidates, policy: .topK(30), allIndices: all).count == 10)
        #expect(try selectLayers(candidates, policy: .layers([2, 5]), allIndices: all) == [2, 5])
        #expect(throws: QuantizationError.self) { try selectLayers(candidates, policy: .layers([11]), allIndices: all) }
        #expect(throws: QuantizationError.self) { try selectLayers(candidates, policy: .layers([13]), allIndices: all) }
    }

    @Test func parsesPolicies() throws {
        #expect(try CompensationPolicy(parsing: "all") == .all)
        #expect(try CompensationPolicy(parsing: "top:0.9") == .top(0.9))
        #expect(try CompensationPolicy(parsing: "topk:4") == .topK(4))
        #expect(try CompensationPolicy(parsing: "layers:3,7") == .layers([3, 7]))
        for bad in ["top:2", "topk:-1", "layers:", "layers:0", "some", "top:x"] {
            #expect(throws: QuantizationError.self, "\(bad)") { try CompensationPolicy(parsing: bad) }
        }
    }

    @Test func arcqQuantizesEveryLayerInExecutionOrder() throws {
        let network = ToyNetwork()
        let inputs = toyInputs(4)
        let result = try quantizeToy(network, inputs: inputs) { $0.compensation = .all }
        let paths = result.model.layers.map(\.path)
        #expect(paths == ["stem", "depthwise", "grouped", "shared", "head"])
        #expect(result.model.layers.map(\.executionIndex) == [1, 2, 3, 4, 5])
        let bits = result.model.layers.map { "W\($0.weightBits)A\($0.activation.bits)" }
        // First conv 8-bit, linear 8-bit, the rest W4A4.
        #expect(bits == ["W8A8", "W4A4", "W4A4", "W4A4", "W8A8"])
        #expect(result.model.recipe.compensatedLayers == ["depthwise", "grouped", "shared"])
        let shared = try #require(result.report.layers.first { $0.path == "shared" })
        #expect(shared.compensated && shared.extraMultiplyAccumulates == 2 * shared.multiplyAccumulates && shared.extraBits == shared.parameters * 5)
        #expect((shared.errorCompensated ?? .infinity) < shared.errorUncompensated)
        #expect(result.report.layers.allSatisfy { $0.multiplyAccumulates > 0 })
        // The model itself is untouched: float, no executors.
        #expect(network.shared.executor == nil)
    }

    @Test(arguments: [("all", 3), ("none", 0), ("top:0.9", 3), ("topk:2", 2), ("layers:3", 1), ("top:0.34", 2), ("top:0.3", 1)])
    func pipelineSelectionCount(policy: String, expected: Int) throws {
        let network = ToyNetwork()
        let result = try quantizeToy(network, inputs: toyInputs(3)) { $0.compensation = try! CompensationPolicy(parsing: policy) }
        #expect(result.model.layers.filter(\.isCompensated).count == expected, "\(policy)")
        #expect(result.report.totals.compensatedLayers == expected)
        if policy == "layers:3" { #expect(result.model.recipe.compensatedLayers == ["grouped"]) }
    }

    @Test func rejectsBadRequestsBeforeCalibrating() throws {
        let network = ToyNetwork()
        var ran = false
        func attempt(_ scope: QuantizationScope, _ configure: (inout QuantizationOptions) -> Void) -> Bool {
            var options = QuantizationOptions(method: .rtn, weightBits: 4, activationBits: 4)
            configure(&options)
            do {
                _ = try quantize(network, scope: scope, options: options, sampleCount: 1) { _ in ran = true }
                return false
            } catch is QuantizationError {
                return true
            } catch {
                return false
            }
        }
        #expect(attempt(network.scope) { $0.weightBits = 9 })
        #expect(attempt(network.scope) { $0.activationBits = 1 })
        #expect(attempt(QuantizationScope(parts: ["stem.nothing": "backbone"])) { _ in })
        #expect(attempt(QuantizationScope(parts: [:])) { _ in })
        #expect(attempt(network.scope) { $0.compensation = .layers([9]) })
        #expect(attempt(network.scope) { $0.method = .percentile; $0.activationRanges = .dynamic })
        #expect(!ran)
    }

    @Test(arguments: QuantizationMethod.allCases)
    func everyMethodRunsAndStaysClose(method: QuantizationMethod) throws {
        let network = ToyNetwork()
        let inputs = toyInputs(4)
        let reference = inputs.map { network($0) }
        let result = try quantizeToy(network, inputs: inputs) { options in
            options.method = method
            options.weightBits = 8
            options.activationBits = 8
            options.granularity = method == .mse ? .perChannel : .perTensor
        }
        #expect(result.model.layers.count == 5)
        #expect(result.model.layers.allSatisfy { !$0.isCompensated })
        try result.model.install(on: network, mode: .simulated)
        defer { QuantizedModel.uninstall(from: network) }
        for (input, expected) in zip(inputs, reference) {
            let output = network(input)
            // W8A8 on a random toy network with heavy-tailed activations; W4A4 RTN is at ~0.35.
            #expect(relativeMeanSquaredError(output, reference: expected) < 3e-2, "\(method)")
        }
    }

    @Test func biasCorrectionRemovesTheMeanShift() throws {
        let network = ToyNetwork()
        let inputs = toyInputs(4)
        let plain = try quantizeToy(network, inputs: inputs) { $0.method = .rtn }
        let corrected = try quantizeToy(network, inputs: inputs) { $0.method = .biasCorrection }
        var shiftedError = 0.0, roundedError = 0.0
        for (before, after) in zip(plain.report.layers, corrected.report.layers) where before.kind != .linear {
            // The report's "before" is plain rounding; "after" includes the bias shift.
            #expect(abs(after.errorUncompensated - before.errorFinal) <= 1e-9 * max(1, before.errorFinal), "\(before.path)")
            #expect(after.errorFinal <= before.errorFinal * 1.05, "\(before.path)")
            shiftedError += after.errorFinal
            roundedError += before.errorFinal
        }
        #expect(shiftedError < roundedError)
        let changed = zip(plain.model.layers, corrected.model.layers).contains { $0.bias != $1.bias }
        #expect(changed)
    }

    @Test func adaRoundLowersTheLayerError() throws {
        let network = ToyNetwork()
        let inputs = toyInputs(4)
        let plain = try quantizeToy(network, inputs: inputs) { $0.method = .rtn }
        let learned = try quantizeToy(network, inputs: inputs) {
            $0.method = .adaround
            $0.adaround.iterations = 300
        }
        let before = plain.report.layers.filter { $0.weightBits == 4 }.map(\.errorFinal).reduce(0, +)
        let after = learned.report.layers.filter { $0.weightBits == 4 }.map(\.errorFinal).reduce(0, +)
        print("adaround toy: RTN layer error \(before), AdaRound \(after)")
        #expect(after < before)
    }

    @Test func arcqBeatsRoundToNearestAtFourBits() throws {
        let network = ToyNetwork()
        let inputs = toyInputs(6)
        let reference = inputs.map { network($0) }
        func error(_ configure: (inout QuantizationOptions) -> Void) throws -> Double {
            let result = try quantizeToy(network, inputs: inputs, configure: configure)
            try result.model.install(on: network, mode: .integer)
            defer { QuantizedModel.uninstall(from: network) }
            return zip(inputs, reference).map { relativeMeanSquaredError(network($0), reference: $1) }.reduce(0, +)
        }
        let rtn = try error { $0.method = .rtn }
        let arcq = try error { $0.compensation = .all }
        print("toy network output error W4A4: RTN \(rtn), ARCQ \(arcq)")
        #expect(arcq < rtn)
    }

    /// Integer and simulated execution of the whole network agree.
    @Test(arguments: [ActivationRangeMode.static, .dynamic])
    func integerModeMatchesSimulation(ranges: ActivationRangeMode) throws {
        let network = ToyNetwork()
        let inputs = toyInputs(3)
        let result = try quantizeToy(network, inputs: inputs) {
            $0.compensation = .all
            $0.activationRanges = ranges
            $0.perLevelActivationRanges = true
            $0.granularity = .perChannel
        }
        try result.model.install(on: network, mode: .simulated)
        let simulated = inputs.map { network($0) }
        try result.model.install(on: network, mode: .integer)
        let integer = inputs.map { network($0) }
        QuantizedModel.uninstall(from: network)
        for (a, b) in zip(simulated, integer) {
            #expect(maximumDifference(a, b) <= 1e-4 * max(1, maximumMagnitude(b)))
        }
    }

    @Test func sharedLayerGetsOneRangePerLevel() throws {
        let network = ToyNetwork()
        let result = try quantizeToy(network, inputs: toyInputs(3)) { $0.perLevelActivationRanges = true }
        let shared = try #require(result.model.layers.first { $0.path == "shared" })
        #expect(shared.activation.ranges.count == 2)
        #expect(shared.activation.ranges[0] != shared.activation.ranges[1])
        let stem = try #require(result.model.layers.first { $0.path == "stem" })
        #expect(stem.activation.ranges.count == 1)
    }

    /// A trimmed mean (arcq.md §6) drops the calibration images at each end of the per-image
    /// ranges: one image 40× larger than the others widens the plain mean's range, not the trimmed one's.
    @Test func trimmedMeanDropsOutlyingImages() throws {
        #expect(trimmedMean([1, 2, 3, 100], trim: 0.25) == 2.5)
        #expect(trimmedMean([1, 2, 3, 100], trim: 0) == 26.5)
        #expect(trimmedMean([5], trim: 0.4) == 5)
        var inputs = toyInputs(5)
        inputs[2].scalars = inputs[2].scalars.map { $0 * 40 }
        func stemRange(trim: Double) throws -> ValueRange {
            let result = try quantizeToy(ToyNetwork(), inputs: inputs) {
                $0.method = .rtn
                $0.calibration.trimFraction = trim
            }
            return try #require(result.model.layers.first { $0.path == "stem" }?.activation.ranges.first)
        }
        let plain = try stemRange(trim: 0), trimmed = try stemRange(trim: 0.2)
        let clean = try quantizeToy(ToyNetwork(), inputs: toyInputs(5)) { $0.method = .rtn }
        let cleanRange = try #require(clean.model.layers.first { $0.path == "stem" }?.activation.ranges.first)
        #expect(plain.high > 4 * cleanRange.high)
        #expect(trimmed.high < 2 * cleanRange.high)
        #expect(trimmed.low > 2 * cleanRange.low)
    }

    /// The report's input range spread is the smallest, median and largest of the images' own
    /// input minima and maxima (the stem sees the images themselves).
    @Test func reportGivesTheSpreadOfThePerImageRanges() throws {
        let inputs = toyInputs(5)
        let result = try quantizeToy(ToyNetwork(), inputs: inputs) { $0.method = .rtn }
        let spread = try #require(result.report.layers.first { $0.path == "stem" }?.inputRangeSpread)
        let highs = inputs.map { $0.scalars.max() ?? 0 }.sorted(), lows = inputs.map { $0.scalars.min() ?? 0 }.sorted()
        #expect(spread.high == [highs[0], highs[2], highs[4]])
        #expect(spread.low == [lows[0], lows[2], lows[4]])
        let shared = try #require(result.report.layers.first { $0.path == "shared" }?.inputRangeSpread)
        #expect(shared.high[0] <= shared.high[1] && shared.high[1] <= shared.high[2])
        #expect(QuantizationReport.InputRangeSpread(sampleRanges: [[], []]) == nil)
        let even = try #require(QuantizationReport.InputRangeSpread(sampleRanges: [
            [ValueRange(low: -1, high: 2), ValueRange(low: -3, high: 1)], [ValueRange(low: 0, high: 4)]]))
        #expect(even.high == [2, 3, 4])
        #expect(even.low == [-3, -1.5, 0])
    }

    /// Calibration keeps the same reservoir for the same seed, and another for another seed.
    @Test func calibrationIsSeeded() throws {
        let network = ToyNetwork()
        let inputs = toyInputs(3)
        func patches(seed: UInt64) throws -> [Float] {
            var options = CalibrationOptions(seed: seed, rowsPerLayer: 32)
            options.searchRows = 32
            let layers = try resolveLayers(network, scope: network.scope)
            let calibrations = try calibrate(layers: layers, sampleCount: inputs.count, options: options) { _ = network(inputs[$0]) }
            return calibrations[3].patches.patches
        }
        #expect(try patches(seed: 1) == patches(seed: 1))
        #expect(try patches(seed: 1) != patches(seed: 2))
    }
}

@Suite struct CalibrationTests {
    /// Every sampled patch row times the float weight gives the recorded float output: the
    /// patches are the layer's true inputs (padding, stride, dilation and groups included).
    @Test func patchesReproduceFloatOutputs() throws {
        let network = ToyNetwork()
        let inputs = toyInputs(3)
        let layers = try resolveLayers(network, scope: network.scope)
        let calibrations = try calibrate(layers: layers, sampleCount: inputs.count,
                                         options: CalibrationOptions(seed: 4, rowsPerLayer: 64)) { _ = network(inputs[$0]) }
        #expect(calibrations.map(\.path) == ["stem", "depthwise", "grouped", "shared", "head"])
        #expect(calibrations.map(\.callsPerSample) == [1, 1, 1, 2, 1])
        for calibration in calibrations {
            let layer = try #require(layers.first { $0.path == calibration.path }?.layer)
            let simulator = PatchSimulator(sample: calibration.patches, layer: layer)
            let output = simulator.groupedProduct(calibration.patches.patches, layer.weight.scalars)
            let scale = calibration.patches.targets.reduce(Float(0)) { max($0, abs($1)) }
            let difference = zip(output, calibration.patches.targets).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
            #expect(difference <= 1e-5 * max(scale, 1), "\(calibration.path)")
            #expect(calibration.patches.rows == min(64, Int(calibration.outputPositionsPerSample * 3)), "\(calibration.path)")
        }
    }
}
