// Range choice for every method: min/max, ARCQ's compensation-aware clipping search (docs/arcq.md §4),
// the Lp grid of the `mse` baseline and the linear layers' weight grid (§2, §7).
import Foundation

/// Weight min/max per output channel (or one range for the tensor), from `[O, Kg]` rows.
func weightRanges(_ weight: [Float], outputs: Int, granularity: WeightGranularity) -> [ValueRange] {
    let rowLength = weight.count / outputs
    let perChannel = (0..<outputs).map { o -> ValueRange in
        var low = Float.infinity, high = -Float.infinity
        for value in weight[(o * rowLength)..<((o + 1) * rowLength)] {
            low = min(low, value)
            high = max(high, value)
        }
        return rowLength == 0 ? ValueRange(low: 0, high: 0) : ValueRange(low: low, high: high)
    }
    guard granularity == .perTensor else { return perChannel }
    return [ValueRange(low: perChannel.map(\.low).min() ?? 0, high: perChannel.map(\.high).max() ?? 0)]
}

/// Quantizers for `ranges` shrunk by `factors` (`low·factor.low`, `high·factor.high`; one
/// factor pair per range). Symmetric quantizers use the larger magnitude of the two ends.
func makeWeightQuantizers(_ ranges: [ValueRange], factors: [ValueRange], bits: Int, symmetric: Bool) -> [AffineQuantizer] {
    precondition(ranges.count == factors.count, "weightQuantizers: \(ranges.count) ranges, \(factors.count) factors")
    return zip(ranges, factors).map { range, factor in
        AffineQuantizer(bits: bits, low: range.low * factor.low, high: range.high * factor.high, symmetric: symmetric)
    }
}

/// The weight ranges a method's factors apply to (one per output channel, or one for the
/// tensor), and the quantizers they make.
///
/// With a batch norm kept (`BatchNormMode.keep`) at per-tensor granularity, `ranges` holds the
/// range of the unfolded weight `W_o = W'_o / g_o` (`g` the folded norm's factors) and each
/// output channel `o` gets the quantizer of that range times `g_o` (ends swapped when
/// `g_o < 0`): its codes are those of the unfolded weight (negated when `g_o < 0`) and its step is
/// `|g_o|` times the unfolded step.
struct WeightRangeBase {
    let ranges: [ValueRange]
    /// The folded norm's per-channel factors when kept, else nil.
    let channelScales: [Float]?

    init(weight: [Float], outputs: Int, granularity: WeightGranularity, keptNormScales: [Float]? = nil) {
        guard granularity == .perTensor, let scales = keptNormScales, scales.count == outputs else {
            ranges = weightRanges(weight, outputs: outputs, granularity: granularity)
            channelScales = nil
            return
        }
        ranges = weightRanges(Self.unfolded(weight, scales: scales), outputs: outputs, granularity: .perTensor)
        channelScales = scales
    }

    /// The weight values `ranges` describe: `weight` itself, or the unfolded weight.
    func rangeWeight(_ weight: [Float]) -> [Float] {
        channelScales.map { Self.unfolded(weight, scales: $0) } ?? weight
    }

    /// `[O, K]` rows divided by their channel's factor (a zero factor leaves a zero row).
    private static func unfolded(_ weight: [Float], scales: [Float]) -> [Float] {
        let rowLength = scales.isEmpty ? 0 : weight.count / scales.count
        return weight.indices.map { index in
            let scale = scales[index / rowLength]
            return scale == 0 ? 0 : weight[index] / scale
        }
    }

    /// One factor pair per range, all 1.
    var unitFactors: [ValueRange] { ranges.map { _ in ValueRange(low: 1, high: 1) } }

    func quantizers(_ factors: [ValueRange], bits: Int, symmetric: Bool) -> [AffineQuantizer] {
        guard let channelScales, let base = ranges.first, let factor = factors.first else {
            return makeWeightQuantizers(ranges, factors: factors, bits: bits, symmetric: symmetric)
        }
        let range = ValueRange(low: base.low * factor.low, high: base.high * factor.high)
        return channelScales.map { scale in
            let low = scale >= 0 ? range.low * scale : range.high * scale
            let high = scale >= 0 ? range.high * scale : range.low * scale
            return AffineQuantizer(bits: bits, low: low, high: high, symmetric: symmetric)
        }
    }
}

/// The calibrated activation ranges a search starts from, and how factors apply to them.
struct ActivationBase {
    let bits: Int
    let mode: ActivationRangeMode
    /// Static: the averaged per-call ranges (one, or one per call index).
    let ranges: [ValueRange]
    /// Whether any input the factors apply to goes below zero (else the low end stays 0).
    let hasNegative: Bool
    let hasPositive: Bool

    /// Static ranges: the per-sample min/max (or percentiles) averaged over samples, per call
    /// index when `perLevel`, else over the whole forward; `trim` drops that fraction of each end.
    init(bits: Int, mode: ActivationRangeMode, sampleRanges: [[ValueRange]], perLevel: Bool, trim: Double,
         patches: PatchSample) {
        self.bits = bits
        self.mode = mode
        let calls = sampleRanges.map(\.count).max() ?? 0
        if perLevel && calls > 1 {
            ranges = (0..<calls).map { call in
                let seen = sampleRanges.compactMap { call < $0.count ? $0[call] : nil }
                return ValueRange(low: trimmedMean(seen.map(\.low), trim: trim), high: trimmedMean(seen.map(\.high), trim: trim))
            }
        } else {
            let perSample = perSampleRanges(sampleRanges)
            ranges = [ValueRange(low: trimmedMean(perSample.map(\.low), trim: trim),
                                 high: trimmedMean(perSample.map(\.high), trim: trim))]
        }
        switch mode {
        case .static:
            hasNegative = ranges.contains { $0.low < 0 }
            hasPositive = ranges.contains { $0.high > 0 }
        case .dynamic:
            hasNegative = patches.callRanges.contains { $0.low < 0 }
            hasPositive = patches.callRanges.contains { $0.high > 0 }
        }
    }

    /// The activation quantization with `factors` applied.
    func quantization(_ factors: ValueRange) -> ActivationQuantization {
        switch mode {
        case .static:
            ActivationQuantization(bits: bits, mode: .static, ranges: ranges.map {
                ValueRange(low: $0.low * factors.low, high: $0.high * factors.high)
            })
        case .dynamic:
            ActivationQuantization(bits: bits, mode: .dynamic, ranges: [], clip: factors)
        }
    }
}

/// The mean of `values` after dropping `trim` of them at each end (sorted).
func trimmedMean(_ values: [Float], trim: Double) -> Float {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    let drop = min(Int(Double(sorted.count) * trim), (sorted.count - 1) / 2)
    let kept = sorted[drop..<(sorted.count - drop)]
    return Float(kept.reduce(0.0) { $0 + Double($1) } / Double(kept.count))
}

/// Candidate factors `1 − step·i`, `i = 0..<gridSize`.
func shrinkFactors(gridSize: Int, step: Double) -> [Float] {
    (0..<gridSize).map { Float(1 - step * Double($0)) }
}

/// The result of a clipping search: per-range weight factors and the activation factors.
struct ClipChoice {
    var weightFactors: [ValueRange]
    var activationFactors: ValueRange
}

/// ARCQ's clipping search (docs/arcq.md §4) on a layer's patches: first shrink the max, then,
/// with the best max, the min; activations with the current weight quantizer, then weights
/// with the current activation quantizer, for `options.passes` passes. The objective is
/// `mean |Y − Ŷ|^p` of the compensated output (`compensateWeights`/`compensateActivations`
/// say which remainder terms it carries; neither: plain RTN). Per-channel weight ranges pick
/// their factors independently (each output channel's error depends on its own weights only).
func searchClipping(simulator: PatchSimulator, weight: [Float], weightBase: WeightRangeBase, weightBits: Int,
                    symmetric: Bool, activationBase: ActivationBase, compensateWeights: Bool,
                    compensateActivations: Bool, options: ClipSearchOptions, remainderMode: RemainderMode) -> ClipChoice {
    let outputs = simulator.outputs
    let factors = shrinkFactors(gridSize: options.gridSize, step: options.step)
    let ranges = weightBase.ranges
    var choice = ClipChoice(weightFactors: weightBase.unitFactors,
                            activationFactors: ValueRange(low: 1, high: 1))
    let weightsNegative = ranges.contains { $0.low < 0 }
    let weightsPositive = ranges.contains { $0.high > 0 }

    func codes(_ weightFactors: [ValueRange]) -> WeightCodes {
        weightCodes(weight, outputs: outputs,
                    quantizers: weightBase.quantizers(weightFactors, bits: weightBits, symmetric: symmetric),
                    withRemainders: compensateWeights, mode: remainderMode)
    }
    func activationCodes(_ factors: ValueRange) -> ActivationCodes {
        simulator.activations(activationBase.quantization(factors), withRemainders: compensateActivations, mode: remainderMode)
    }
    /// Per-range errors: summed over channels for one range, else per channel.
    func rangeErrors(_ output: [Float]) -> [Double] {
        let channels = simulator.channelErrors(output, norm: options.norm)
        return ranges.count == 1 ? [channels.reduce(0, +)] : channels
    }

    for _ in 0..<options.passes {
        let before = (choice.weightFactors, choice.activationFactors)
        // Activations, with the current weight quantizer.
        let weights = codes(choice.weightFactors)
        func activationError(_ candidate: ValueRange) -> Double {
            simulator.channelErrors(simulator.output(activationCodes(candidate), weights), norm: options.norm).reduce(0, +)
        }
        if activationBase.hasPositive {
            var best = (error: Double.infinity, factor: Float(1))
            for factor in factors {
                let error = activationError(ValueRange(low: choice.activationFactors.low, high: factor))
                if error < best.error { best = (error, factor) }
            }
            choice.activationFactors.high = best.factor
        }
        if activationBase.hasNegative {
            var best = (error: Double.infinity, factor: Float(1))
            for factor in factors {
                let error = activationError(ValueRange(low: factor, high: choice.activationFactors.high))
                if error < best.error { best = (error, factor) }
            }
            choice.activationFactors.low = best.factor
        }
        // Weights, with the current activation quantizer.
        let activations = activationCodes(choice.activationFactors)
        func searchWeightEnd(high: Bool) {
            var bestErrors = [Double](repeating: .infinity, count: ranges.count)
            var bestFactors = [Float](repeating: 1, count: ranges.count)
            for factor in factors {
                let candidate = choice.weightFactors.map { current -> ValueRange in
                    if symmetric { return ValueRange(low: factor, high: factor) }
                    return high ? ValueRange(low: current.low, high: factor) : ValueRange(low: factor, high: current.high)
                }
                let errors = rangeErrors(simulator.output(activations, codes(candidate)))
                for index in errors.indices where errors[index] < bestErrors[index] {
                    bestErrors[index] = errors[index]
                    bestFactors[index] = factor
                }
            }
            for index in choice.weightFactors.indices {
                if symmetric {
                    choice.weightFactors[index] = ValueRange(low: bestFactors[index], high: bestFactors[index])
                } else if high {
                    choice.weightFactors[index].high = bestFactors[index]
                } else {
                    choice.weightFactors[index].low = bestFactors[index]
                }
            }
        }
        if weightsPositive || symmetric { searchWeightEnd(high: true) }
        if weightsNegative && !symmetric { searchWeightEnd(high: false) }
        if before.0 == choice.weightFactors && before.1 == choice.activationFactors { break }
    }
    return choice
}

/// The `mse` baseline and the linear weight grid: per range, the joint factor `f` (both ends
/// times `f`) of `factors` minimising `Σ |w − ŵ|^p` over the range's weights.
func searchWeightGrid(_ weight: [Float], outputs: Int, ranges: [ValueRange], bits: Int, symmetric: Bool,
                      factors: [Float], norm: Double) -> [ValueRange] {
    let rowLength = weight.count / outputs
    let rowsPerRange = ranges.count == 1 ? outputs : 1
    return ranges.indices.map { index in
        let values = weight[(index * rowsPerRange * rowLength)..<((index + 1) * rowsPerRange * rowLength)]
        var best = (error: Double.infinity, factor: Float(1))
        for factor in factors {
            let quantizer = AffineQuantizer(bits: bits, low: ranges[index].low * factor, high: ranges[index].high * factor,
                                            symmetric: symmetric)
            var error = 0.0
            for value in values {
                let difference = Double(abs(value - quantizer.dequantized(value)))
                error += norm == 2 ? difference * difference : pow(difference, norm)
            }
            if error < best.error { best = (error, factor) }
        }
        return ValueRange(low: best.factor, high: best.factor)
    }
}

/// The `mse` baseline's activation factor: the joint `f` minimising `Σ |x − x̂|^p` over the
/// patch values (a strided subset of at most 65,536), each with its own row's quantizer.
func searchActivationGrid(simulator: PatchSimulator, base: ActivationBase, factors: [Float], norm: Double) -> ValueRange {
    let length = simulator.sample.rowLength
    let total = simulator.rows * length
    let stride = max(1, total / 65_536)
    let exponent = Float(norm)
    var best = (error: Double.infinity, factor: Float(1))
    for factor in factors {
        let quantizers = simulator.rowQuantizers(base.quantization(ValueRange(low: factor, high: factor)))
        var error = 0.0
        var index = 0
        simulator.sample.patches.withUnsafeBufferPointer { values in
            while index < total {
                let value = values[index]
                let difference = abs(value - quantizers[index / length].dequantized(value))
                error += Double(norm == 2 ? difference * difference : (difference > 0 ? powf(difference, exponent) : 0))
                index += stride
            }
        }
        if error < best.error { best = (error, factor) }
    }
    return ValueRange(low: best.factor, high: best.factor)
}
