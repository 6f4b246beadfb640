import Checkpoints
import Testing
import TensorCore
@testable import Layers

/// A conv → BN → ReLU block named as torchvision's Conv2dNormActivation.
private func block() -> Sequential {
    Sequential([Conv2d(3, 4, kernelSize: 3, padding: 1, bias: false), BatchNorm2d(4), Activation(.relu)])
}

private func stateDict(for module: any Module, seed: UInt64) -> StateDict {
    var generator = SeededGenerator(seed: seed)
    var dict = StateDict(metadata: [:])
    for (key, tensor) in module.namedParameters() {
        var values = Tensor.randomNormal(tensor.shape, std: 0.5, generator: &generator)
        if key.hasSuffix("running_var") { values = Tensor(shape: values.shape, scalars: values.scalars.map { 0.5 + abs($0) }) }
        dict[key] = StoredTensor(values)
    }
    return dict
}

@Suite struct LoadingTests {
    @Test func loadsEveryKeyByPath() throws {
        let model = Sequential([block(), block()])
        // The second block takes 4 channels: rebuild with the right widths.
        let net = Sequential([block(), Sequential([Conv2d(4, 2, kernelSize: 1), BatchNorm2d(2)])])
        let dict = stateDict(for: net, seed: 1)
        try net.load(from: ParameterLoader(dict, source: "test.safetensors"))
        let conv = try #require(net.layers[1] as? Sequential)
        let loaded = try #require(conv.layers[0] as? Conv2d)
        #expect(loaded.weight == (try dict["1.0.weight"]!.floatTensor()))
        #expect(model.namedParameters().map(\.key).contains("1.1.running_var"))
    }

    @Test func reportsMissingUnusedAndMisshapedKeysTogether() {
        let net = block()
        var dict = stateDict(for: net, seed: 2)
        dict["0.weight"] = StoredTensor(Tensor(zeros: [4, 3, 1, 1]))
        dict["1.bias"] = nil
        dict["2.weight"] = StoredTensor(Tensor(zeros: [1]))
        dict["1.num_batches_tracked"] = StoredTensor.int64([7], shape: [])
        #expect {
            try net.load(from: ParameterLoader(dict, source: "bad.pth"))
        } throws: { error in
            let text = "\(error)"
            return text.contains("bad.pth") && text.contains("missing keys: 1.bias")
                && text.contains("unused keys: 2.weight")
                && text.contains("0.weight expects [4, 3, 3, 3] but the file has [4, 3, 1, 1]")
                && !text.contains("num_batches_tracked")
        }
    }

    @Test func foldedBatchNormGivesTheSameOutput() throws {
        let net = block()
        try net.load(from: ParameterLoader(stateDict(for: net, seed: 3), source: "t"))
        var generator = SeededGenerator(seed: 4)
        let input = Tensor.randomNormal([2, 3, 7, 5], generator: &generator)
        let reference = net(input)
        net.foldBatchNorms()
        let folded = net(input)
        let worst = zip(reference.scalars, folded.scalars).map { abs($0 - $1) }.max() ?? 0
        #expect(worst < 1e-4)
        #expect((net.layers[1] as? BatchNorm2d)?.isFolded == true)
        #expect((net.layers[0] as? Conv2d)?.bias != nil)
    }

    @Test func groupNormMatchesTheDefinition() {
        var generator = SeededGenerator(seed: 5)
        let norm = GroupNorm(groups: 3, channels: 6, eps: 1e-5)
        norm.weight = Tensor.randomNormal([6], generator: &generator)
        norm.bias = Tensor.randomNormal([6], generator: &generator)
        let x = Tensor.randomNormal([2, 6, 3, 4], mean: 2, std: 3, generator: &generator)
        let y = norm(x)
        // Naive twin: per (sample, group) mean and biased variance over 2 channels × 12 pixels.
        for n in 0..<2 {
            for g in 0..<3 {
                var values: [Double] = []
                for c in (2 * g)..<(2 * g + 2) { for h in 0..<3 { for w in 0..<4 { values.append(Double(x[n, c, h, w])) } } }
                let mean = values.reduce(0, +) / Double(values.count)
                let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
                for c in (2 * g)..<(2 * g + 2) {
                    for h in 0..<3 {
                        for w in 0..<4 {
                            let expected = (Double(x[n, c, h, w]) - mean) / (variance + 1e-5).squareRoot()
                                * Double(norm.weight[c]) + Double(norm.bias[c])
                            #expect(abs(Double(y[n, c, h, w]) - expected) < 1e-4)
                        }
                    }
                }
            }
        }
    }
}
