// AdaRound (Nagel et al., "Up or Down? Adaptive Rounding for Post-Training Quantization", ICML 2020),
// learned on a layer's calibration patches with quantized inputs.
import Foundation
import TensorCore

/// Learns each weight's rounding direction for the fixed `quantizers`: `W̃ = s·(clamp(⌊W/s⌋ +
/// h(V) + z, 0, Q) − z)` with the rectified sigmoid `h(V) = clamp(σ(V)(ζ − γ) + γ, 0, 1)`,
/// ζ = 1.1, γ = −0.1. Loss: `Σ_o mean_rows (Ŷ − Y)² + λ Σ (1 − |2h − 1|^β)`, the regulariser off
/// during the warm-up and β annealed linearly from `betaStart` to `betaEnd` after it; Adam on
/// `V`, minibatches of `batchRows` rows drawn with `seed`. Returns the centred integer codes
/// `[O, Kg]` of the hard rounding (`h ≥ 0.5` rounds up).
func adaRound(simulator: PatchSimulator, weight: [Float], quantizers: [AffineQuantizer], activation: ActivationQuantization,
              options: AdaRoundOptions, seed: UInt64) -> [Float] {
    let zeta: Float = 1.1, gamma: Float = -0.1
    let outputs = simulator.outputs
    let rowLength = weight.count / outputs
    func quantizer(_ o: Int) -> AffineQuantizer { quantizers.count == 1 ? quantizers[0] : quantizers[o] }

    // Floor codes and the initial V with h(V) equal to the fractional part.
    var floors = [Float](repeating: 0, count: weight.count)
    var v = [Float](repeating: 0, count: weight.count)
    for o in 0..<outputs {
        let q = quantizer(o)
        for k in (o * rowLength)..<((o + 1) * rowLength) {
            let quotient = weight[k] / q.scale
            let floor = quotient.rounded(.down)
            floors[k] = floor
            let fraction = min(max(quotient - floor, 0.01), 0.99)
            let probability = (fraction - gamma) / (zeta - gamma)
            v[k] = log(probability / (1 - probability))
        }
    }
    func rectified(_ value: Float) -> Float { min(max(1 / (1 + exp(-value)) * (zeta - gamma) + gamma, 0), 1) }

    // Quantized inputs of every row, dequantized: X̂ = s_a·X_c.
    let codes = simulator.activations(activation, withRemainders: false, mode: .unclamped)
    var inputs = codes.centred
    let length = simulator.sample.rowLength
    for row in 0..<simulator.rows {
        let scale = codes.scales[row]
        for k in (row * length)..<((row + 1) * length) { inputs[k] *= scale }
    }

    var generator = SeededGenerator(seed: seed)
    var firstMoment = [Float](repeating: 0, count: v.count)
    var secondMoment = [Float](repeating: 0, count: v.count)
    let beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8
    let learningRate = Float(options.learningRate)
    let batch = min(options.batchRows, simulator.rows)
    let warmupEnd = Int(Double(options.iterations) * options.warmup)

    for iteration in 0..<options.iterations {
        // The soft weights and the minibatch.
        var soft = [Float](repeating: 0, count: weight.count)
        for o in 0..<outputs {
            let q = quantizer(o)
            let zero = Float(q.zeroPoint)
            for k in (o * rowLength)..<((o + 1) * rowLength) {
                let code = min(max(floors[k] + rectified(v[k]) + zero, 0), q.steps)
                soft[k] = q.scale * (code - zero)
            }
        }
        let indices = (0..<batch).map { _ in Int(generator.next() % UInt64(simulator.rows)) }
        let batchSimulator = PatchSimulator(subsetOf: simulator, rows: indices)
        var batchInputs = [Float](repeating: 0, count: batch * length)
        for (position, row) in indices.enumerated() {
            for k in 0..<length { batchInputs[position * length + k] = inputs[row * length + k] }
        }
        let output = batchSimulator.groupedProduct(batchInputs, soft)
        // d loss / d Ŷ = 2 (Ŷ − Y) / rows.
        var errors = output
        for index in errors.indices {
            errors[index] = 2 * (output[index] - batchSimulator.sample.targets[index]) / Float(batch)
        }
        let gradientSoft = batchSimulator.groupedGradient(errors, batchInputs)

        let regularized = iteration >= warmupEnd
        let progress = Double(iteration - warmupEnd) / Double(max(1, options.iterations - warmupEnd))
        let beta = Float(options.betaEnd + (options.betaStart - options.betaEnd) * max(0, 1 - progress))
        let lambda = Float(options.regularization)
        let step = Float(iteration + 1)
        let correction1 = 1 - pow(beta1, step), correction2 = 1 - pow(beta2, step)
        for o in 0..<outputs {
            let q = quantizer(o)
            let zero = Float(q.zeroPoint)
            for k in (o * rowLength)..<((o + 1) * rowLength) {
                let sigmoid = 1 / (1 + exp(-v[k]))
                let h = sigmoid * (zeta - gamma) + gamma
                var gradient: Float = 0
                if h > 0 && h < 1 {
                    let code = floors[k] + h + zero
                    var dh: Float = 0
                    if code > 0 && code < q.steps { dh = gradientSoft[k] * q.scale }
                    if regularized {
                        let centred = 2 * h - 1
                        let magnitude = abs(centred)
                        // d/dh (1 − |2h − 1|^β) = −2β |2h − 1|^(β−1) sign(2h − 1).
                        if magnitude > 0 {
                            dh += lambda * -2 * beta * pow(magnitude, beta - 1) * (centred > 0 ? 1 : -1)
                        }
                    }
                    gradient = dh * sigmoid * (1 - sigmoid) * (zeta - gamma)
                }
                firstMoment[k] = beta1 * firstMoment[k] + (1 - beta1) * gradient
                secondMoment[k] = beta2 * secondMoment[k] + (1 - beta2) * gradient * gradient
                let corrected1 = firstMoment[k] / correction1
                let corrected2 = secondMoment[k] / correction2
                v[k] -= learningRate * corrected1 / (corrected2.squareRoot() + epsilon)
            }
        }
    }

    var centred = [Float](repeating: 0, count: weight.count)
    for o in 0..<outputs {
        let q = quantizer(o)
        let zero = Float(q.zeroPoint)
        for k in (o * rowLength)..<((o + 1) * rowLength) {
            let up: Float = rectified(v[k]) >= 0.5 ? 1 : 0
            centred[k] = min(max(floors[k] + up + zero, 0), q.steps) - zero
        }
    }
    return centred
}

extension PatchSimulator {
    /// A simulator over rows `rows` (with repetition) of `other`'s sample.
    convenience init(subsetOf other: PatchSimulator, rows: [Int]) {
        self.init(sample: other.sample.rows(rows), groups: other.groups, outputs: other.outputs,
                  groupOutputs: other.groupOutputs, groupPatch: other.groupPatch)
    }
}
