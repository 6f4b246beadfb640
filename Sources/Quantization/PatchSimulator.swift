// A quantized layer evaluated on its calibration patches with GEMMs: what every per-layer search measures.
import Foundation
import TensorCore

/// A layer's weights as integer codes, `[O, Kg]` row-major, with per-output scales.
struct WeightCodes {
    /// Centred integers `W_c`.
    var centred: [Float]
    /// Remainder codes `D_w`, when compensated.
    var remainders: [Float]?
    /// `s_w` of each output channel.
    var scales: [Float]
    /// `Q_w`.
    var steps: Float
}

/// Quantizes `weight` (`[O, Kg]` row-major) with one quantizer per output channel (or one for all).
func weightCodes(_ weight: [Float], outputs: Int, quantizers: [AffineQuantizer], withRemainders: Bool,
                 mode: RemainderMode) -> WeightCodes {
    precondition(quantizers.count == 1 || quantizers.count == outputs,
                 "weightCodes: \(quantizers.count) quantizers for \(outputs) outputs")
    let rowLength = weight.count / outputs
    var centred = [Float](repeating: 0, count: weight.count)
    var remainders: [Float]? = withRemainders ? [Float](repeating: 0, count: weight.count) : nil
    for o in 0..<outputs {
        let quantizer = quantizers.count == 1 ? quantizers[0] : quantizers[o]
        for k in (o * rowLength)..<((o + 1) * rowLength) {
            let (c, d) = quantizer.centredAndRemainder(weight[k], mode: mode)
            centred[k] = c
            remainders?[k] = d
        }
    }
    let scales = (0..<outputs).map { quantizers.count == 1 ? quantizers[0].scale : quantizers[$0].scale }
    return WeightCodes(centred: centred, remainders: remainders, scales: scales, steps: quantizers[0].steps)
}

/// Patch rows quantized as activations: `[R, K]` row-major, one scale per row.
struct ActivationCodes {
    var centred: [Float]
    var remainders: [Float]?
    var scales: [Float]
    var steps: Float
}

/// A layer's calibration patches and float targets, with the grouped products and errors the
/// searches need.
final class PatchSimulator {
    let sample: PatchSample
    let groups: Int
    let outputs: Int
    let groupOutputs: Int
    let groupPatch: Int
    var rows: Int { sample.rows }

    init(sample: PatchSample, layer: QuantizableLayer) {
        precondition(sample.rowLength == layer.patchLength && sample.outputLength == layer.outputs,
                     "PatchSimulator: patches \(sample.rowLength)→\(sample.outputLength) do not fit \(layer.signature)")
        self.sample = sample
        groups = layer.groups
        outputs = layer.outputs
        groupOutputs = layer.groupOutputs
        groupPatch = layer.groupPatchLength
    }

    init(sample: PatchSample, groups: Int, outputs: Int, groupOutputs: Int, groupPatch: Int) {
        self.sample = sample
        self.groups = groups
        self.outputs = outputs
        self.groupOutputs = groupOutputs
        self.groupPatch = groupPatch
    }

    /// The activation quantizer of every row.
    func rowQuantizers(_ activation: ActivationQuantization) -> [AffineQuantizer] {
        (0..<rows).map { activation.quantizer(call: sample.levels[$0], inputRange: sample.callRanges[$0]) }
    }

    /// The rows quantized with `activation`.
    func activations(_ activation: ActivationQuantization, withRemainders: Bool, mode: RemainderMode) -> ActivationCodes {
        let quantizers = rowQuantizers(activation)
        let length = sample.rowLength
        var centred = [Float](repeating: 0, count: sample.patches.count)
        var remainders: [Float]? = withRemainders ? [Float](repeating: 0, count: sample.patches.count) : nil
        sample.patches.withUnsafeBufferPointer { patches in
            centred.withUnsafeMutableBufferPointer { centred in
                for row in 0..<rows {
                    let range = (row * length)..<((row + 1) * length)
                    let source = UnsafeBufferPointer(rebasing: patches[range])
                    let target = UnsafeMutableBufferPointer(rebasing: centred[range])
                    if remainders != nil {
                        remainders!.withUnsafeMutableBufferPointer { codes in
                            quantizers[row].quantize(source, centred: target,
                                                     remainders: UnsafeMutableBufferPointer(rebasing: codes[range]), mode: mode)
                        }
                    } else {
                        quantizers[row].quantize(source, centred: target, remainders: nil, mode: mode)
                    }
                }
            }
        }
        return ActivationCodes(centred: centred, remainders: remainders, scales: quantizers.map(\.scale),
                               steps: activation.steps)
    }

    /// Groups too small for a GEMM call each (depthwise: `Kg = kH·kW`, one output) run as loops.
    private var usesLoops: Bool { groups > 1 && groupOutputs * groupPatch <= 64 }

    /// `left [R, K] × rightᵀ` per group, with `right` `[O, Kg]`: `[R, O]`.
    func groupedProduct(_ left: [Float], _ right: [Float]) -> [Float] {
        var result = [Float](repeating: 0, count: rows * outputs)
        guard rows > 0 else { return result }
        let rowLength = sample.rowLength
        left.withUnsafeBufferPointer { left in
            right.withUnsafeBufferPointer { right in
                result.withUnsafeMutableBufferPointer { result in
                    if usesLoops {
                        for row in 0..<rows {
                            for o in 0..<outputs {
                                let input = left.baseAddress! + row * rowLength + (o / groupOutputs) * groupPatch
                                let weight = right.baseAddress! + o * groupPatch
                                var sum: Float = 0
                                for k in 0..<groupPatch { sum += input[k] * weight[k] }
                                result[row * outputs + o] = sum
                            }
                        }
                        return
                    }
                    for group in 0..<groups {
                        gemm(transposeB: true, m: rows, n: groupOutputs, k: groupPatch,
                             a: left.baseAddress! + group * groupPatch, lda: rowLength,
                             b: right.baseAddress! + group * groupOutputs * groupPatch, ldb: groupPatch,
                             c: result.baseAddress! + group * groupOutputs, ldc: outputs)
                    }
                }
            }
        }
        return result
    }

    /// `leftᵀ [O, R] × right [R, K]` per group: the `[O, Kg]` gradient of a weight from output
    /// errors `left` `[R, O]` and inputs `right` `[R, K]`.
    func groupedGradient(_ left: [Float], _ right: [Float]) -> [Float] {
        var result = [Float](repeating: 0, count: outputs * groupPatch)
        guard rows > 0 else { return result }
        let rowLength = sample.rowLength
        left.withUnsafeBufferPointer { left in
            right.withUnsafeBufferPointer { right in
                result.withUnsafeMutableBufferPointer { result in
                    if usesLoops {
                        for row in 0..<rows {
                            for o in 0..<outputs {
                                let error = left[row * outputs + o]
                                let input = right.baseAddress! + row * rowLength + (o / groupOutputs) * groupPatch
                                let gradient = result.baseAddress! + o * groupPatch
                                for k in 0..<groupPatch { gradient[k] += error * input[k] }
                            }
                        }
                        return
                    }
                    for group in 0..<groups {
                        gemm(transposeA: true, m: groupOutputs, n: groupPatch, k: rows,
                             a: left.baseAddress! + group * groupOutputs, lda: outputs,
                             b: right.baseAddress! + group * groupPatch, ldb: rowLength,
                             c: result.baseAddress! + group * groupOutputs * groupPatch, ldc: groupPatch)
                    }
                }
            }
        }
        return result
    }

    /// The quantized layer's output on the rows, bias excluded: `s_a·s_w·(A + C)` with
    /// `A = X_c·W_cᵀ` and `C = rnd((Q_a·X_c·D_wᵀ + Q_w·D_a·W_cᵀ) / (Q_a·Q_w))` (each term only
    /// when its remainders are given).
    func output(_ activations: ActivationCodes, _ weights: WeightCodes) -> [Float] {
        let accumulator = groupedProduct(activations.centred, weights.centred)
        let weightTerm = weights.remainders.map { groupedProduct(activations.centred, $0) }
        let activationTerm = activations.remainders.map { groupedProduct($0, weights.centred) }
        let qa = Double(activations.steps), qw = Double(weights.steps)
        var result = [Float](repeating: 0, count: rows * outputs)
        for row in 0..<rows {
            let rowScale = Double(activations.scales[row])
            for o in 0..<outputs {
                let index = row * outputs + o
                var total = Double(accumulator[index])
                if weightTerm != nil || activationTerm != nil {
                    let numerator = qa * Double(weightTerm?[index] ?? 0) + qw * Double(activationTerm?[index] ?? 0)
                    total += roundHalfEven(numerator / (qa * qw))
                }
                result[index] = Float(rowScale * Double(weights.scales[o]) * total)
            }
        }
        return result
    }

    /// `Σ_rows |Y − Ŷ|^p` of each output channel (the power in Float, the sums in Double).
    func channelErrors(_ output: [Float], norm: Double) -> [Double] {
        var errors = [Double](repeating: 0, count: outputs)
        let exponent = Float(norm)
        sample.targets.withUnsafeBufferPointer { targets in
            output.withUnsafeBufferPointer { output in
                for row in 0..<rows {
                    for o in 0..<outputs {
                        let difference = abs(targets[row * outputs + o] - output[row * outputs + o])
                        let power = norm == 2 ? difference * difference : (difference > 0 ? powf(difference, exponent) : 0)
                        errors[o] += Double(power)
                    }
                }
            }
        }
        return errors
    }

    /// `mean |Y − Ŷ|^p` over rows and outputs.
    func meanError(_ output: [Float], norm: Double) -> Double {
        channelErrors(output, norm: norm).reduce(0, +) / Double(max(1, rows * outputs))
    }

    /// `Σ(Y − Ŷ)² / ΣY²`.
    func relativeSquaredError(_ output: [Float]) -> Double {
        var error = 0.0, energy = 0.0
        for (target, value) in zip(sample.targets, output) {
            error += Double(target - value) * Double(target - value)
            energy += Double(target) * Double(target)
        }
        return energy > 0 ? error / energy : error
    }
}
