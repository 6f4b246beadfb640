// `--batchnorm keep`: per-tensor weight ranges of the unfolded conv, run on the folded weight.
import Foundation
import Layers
import Testing
import TensorCore
@testable import Quantization

/// A conv followed by a batch norm whose factors `γ/√(σ² + eps)` span two orders of magnitude
/// and change sign, as after MobileNetV2's depthwise convs.
private func convWithNorm(_ inChannels: Int, _ outChannels: Int, groups: Int, seed: UInt64) -> (Conv2d, BatchNorm2d) {
    let conv = randomConv(inChannels, outChannels, kernel: 3, padding: 1, groups: groups, bias: false, std: 0.3, seed: seed)
    let norm = BatchNorm2d(outChannels)
    var generator = SeededGenerator(seed: seed + 1)
    let gamma = (0..<outChannels).map { c -> Float in
        let magnitude = Float(pow(10, -2 + 2 * Double(c) / Double(max(1, outChannels - 1))))
        return c % 3 == 1 ? -magnitude : magnitude
    }
    norm.weight = Tensor(shape: [outChannels], scalars: gamma)
    norm.bias = Tensor.randomNormal([outChannels], std: 0.1, generator: &generator)
    norm.runningMean = Tensor.randomNormal([outChannels], std: 0.1, generator: &generator)
    norm.runningVar = Tensor(shape: [outChannels], scalars: (0..<outChannels).map { 0.5 + Float($0 % 4) * 0.25 })
    return (conv, norm)
}

/// stem conv + BN + ReLU, depthwise conv + BN + ReLU, pointwise conv; batch norms folded.
private final class NormNetwork: Layer {
    let stem: Conv2d, stemNorm: BatchNorm2d
    let depthwise: Conv2d, depthwiseNorm: BatchNorm2d
    let pointwise: Conv2d

    init() {
        (stem, stemNorm) = convWithNorm(3, 8, groups: 1, seed: 11)
        (depthwise, depthwiseNorm) = convWithNorm(8, 8, groups: 8, seed: 21)
        pointwise = randomConv(8, 6, kernel: 1, std: 0.3, seed: 31)
    }

    var children: [(name: String, module: any Module)] {
        [("stem", stem), ("stem_norm", stemNorm), ("depthwise", depthwise), ("depthwise_norm", depthwiseNorm),
         ("pointwise", pointwise)]
    }

    var batchNormPairs: [(conv: Conv2d, norm: BatchNorm2d)] { [(stem, stemNorm), (depthwise, depthwiseNorm)] }

    func callAsFunction(_ input: Tensor) -> Tensor {
        pointwise(relu(depthwiseNorm(depthwise(relu(stemNorm(stem(input)))))))
    }

    var scope: QuantizationScope {
        QuantizationScope(parts: ["stem": "backbone", "depthwise": "backbone", "pointwise": "head"],
                          firstLayers: ["stem"], lastLayers: ["pointwise"])
    }
}

@Suite struct BatchNormModeTests {
    @Test func foldingRecordsTheNormFactors() throws {
        let (conv, norm) = convWithNorm(4, 6, groups: 2, seed: 3)
        let unfolded = conv.weight.scalars
        let expected = (0..<6).map { norm.weight.scalars[$0] / (norm.runningVar.scalars[$0] + norm.eps).squareRoot() }
        #expect(conv.foldedNormScale == nil && !conv.hasFoldedNorm)
        conv.fold(norm)
        let scale = try #require(conv.foldedNormScale)
        #expect(conv.hasFoldedNorm)
        for c in 0..<6 { #expect(abs(scale[c] - expected[c]) <= 1e-6 * abs(expected[c]), "channel \(c)") }
        let rowLength = unfolded.count / 6
        for (index, value) in conv.weight.scalars.enumerated() {
            #expect(value == unfolded[index] * scale[index / rowLength])
        }
    }

    /// Each channel's quantizer is the unfolded per-tensor quantizer times the channel's factor:
    /// dequantized folded weights equal the factor times the dequantized unfolded weights, and a
    /// negative factor mirrors the zero point (`Q − z`).
    @Test(arguments: [false, true])
    func keptNormQuantizesTheUnfoldedWeight(symmetric: Bool) throws {
        let (conv, norm) = convWithNorm(8, 8, groups: 8, seed: 5)
        let unfolded = conv.weight.scalars
        conv.fold(norm)
        let scale = try #require(conv.foldedNormScale)
        let folded = conv.weight.scalars
        let base = WeightRangeBase(weight: folded, outputs: 8, granularity: .perTensor, keptNormScales: scale)
        #expect(base.ranges.count == 1)
        let quantizers = base.quantizers(base.unitFactors, bits: 4, symmetric: symmetric)
        #expect(quantizers.count == 8)
        let reference = AffineQuantizer(bits: 4, low: unfolded.min() ?? 0, high: unfolded.max() ?? 0, symmetric: symmetric)
        let rowLength = folded.count / 8
        for (index, value) in folded.enumerated() {
            let c = index / rowLength
            let expected = scale[c] * reference.dequantized(unfolded[index])
            let tolerance = 1e-5 * abs(scale[c]) * reference.scale
            #expect(abs(quantizers[c].dequantized(value) - expected) <= tolerance, "weight \(index)")
        }
        for c in 0..<8 {
            #expect(abs(quantizers[c].scale - abs(scale[c]) * reference.scale) <= 1e-6 * quantizers[c].scale)
            if !symmetric {
                let zero = scale[c] >= 0 ? reference.zeroPoint : reference.maximumCode - reference.zeroPoint
                #expect(quantizers[c].zeroPoint == zero, "channel \(c)")
            }
        }
        // Folded per-tensor ranges are one quantizer whose step is set by the largest factor.
        let plain = WeightRangeBase(weight: folded, outputs: 8, granularity: .perTensor)
        #expect(plain.quantizers(plain.unitFactors, bits: 4, symmetric: symmetric).count == 1)
        // Per-channel ranges do not depend on folding: keep changes nothing there.
        let perChannel = WeightRangeBase(weight: folded, outputs: 8, granularity: .perChannel, keptNormScales: scale)
        let perChannelFolded = WeightRangeBase(weight: folded, outputs: 8, granularity: .perChannel)
        #expect(perChannel.quantizers(perChannel.unitFactors, bits: 4, symmetric: symmetric)
                == perChannelFolded.quantizers(perChannelFolded.unitFactors, bits: 4, symmetric: symmetric))
    }

    /// W8A8 RTN per tensor: with the norms folded, the channels of small factors get a step set by
    /// the largest one and lose their weights; kept, every channel keeps 8-bit precision. The
    /// file records the mode and one step per channel, and a recipe without the field reads as fold.
    @Test func keptNormKeepsSmallChannelsInThePipeline() throws {
        let network = NormNetwork()
        network.foldBatchNorms()
        var generator = SeededGenerator(seed: 7)
        let inputs = (0..<4).map { _ in Tensor.randomNormal([1, 3, 12, 12], std: 1, generator: &generator) }
        func run(_ mode: BatchNormMode?) throws -> QuantizationResult {
            var options = QuantizationOptions(method: .rtn, weightBits: 8, activationBits: 8)
            options.batchNorm = mode
            options.calibration.rowsPerLayer = 256
            return try quantize(network, scope: network.scope, options: options, sampleCount: inputs.count) { index in
                _ = network(inputs[index])
            }
        }
        /// `‖ŵ − w‖ / ‖w‖` of output channel 0 (factor 0.01, the smallest).
        func smallChannelError(_ result: QuantizationResult, _ conv: Conv2d, _ path: String) throws -> Double {
            let layer = try #require(result.model.layers.first { $0.path == path })
            let rowLength = conv.weight.count / conv.outChannels
            let pairs = zip(layer.dequantizedWeights.prefix(rowLength), conv.weight.scalars.prefix(rowLength))
            let error = pairs.reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }
            let energy = pairs.reduce(0.0) { $0 + Double($1.1 * $1.1) }
            return (error / energy).squareRoot()
        }
        let folded = try run(nil), kept = try run(.keep)
        for (path, conv) in [("stem", network.stem), ("depthwise", network.depthwise)] {
            let before = try smallChannelError(folded, conv, path), after = try smallChannelError(kept, conv, path)
            print("batchnorm keep, \(path): W8A8 relative weight error of the 0.01-factor channel: folded \(before), kept \(after)")
            #expect(before > 0.2 && after < 0.03, "\(path)")
            #expect(kept.model.layers.first { $0.path == path }?.weightQuantizers.count == 8)
        }
        // No norm after the pointwise conv: the same quantization either way.
        #expect(folded.model.layers.last?.weightQuantizers == kept.model.layers.last?.weightQuantizers)
        #expect(kept.model.recipe.options.batchNorm == .keep)
        #expect(kept.model.recipe.layers.first { $0.path == "depthwise" }?.weightQuantizerCount == 8)

        let encoded = try JSONEncoder().encode(folded.model.recipe.options)
        let text = try #require(String(data: encoded, encoding: .utf8))
        #expect(!text.contains("batchNorm"))
        #expect(try JSONDecoder().decode(QuantizationOptions.self, from: encoded).batchNorm == nil)
    }
}
