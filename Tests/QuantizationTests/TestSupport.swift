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
