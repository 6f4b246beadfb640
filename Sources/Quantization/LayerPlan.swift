// One layer's quantization decided by each method on its calibration patches (docs/arcq.md §2–5, §7).
import Foundation

/// A layer being quantized: its calibration, the method's choices, and what they measure.
struct LayerPlan {
    let calibration: LayerCalibration
    let layer: QuantizableLayer
    let part: String
    let weightBits: Int
    let activationBits: Int
    let options: QuantizationOptions
    /// The float weight as `[O, Kg]` rows.
    let weight: [Float]
    let weightBase: WeightRangeBase
    let activationBase: ActivationBase
    /// ARCQ may compensate this layer: a conv with weights or activations below 8 bits.
    let isCompensable: Bool
    private let searchSimulator: PatchSimulator
    private let fullSimulator: PatchSimulator

    private(set) var weightQuantizers: [AffineQuantizer]
    private(set) var activation: ActivationQuantization
    /// AdaRound's learned codes, replacing round-to-nearest.
    private(set) var learnedCodes: [Float]?
    private(set) var bias: [Float]?
    /// Bias correction's per-channel shift, already added to `bias`; the layer's errors include it.
    private(set) var biasShift: [Float]?
    private(set) var compensateWeights = false
    private(set) var compensateActivations = false

    // Measured on all calibration rows.
    private(set) var errorUncompensated = 0.0
    private(set) var errorCompensated: Double?
    private(set) var errorW8A8: Double?
    private(set) var errorFinal = 0.0
    private(set) var relativeSquaredError = 0.0
    private(set) var score: Double?

    var executionIndex: Int { calibration.executionIndex }

    init(calibration: LayerCalibration, layer: QuantizableLayer, part: String, bits: (weight: Int, activation: Int),
         options: QuantizationOptions) throws {
        self.calibration = calibration
        self.layer = layer
        self.part = part
        weightBits = bits.weight
        activationBits = bits.activation
        self.options = options
        weight = layer.weight.scalars
        bias = layer.bias?.scalars
        weightBase = WeightRangeBase(weight: weight, outputs: layer.outputs, granularity: options.granularity,
                                     keptNormScales: options.batchNorm == .keep ? layer.foldedNormScale : nil)
        let rangeSource = options.method == .percentile ? (calibration.samplePercentiles ?? calibration.sampleRanges)
            : calibration.sampleRanges
        activationBase = ActivationBase(bits: bits.activation, mode: options.activationRanges, sampleRanges: rangeSource,
                                        perLevel: options.perLevelActivationRanges,
                                        trim: options.calibration.trimFraction, patches: calibration.patches)
        isCompensable = options.method == .arcq && layer.kind != .linear && (bits.weight < 8 || bits.activation < 8)
        fullSimulator = PatchSimulator(sample: calibration.patches, layer: layer)
        searchSimulator = calibration.patches.rows > options.calibration.searchRows
            ? PatchSimulator(sample: calibration.patches.prefix(options.calibration.searchRows), layer: layer) : fullSimulator
        weightQuantizers = weightBase.quantizers(weightBase.unitFactors, bits: bits.weight, symmetric: options.symmetricWeights)
        activation = activationBase.quantization(ValueRange(low: 1, high: 1))
        try chooseRanges()
        evaluate()
    }

    private func quantizers(_ factors: [ValueRange]) -> [AffineQuantizer] {
        weightBase.quantizers(factors, bits: weightBits, symmetric: options.symmetricWeights)
    }

    /// The method's range choice (and, for AdaRound and bias correction, the rest).
    private mutating func chooseRanges() throws {
        switch options.method {
        case .rtn, .percentile:
            break
        case .arcq:
            if layer.kind == .linear {
                // The reference's linear layers: a joint shrink grid on the weights, min/max activations.
                let factors = shrinkFactors(gridSize: options.linearWeightGridSize, step: options.linearWeightStep)
                weightQuantizers = quantizers(searchWeightGrid(weightBase.rangeWeight(weight), outputs: layer.outputs,
                                                               ranges: weightBase.ranges, bits: weightBits,
                                                               symmetric: options.symmetricWeights,
                                                               factors: factors, norm: options.clipSearch.norm))
            } else {
                compensateWeights = isCompensable && weightBits < 8
                compensateActivations = isCompensable && activationBits < 8
                search(compensated: isCompensable)
                if isCompensable { measureCompensation() }
            }
        case .mse:
            let factors = shrinkFactors(gridSize: options.mseGridSize, step: options.mseStep)
            weightQuantizers = quantizers(searchWeightGrid(weightBase.rangeWeight(weight), outputs: layer.outputs,
                                                           ranges: weightBase.ranges, bits: weightBits,
                                                           symmetric: options.symmetricWeights,
                                                           factors: factors, norm: options.mseNorm))
            activation = activationBase.quantization(
                searchActivationGrid(simulator: searchSimulator, base: activationBase, factors: factors, norm: options.mseNorm))
        case .biasCorrection:
            let output = fullSimulator.output(
                fullSimulator.activations(activation, withRemainders: false, mode: options.remainderMode), codes())
            var shifts = [Double](repeating: 0, count: layer.outputs)
            let targets = fullSimulator.sample.targets, outputs = layer.outputs
            for index in output.indices { shifts[index % outputs] += Double(targets[index] - output[index]) }
            let rows = Double(max(1, fullSimulator.rows))
            let shift = shifts.map { Float($0 / rows) }
            // The report's "before" is the layer without the shift (plain rounding), "after" with it.
            errorUncompensated = fullSimulator.meanError(output, norm: options.clipSearch.norm)
            biasShift = shift
            bias = (0..<outputs).map { (bias?[$0] ?? 0) + shift[$0] }
        case .adaround:
            learnedCodes = adaRound(simulator: fullSimulator, weight: weight, quantizers: weightQuantizers,
                                    activation: activation, options: options.adaround,
                                    seed: options.calibration.seed ^ stableHash(calibration.path) ^ 0xADA)
        }
    }

    /// ARCQ's clipping search with or without the compensation terms in the objective.
    private mutating func search(compensated: Bool) {
        let choice = searchClipping(simulator: searchSimulator, weight: weight, weightBase: weightBase,
                                    weightBits: weightBits, symmetric: options.symmetricWeights,
                                    activationBase: activationBase,
                                    compensateWeights: compensated && weightBits < 8,
                                    compensateActivations: compensated && activationBits < 8,
                                    options: options.clipSearch, remainderMode: options.remainderMode)
        weightQuantizers = quantizers(choice.weightFactors)
        activation = activationBase.quantization(choice.activationFactors)
    }

    /// Weight codes of the current quantizers (learned ones for AdaRound).
    private func codes(withRemainders: Bool = false) -> WeightCodes {
        var codes = weightCodes(weight, outputs: layer.outputs, quantizers: weightQuantizers, withRemainders: withRemainders,
                                mode: options.remainderMode)
        if let learnedCodes { codes.centred = learnedCodes }
        return codes
    }

    /// Errors with and without compensation at the searched ranges, and the W8A8 baseline.
    private mutating func measureCompensation() {
        let norm = options.clipSearch.norm
        let simulator = fullSimulator
        let plain = simulator.output(simulator.activations(activation, withRemainders: false, mode: options.remainderMode),
                                     codes())
        let compensated = simulator.output(
            simulator.activations(activation, withRemainders: compensateActivations, mode: options.remainderMode),
            codes(withRemainders: compensateWeights))
        errorUncompensated = simulator.meanError(plain, norm: norm)
        errorCompensated = simulator.meanError(compensated, norm: norm)
        let eightBitWeights = weightBase.quantizers(weightBase.unitFactors, bits: 8, symmetric: options.symmetricWeights)
        let eightBitActivation = ActivationBase(bits: 8, mode: options.activationRanges, sampleRanges: calibration.sampleRanges,
                                                perLevel: options.perLevelActivationRanges,
                                                trim: options.calibration.trimFraction, patches: calibration.patches)
        let w8a8 = simulator.output(
            simulator.activations(eightBitActivation.quantization(ValueRange(low: 1, high: 1)), withRemainders: false,
                                  mode: options.remainderMode),
            weightCodes(weight, outputs: layer.outputs, quantizers: eightBitWeights, withRemainders: false,
                        mode: options.remainderMode))
        errorW8A8 = simulator.meanError(w8a8, norm: norm)
    }

    /// The selection score `e_ℓ·ln(P_ℓ)/sqrt(ℓ)`.
    func selectionScore(_ measure: CompensationErrorMeasure) -> Double {
        let error = measure == .reduction ? errorUncompensated - (errorCompensated ?? errorUncompensated) : errorUncompensated
        return error * log(Double(max(1, layer.parameterCount))) / Double(executionIndex).squareRoot()
    }

    mutating func keepCompensation() {
        score = selectionScore(options.errorMeasure)
        evaluate()
    }

    /// Not selected: no remainder terms, and ranges searched again for plain rounding.
    mutating func dropCompensation(options: QuantizationOptions) {
        score = selectionScore(options.errorMeasure)
        compensateWeights = false
        compensateActivations = false
        search(compensated: false)
        evaluate()
    }

    /// The final error of the layer as it will run, on all calibration rows.
    private mutating func evaluate() {
        let simulator = fullSimulator
        var output = simulator.output(
            simulator.activations(activation, withRemainders: compensateActivations, mode: options.remainderMode),
            codes(withRemainders: compensateWeights))
        if let biasShift {
            for index in output.indices { output[index] += biasShift[index % layer.outputs] }
        }
        errorFinal = simulator.meanError(output, norm: options.clipSearch.norm)
        relativeSquaredError = simulator.relativeSquaredError(output)
        if !isCompensable && biasShift == nil { errorUncompensated = errorFinal }
    }

    func quantizedLayer() -> QuantizedLayer {
        let final = codes(withRemainders: compensateWeights)
        return QuantizedLayer(path: calibration.path, part: part, executionIndex: executionIndex, kind: layer.kind,
                              weightShape: layer.weight.shape, weightBits: weightBits, weightQuantizers: weightQuantizers,
                              weightCodes: final.centred.map { Int32($0) },
                              weightRemainders: final.remainders.map { $0.map { Int32($0) } },
                              activation: activation, compensatesActivations: compensateActivations,
                              remainderMode: options.remainderMode, bias: bias)
    }

    func report() -> QuantizationReport.Layer {
        let multiplyAccumulates = calibration.outputPositionsPerSample * Double(layer.outputs * layer.groupPatchLength)
        let terms = (compensateWeights ? 1 : 0) + (compensateActivations ? 1 : 0)
        return QuantizationReport.Layer(
            path: calibration.path, part: part, executionIndex: executionIndex, kind: layer.kind, weightBits: weightBits,
            activationBits: activationBits, parameters: layer.parameterCount,
            weightRange: [weightQuantizers.map { -Float($0.zeroPoint) * $0.scale }.min() ?? 0,
                          weightQuantizers.map { Float($0.maximumCode - $0.zeroPoint) * $0.scale }.max() ?? 0],
            activationRanges: activation.mode == .static ? activation.ranges.map { [$0.low, $0.high] } : [],
            activationClip: activation.mode == .dynamic ? [activation.clip.low, activation.clip.high] : nil,
            inputRangeSpread: QuantizationReport.InputRangeSpread(sampleRanges: calibration.sampleRanges),
            errorUncompensated: errorUncompensated, errorCompensated: errorCompensated, errorFinal: errorFinal,
            errorW8A8: errorW8A8, relativeSquaredError: relativeSquaredError, selectionScore: score,
            compensated: compensateWeights || compensateActivations, multiplyAccumulates: multiplyAccumulates, extraMultiplyAccumulates: Double(terms) * multiplyAccumulates,
            extraBits: compensateWeights ? layer.parameterCount * (weightBits + 1) : 0)
    }
}
