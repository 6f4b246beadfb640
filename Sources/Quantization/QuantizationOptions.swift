// What a quantization run is asked to do: method, bit widths, granularity, ranges and search settings (docs/arcq.md §2–7).
import Foundation

/// A post-training quantization method (docs/arcq.md §3–7).
public enum QuantizationMethod: String, Sendable, Codable, CaseIterable {
    /// Adaptive rounding compensation: compensation-aware clipping search, remainder codes,
    /// per-layer selection.
    case arcq
    /// Round to nearest with min/max ranges.
    case rtn
    /// Ranges by an Lp grid search on the quantized tensors.
    case mse
    /// Activation ranges by percentiles of the calibration inputs; weights min/max.
    case percentile
    /// `rtn`, then each output channel's mean output shift is added back to the bias.
    case biasCorrection = "bias-correction"
    /// Learned up/down rounding of the weights (Nagel et al. 2020).
    case adaround
}

/// Weight quantizer granularity; activations are always per tensor.
public enum WeightGranularity: String, Sendable, Codable, CaseIterable {
    case perTensor = "per-tensor"
    case perChannel = "per-channel"
}

/// How weight ranges treat a batch norm folded into its conv (docs/arcq.md §2).
public enum BatchNormMode: String, Sendable, Codable, CaseIterable {
    /// Ranges of the folded weight (detq's default).
    case fold
    /// Ranges of the conv weight before folding, as the reference code (which does not fold)
    /// quantizes it: a per-tensor range is taken over the unfolded weight, and output channel `o`
    /// runs on that range times its norm factor `γ_o/√(σ_o² + eps)`: the model still runs
    /// folded, with per-channel steps equal to per-tensor quantization of the unfolded conv.
    /// Per-channel ranges are the same either way (a channel's range scales with its factor).
    case keep
}

/// Where activation ranges come from at run time.
public enum ActivationRangeMode: String, Sendable, Codable, CaseIterable {
    /// Calibrated, frozen ranges (the default).
    case `static`
    /// The min/max of each input, times the calibrated clip factors (the reference code).
    case dynamic
}

/// How a quantized layer computes.
public enum ExecutionMode: String, Sendable, Codable, CaseIterable {
    /// Fake quantization in float: dequantized inputs and weights through the float op, plus
    /// the compensation term.
    case simulated
    /// Exact integer accumulators, one float rescale per output.
    case integer
}

/// The layer error `e_ℓ` used by the selection score (docs/arcq.md §5).
public enum CompensationErrorMeasure: String, Sendable, Codable, CaseIterable {
    /// `Lp(Y_fp, Ŷ_RTN) − Lp(Y_fp, Ŷ_ARCQ)`: what compensation gains (ours, the default).
    case reduction
    /// `Lp(Y_fp, Ŷ_RTN)`: the plain quantization error.
    case rtn
}

/// Which compensable layers ARCQ compensates (docs/arcq.md §5).
public enum CompensationPolicy: Sendable, Equatable, CustomStringConvertible {
    case all
    case none
    /// Layers whose score reaches `τ = sorted[floor(L·(1 − fraction))]`.
    case top(Double)
    /// The `k` highest scores.
    case topK(Int)
    /// Explicit 1-based execution indices.
    case layers([Int])

    /// Parses `all`, `none`, `top:F`, `topk:K` or `layers:I,J,...`.
    public init(parsing text: String) throws {
        let lowered = text.lowercased()
        func invalid(_ why: String) -> QuantizationError { .invalidOption(name: "compensation", value: text, reason: why) }
        switch lowered {
        case "all": self = .all
        case "none": self = .none
        default:
            let parts = lowered.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw invalid("expected all, none, top:F, topk:K or layers:I,J,...") }
            switch parts[0] {
            case "top":
                guard let fraction = Double(parts[1]), (0...1).contains(fraction) else {
                    throw invalid("top:F needs a fraction F in [0, 1]")
                }
                self = .top(fraction)
            case "topk":
                guard let k = Int(parts[1]), k >= 0 else { throw invalid("topk:K needs a count K ≥ 0") }
                self = .topK(k)
            case "layers":
                let items = parts[1].split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
                guard !items.isEmpty, items.allSatisfy({ ($0 ?? 0) >= 1 }) else {
                    throw invalid("layers:I,J,... needs 1-based execution indices")
                }
                self = .layers(items.compactMap { $0 })
            default:
                throw invalid("expected all, none, top:F, topk:K or layers:I,J,...")
            }
        }
    }

    public var description: String {
        switch self {
        case .all: "all"
        case .none: "none"
        case .top(let fraction): "top:\(fraction)"
        case .topK(let k): "topk:\(k)"
        case .layers(let indices): "layers:" + indices.map(String.init).joined(separator: ",")
        }
    }
}

extension CompensationPolicy: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        try self.init(parsing: text)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// The clipping-threshold search of docs/arcq.md §4.
public struct ClipSearchOptions: Sendable, Codable, Equatable {
    /// Candidates per end: `u·(1 − step·i)`, `i = 0..<gridSize`.
    public var gridSize = 20
    public var step = 0.005
    /// Alternating passes (activations with the current weights, then weights).
    public var passes = 2
    /// The error norm `p` of `mean |Y_fp − Ŷ|^p`.
    public var norm = 2.4

    public init(gridSize: Int = 20, step: Double = 0.005, passes: Int = 2, norm: Double = 2.4) {
        self.gridSize = gridSize
        self.step = step
        self.passes = passes
        self.norm = norm
    }
}

/// How calibration samples each layer (docs/arcq.md §6).
public struct CalibrationOptions: Sendable, Codable, Equatable {
    /// Seeds the patch reservoirs (and, in DetQKit, the image choice).
    public var seed: UInt64 = 0
    /// Sampled output positions (patch rows) kept per layer, at most.
    public var rowsPerLayer = 1024
    /// Floats kept per layer for patches and outputs together, at most; wide layers keep fewer rows.
    public var floatsPerLayer = 1 << 21
    /// Rows the clipping searches use (a uniform subset of the reservoir).
    public var searchRows = 256
    /// Fraction trimmed from each end of the per-sample range lists before averaging (0: the mean).
    public var trimFraction = 0.0

    public init(seed: UInt64 = 0, rowsPerLayer: Int = 1024, floatsPerLayer: Int = 1 << 21, searchRows: Int = 256,
                trimFraction: Double = 0) {
        self.seed = seed
        self.rowsPerLayer = rowsPerLayer
        self.floatsPerLayer = floatsPerLayer
        self.searchRows = searchRows
        self.trimFraction = trimFraction
    }
}

/// AdaRound's optimisation settings (Nagel et al. 2020, on the calibration patches).
public struct AdaRoundOptions: Sendable, Codable, Equatable {
    public var iterations = 1000
    /// Patch rows per Adam step.
    public var batchRows = 256
    public var learningRate = 0.01
    /// λ of the rounding regulariser.
    public var regularization = 0.01
    /// β annealed linearly from `betaStart` to `betaEnd` after the warm-up.
    public var betaStart = 20.0
    public var betaEnd = 2.0
    /// Fraction of the iterations without the regulariser.
    public var warmup = 0.2

    public init(iterations: Int = 1000, batchRows: Int = 256, learningRate: Double = 0.01) {
        self.iterations = iterations
        self.batchRows = batchRows
        self.learningRate = learningRate
    }
}

/// Everything a quantization run is asked to do; recorded whole in the recipe.
public struct QuantizationOptions: Sendable, Codable, Equatable {
    public var method: QuantizationMethod
    /// Weight and activation bits of the quantized convs (2...8).
    public var weightBits: Int
    public var activationBits: Int
    /// Bits of the first and last layers; nil keeps the reference behaviour: the first conv at
    /// 8 bits, the last layers at `weightBits`/`activationBits`.
    public var firstLastBits: Int?
    /// Bits of linear layers (W8A8 and never compensated in the reference code).
    public var linearBits = 8
    public var granularity = WeightGranularity.perTensor
    /// nil: `.fold` (recipes written before the option existed have no value).
    public var batchNorm: BatchNormMode?
    public var symmetricWeights = false
    public var activationRanges = ActivationRangeMode.static
    /// A layer called several times per forward (a shared head) keeps one activation range per call.
    public var perLevelActivationRanges = false
    public var remainderMode = RemainderMode.unclamped
    public var compensation = CompensationPolicy.top(0.9)
    public var errorMeasure = CompensationErrorMeasure.reduction
    public var clipSearch = ClipSearchOptions()
    /// Linear layers' weight grid (ARCQ's base quantizer): shrink both ends by `step` per point.
    public var linearWeightGridSize = 10
    public var linearWeightStep = 0.005
    /// `mse` method: Lp norm and the joint shrink grid of both ends.
    public var mseNorm = 2.4
    public var mseGridSize = 100
    public var mseStep = 0.01
    /// `percentile` method: the upper percentile (the lower one is `100 − percentile`).
    public var percentile = 99.99
    public var adaround = AdaRoundOptions()
    public var calibration = CalibrationOptions()

    public init(method: QuantizationMethod, weightBits: Int, activationBits: Int) {
        self.method = method
        self.weightBits = weightBits
        self.activationBits = activationBits
    }

    /// Throws for values outside their domain, naming the option.
    public func validate() throws {
        func bits(_ name: String, _ value: Int) throws {
            guard (2...8).contains(value) else {
                throw QuantizationError.invalidOption(name: name, value: String(value), reason: "bits must be in 2...8")
            }
        }
        try bits("wbits", weightBits)
        try bits("abits", activationBits)
        if let firstLastBits { try bits("first-last-bits", firstLastBits) }
        try bits("linear-bits", linearBits)
        func positive(_ name: String, _ value: Int) throws {
            guard value >= 1 else {
                throw QuantizationError.invalidOption(name: name, value: String(value), reason: "must be at least 1")
            }
        }
        try positive("clip-grid", clipSearch.gridSize)
        try positive("clip-passes", clipSearch.passes)
        try positive("calib-rows", calibration.rowsPerLayer)
        try positive("search-rows", calibration.searchRows)
        try positive("adaround-iterations", adaround.iterations)
        try positive("adaround batch rows", adaround.batchRows)
        try positive("mse grid size", mseGridSize)
        guard clipSearch.step > 0, clipSearch.step * Double(clipSearch.gridSize - 1) < 1 else {
            throw QuantizationError.invalidOption(name: "clip-step", value: String(clipSearch.step),
                                                  reason: "step·(gridSize − 1) must stay below 1")
        }
        guard clipSearch.norm > 0 else {
            throw QuantizationError.invalidOption(name: "error-norm", value: String(clipSearch.norm), reason: "must be positive")
        }
        guard mseNorm > 0 else {
            throw QuantizationError.invalidOption(name: "mse-norm", value: String(mseNorm), reason: "must be positive")
        }
        guard percentile > 50, percentile <= 100 else {
            throw QuantizationError.invalidOption(name: "percentile", value: String(percentile), reason: "must be in (50, 100]")
        }
        guard (0..<0.5).contains(calibration.trimFraction) else {
            throw QuantizationError.invalidOption(name: "calib-trim", value: String(calibration.trimFraction),
                                                  reason: "must be in [0, 0.5)")
        }
        if activationRanges == .dynamic && (method == .mse || method == .percentile) {
            throw QuantizationError.invalidOption(
                name: "act-ranges", value: "dynamic",
                reason: "the \(method.rawValue) method calibrates static activation ranges; use --act-ranges static")
        }
    }
}
