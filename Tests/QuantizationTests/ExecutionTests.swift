// Integer execution against simulation and against a loop-by-loop twin, on every layer shape.
import Foundation
import Layers
import Testing
import TensorCore
@testable import Quantization

/// The quantized output by definition, with Double loops (Naive.conv2d accumulates in Double):
/// `s_a·s_w·(X_c ⊛ W_c + roundDivHalfEven(Q_a·(X_c ⊛ D_w) + Q_w·(D_a ⊛ W_c), Q_a·Q_w)) + bias`.
private func twinOutput(_ conv: Conv2d, _ quantized: QuantizedLayer, input: Tensor) -> Tensor {
    let quantizer = quantized.activation.quantizer(call: 0, inputRange: valueRange(input))
    var centred = input, remainders = input
    for index in input.scalars.indices {
        let (c, d) = quantizer.centredAndRemainder(input.scalars[index], mode: quantized.remainderMode)
        centred.scalars[index] = c
        remainders.scalars[index] = quantized.compensatesActivations ? d : 0
    }
    func run(_ x: Tensor, _ codes: [Int32]) -> Tensor {
        Naive.conv2d(x, weight: Tensor(shape: conv.weight.shape, scalars: codes.map(Float.init)), bias: nil,
                     stride: conv.stride, padding: conv.padding, dilation: conv.dilation, groups: conv.groups)
    }
    let accumulator = run(centred, quantized.weightCodes)
    let zeros = [Int32](repeating: 0, count: quantized.weightCodes.count)
    let weightTerm = run(centred, quantized.weightRemainders ?? zeros)
    let activationTerm = run(remainders, quantized.weightCodes)
    let qa = Int64(quantizer.maximumCode), qw = Int64(quantized.weightQuantizers[0].maximumCode)
    let plane = accumulator.shape[2] * accumulator.shape[3]
    var output = accumulator
    for index in output.scalars.indices {
        let o = (index / plane) % quantized.outputs
        var total = Int64(accumulator.scalars[index])
        if quantized.isCompensated {
            total += roundDivHalfEven(qa * Int64(weightTerm.scalars[index]) + qw * Int64(activationTerm.scalars[index]), qa * qw)
        }
        output.scalars[index] = Float(Double(quantizer.scale) * Double(quantized.weightQuantizer(o).scale) * Double(total))
            + (quantized.bias?[o] ?? 0)
    }
    return output
}

private struct ConvCase: CustomStringConvertible {
    var inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int, dilation: Int, groups: Int
    var description: String {
        "\(inChannels)→\(outChannels) k\(kernel) s\(stride) p\(padding) d\(dilation) g\(groups)"
    }
}

private let convCases = [
    ConvCase(inChannels: 3, outChannels: 8, kernel: 3, stride: 2, padding: 1, dilation: 1, groups: 1),
    ConvCase(inChannels: 6, outChannels: 4, kernel: 3, stride: 1, padding: 2, dilation: 2, groups: 1),
    ConvCase(inChannels: 5, outChannels: 7, kernel: 1, stride: 1, padding: 0, dilation: 1, groups: 1),
    ConvCase(inChannels: 4, outChannels: 6, kernel: 5, stride: 3, padding: 2, dilation: 1, groups: 1),
    ConvCase(inChannels: 8, outChannels: 8, kernel: 3, stride: 2, padding: 1, dilation: 1, groups: 8),
    ConvCase(inChannels: 4, outChannels: 8, kernel: 3, stride: 1, padding: 1, dilation: 1, groups: 4),
    ConvCase(inChannels: 8, outChannels: 6, kernel: 3, stride: 1, padding: 1, dilation: 1, groups: 2),
    // One input channel per group (the direct depthwise path): dilated with wide padding, a
    // channel multiplier with a kernel larger than the padding, one input channel without groups.
    ConvCase(inChannels: 6, outChannels: 6, kernel: 3, stride: 1, padding: 3, dilation: 2, groups: 6),
    ConvCase(inChannels: 3, outChannels: 6, kernel: 5, stride: 2, padding: 1, dilation: 1, groups: 3),
    ConvCase(inChannels: 1, outChannels: 5, kernel: 3, stride: 3, padding: 2, dilation: 1, groups: 1),
]

@Suite struct ExecutionTests {
    @Test(arguments: convCases)
    fileprivate func integerEqualsTwinAndSimulationOnConvs(_ shape: ConvCase) {
        let conv = randomConv(shape.inChannels, shape.outChannels, kernel: shape.kernel, stride: shape.stride,
                              padding: shape.padding, dilation: shape.dilation, groups: shape.groups, seed: 5)
        var generator = SeededGenerator(seed: 6)
        let input = Tensor.randomNormal([2, shape.inChannels, 11, 9], mean: 0.3, std: 1, generator: &generator)
        let range = ValueRange(low: -1.5, high: 2.5)
        let settings: [(w: Int, a: Int, perChannel: Bool, dynamic: Bool, compensate: Bool, mode: RemainderMode)] = [
            (4, 4, false, false, true, .unclamped), (4, 4, true, false, true, .clamped), (3, 5, true, true, true, .unclamped),
            (8, 8, false, false, false, .unclamped), (4, 8, true, false, true, .unclamped), (2, 2, false, true, true, .clamped),
        ]
        for setting in settings {
            let quantized = minMaxQuantized(.conv(conv), weightBits: setting.w, activationBits: setting.a, inputRange: range,
                                            perChannel: setting.perChannel, dynamic: setting.dynamic,
                                            compensate: setting.compensate, remainderMode: setting.mode)
            conv.executor = QuantizedExecutor(layer: quantized, mode: .integer)
            let integer = conv(input)
            conv.executor = QuantizedExecutor(layer: quantized, mode: .simulated)
            let simulated = conv(input)
            conv.executor = nil
            let twin = twinOutput(conv, quantized, input: input)
            let scale = max(maximumMagnitude(twin), 1)
            let label = "\(shape) W\(setting.w)A\(setting.a) \(setting)"
            #expect(maximumDifference(integer, twin) <= 1e-6 * scale, "\(label)")
            #expect(maximumDifference(simulated, integer) <= 2e-5 * scale, "\(label)")
            #expect(quantized.isCompensated == setting.compensate)
        }
    }

    @Test func integerEqualsSimulationOnLinear() {
        let layer = randomLinear(40, 7, std: 0.2, seed: 8)
        var generator = SeededGenerator(seed: 9)
        let input = Tensor.randomNormal([13, 40], generator: &generator)
        for (bits, compensate) in [(4, true), (8, false), (5, true)] {
            let quantized = minMaxQuantized(.linear(layer), weightBits: bits, activationBits: bits,
                                            inputRange: valueRange(input), perChannel: bits == 5, compensate: compensate)
            layer.executor = QuantizedExecutor(layer: quantized, mode: .integer)
            let integer = layer(input)
            layer.executor = QuantizedExecutor(layer: quantized, mode: .simulated)
            let simulated = layer(input)
            layer.executor = nil
            // The twin: a linear layer is a 1×1 conv over [N, in, 1, 1].
            let conv = Conv2d(40, 7, kernelSize: 1)
            let twin = twinOutput(conv, quantized, input: input.reshaped([13, 40, 1, 1])).reshaped([13, 7])
            let scale = max(maximumMagnitude(twin), 1)
            #expect(maximumDifference(integer, twin) <= 1e-6 * scale, "W\(bits)")
            #expect(maximumDifference(simulated, integer) <= 2e-5 * scale, "W\(bits)")
        }
    }

    /// A constant-zero input gives exactly zero before bias: padding and zero inputs are the
    /// centred integer 0 and carry no remainder.
    @Test func zeroInputGivesZeroOutput() {
        for groups in [1, 4] {
            let conv = randomConv(4, 8, kernel: 3, padding: 2, dilation: 2, groups: groups, bias: false, seed: 12)
            for mode in ExecutionMode.allCases {
                for range in [ValueRange(low: -0.7, high: 1.9), ValueRange(low: 0.2, high: 3)] {
                    let quantized = minMaxQuantized(.conv(conv), weightBits: 4, activationBits: 4, inputRange: range,
                                                    compensate: true)
                    conv.executor = QuantizedExecutor(layer: quantized, mode: mode)
                    let output = conv(Tensor(zeros: [1, 4, 6, 5]))
                    conv.executor = nil
                    #expect(output.scalars.allSatisfy { $0 == 0 }, "\(mode) groups \(groups)")
                }
            }
        }
    }

    /// Padding is exact in the centred domain: a padded conv equals the unpadded conv on the
    /// input padded with zeros by hand.
    @Test func paddingEqualsExplicitZeros() {
        let padded = randomConv(3, 5, kernel: 3, padding: 1, seed: 14)
        let unpadded = Conv2d(3, 5, kernelSize: 3)
        unpadded.weight = padded.weight
        unpadded.bias = padded.bias
        var generator = SeededGenerator(seed: 15)
        let input = Tensor.randomNormal([1, 3, 6, 7], mean: 0.5, generator: &generator)
        var manual = Tensor(zeros: [1, 3, 8, 9])
        for c in 0..<3 { for y in 0..<6 { for x in 0..<7 { manual[0, c, y + 1, x + 1] = input[0, c, y, x] } } }
        for mode in ExecutionMode.allCases {
            let quantized = minMaxQuantized(.conv(padded), weightBits: 4, activationBits: 4,
                                            inputRange: ValueRange(low: -1, high: 2), compensate: true)
            padded.executor = QuantizedExecutor(layer: quantized, mode: mode)
            unpadded.executor = QuantizedExecutor(layer: quantized, mode: mode)
            #expect(padded(input) == unpadded(manual), "\(mode)")
            padded.executor = nil
            unpadded.executor = nil
        }
    }

    /// Static per-call ranges: call k uses range k mod count.
    @Test func callsCycleThroughLevelRanges() {
        let conv = randomConv(2, 3, kernel: 1, seed: 16)
        var generator = SeededGenerator(seed: 17)
        let input = Tensor.randomNormal([1, 2, 4, 4], generator: &generator)
        let ranges = [ValueRange(low: -4, high: 4), ValueRange(low: -0.5, high: 0.5)]
        let base = minMaxQuantized(.conv(conv), weightBits: 4, activationBits: 4, inputRange: ranges[0], compensate: false)
        var levels = base
        levels.activation = ActivationQuantization(bits: 4, mode: .static, ranges: ranges)
        var second = base
        second.activation = ActivationQuantization(bits: 4, mode: .static, ranges: [ranges[1]])
        let executor = QuantizedExecutor(layer: levels, mode: .integer)
        conv.executor = executor
        let outputs = (0..<4).map { _ in conv(input) }
        conv.executor = QuantizedExecutor(layer: base, mode: .integer)
        let first = conv(input)
        conv.executor = QuantizedExecutor(layer: second, mode: .integer)
        let other = conv(input)
        conv.executor = nil
        #expect(outputs[0] == first && outputs[2] == first)
        #expect(outputs[1] == other && outputs[3] == other)
        #expect(first != other)
    }
}
