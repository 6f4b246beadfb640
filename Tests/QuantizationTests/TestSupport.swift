// Shared builders for the quantization tests: random layers, quantized layers, error measures.
import Foundation
import Layers
import TensorCore
@testable import Quantization

/// A conv with N(0, std²) weights and bias.
func randomConv(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                dilation: Int = 1, groups: Int = 1, bias: Bool = true, std: Float = 0.2, seed: UInt64) -> Conv2d {
    var generator = SeededGenerator(seed: seed)
    let conv = Conv2d(inChannels, outChannels, kernelSize: Size2(kernel), stride: Size2(stride), padding: Size2(padding),
                      dilation: Size2(dilation), groups: groups, bias: bias)
    conv.weight = Tensor.randomNormal(conv.weight.shape, std: std, generator: &generator)
    if bias { conv.bias = Tensor.randomNormal([outChannels], std: 0.1, generator: &generator) }
    return conv
}

/// A linear layer with N(0, std²) weights and bias.
func randomLinear(_ inputs: Int, _ outputs: Int, std: Float = 0.05, bias: Bool = true, seed: UInt64) -> Linear {
    var generator = SeededGenerator(seed: seed)
    let layer = Linear(inputs, outputs, bias: bias)
    layer.weight = Tensor.randomNormal([outputs, inputs], std: std, generator: &generator)
    if bias { layer.bias = Tensor.randomNormal([outputs], std: 0.1, generator: &generator) }
    return layer
}

/// Round-to-nearest quantization of `layer` with min/max ranges: weights per tensor or per
/// channel, activations static over `inputRange` (or dynamic).
func minMaxQuantized(_ layer: QuantizableLayer, weightBits: Int, activationBits: Int, inputRange: ValueRange,
                     perChannel: Bool = false, dynamic: Bool = false, compensate: Bool,
                     remainderMode: RemainderMode = .unclamped) -> QuantizedLayer {
    let ranges = weightRanges(layer.weight.scalars, outputs: layer.outputs, granularity: perChannel ? .perChannel : .perTensor)
    let quantizers = ranges.map { AffineQuantizer(bits: weightBits, low: $0.low, high: $0.high) }
    let activation = dynamic
        ? ActivationQuantization(bits: activationBits, mode: .dynamic, ranges: [], clip: ValueRange(low: 1, high: 1))
        : ActivationQuantization(bits: activationBits, mode: .static, ranges: [inputRange])
    return QuantizedLayer(path: "layer", layer: layer, weightQuantizers: quantizers, activation: activation,
                          compensateWeights: compensate && weightBits < 8, compensateActivations: compensate && activationBits < 8,
                          remainderMode: remainderMode)
}

/// `mean((a − b)²) / mean(b²)`.
func relativeMeanSquaredError(_ a: Tensor, reference b: Tensor) -> Double {
    var error = 0.0, energy = 0.0
    for (x, y) in zip(a.scalars, b.scalars) {
        error += Double(x - y) * Double(x - y)
        energy += Double(y) * Double(y)
    }
    return error / energy
}

/// The largest absolute value.
func maximumMagnitude(_ tensor: Tensor) -> Float {
    tensor.scalars.reduce(0) { max($0, abs($1)) }
}

/// The largest elementwise difference.
func maximumDifference(_ a: Tensor, _ b: Tensor) -> Float {
    precondition(a.shape == b.shape, "maximumDifference: \(a.shape) vs \(b.shape)")
    return zip(a.scalars, b.scalars).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

/// A small network with every layer kind quantization handles: a stem conv, a depthwise and a
/// grouped conv, a shared conv called on two "levels" per forward, and a linear head.
final class ToyNetwork: Layer {
    let stem: Conv2d
    let depthwise: Conv2d
    let grouped: Conv2d
    let shared: Conv2d
    let head: Linear

    init(width: Int = 8, seed: UInt64 = 1) {
        stem = randomConv(3, width, kernel: 3, stride: 2, padding: 1, std: 0.3, seed: seed)
        depthwise = randomConv(width, width, kernel: 3, padding: 1, groups: width, std: 0.3, seed: seed + 1)
        grouped = randomConv(width, width, kernel: 3, padding: 1, groups: 2, std: 0.2, seed: seed + 2)
        shared = randomConv(width, width, kernel: 3, padding: 1, std: 0.15, seed: seed + 3)
        head = randomLinear(2 * width, 5, std: 0.3, seed: seed + 4)
    }

    var children: [(name: String, module: any Module)] {
        [("stem", stem), ("depthwise", depthwise), ("grouped", grouped), ("shared", shared), ("head", head)]
    }

    func callAsFunction(_ input: Tensor) -> Tensor {
        let x = grouped(relu(depthwise(relu(stem(input)))))
        let level0 = shared(x)
        let level1 = shared(maxPool2d(x, kernelSize: 2, stride: 2))
        let pooled0 = adaptiveAvgPool2d(level0, outputSize: 1)
        let pooled1 = adaptiveAvgPool2d(level1, outputSize: 1)
        let features = concat([pooled0, pooled1], axis: 1).reshaped([input.shape[0], -1])
        return head(features)
    }

    /// Every layer in scope, as the backbone; the stem is the first layer, the head the last.
    var scope: QuantizationScope {
        QuantizationScope(parts: ["stem": "backbone", "depthwise": "backbone", "grouped": "backbone", "shared": "head",
                                  "head": "head"],
                          firstLayers: ["stem"], lastLayers: ["head"])
    }
}

/// Seeded calibration inputs `[1, 3, 16, 16]`.
func toyInputs(_ count: Int, seed: UInt64 = 100) -> [Tensor] {
    var generator = SeededGenerator(seed: seed)
    return (0..<count).map { _ in Tensor.randomNormal([1, 3, 16, 16], mean: 0.2, std: 1, generator: &generator) }
}

/// Quantizes a toy network on `inputs`, with small search settings for speed.
func quantizeToy(_ network: ToyNetwork, inputs: [Tensor], configure: (inout QuantizationOptions) -> Void) throws -> QuantizationResult {
    var options = QuantizationOptions(method: .arcq, weightBits: 4, activationBits: 4)
    options.calibration.rowsPerLayer = 256
    options.calibration.searchRows = 128
    options.clipSearch.gridSize = 6
    options.adaround.iterations = 40
    options.adaround.batchRows = 64
    configure(&options)
    return try quantize(network, scope: network.scope, options: options, sampleCount: inputs.count) { index in
        _ = network(inputs[index])
    }
}
