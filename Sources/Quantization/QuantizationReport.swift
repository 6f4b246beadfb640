// The `quantize --report` JSON: per layer ranges, errors, selection and cost; totals and times.

/// What a quantization run measured, layer by layer, on the calibration patches.
public struct QuantizationReport: Sendable, Codable {
    public struct Layer: Sendable, Codable {
        public var path: String
        public var part: String
        public var executionIndex: Int
        public var kind: LayerKind
        public var weightBits: Int
        public var activationBits: Int
        public var parameters: Int
        /// Final weight range (lowest low, highest high over the quantizers).
        public var weightRange: [Float]
        /// Final static activation ranges `[[low, high]]` by call index; empty when dynamic.
        public var activationRanges: [[Float]]
        /// Dynamic mode: the clip factors on the input's `[min, max]`.
        public var activationClip: [Float]?
        /// How the calibration images' own input ranges spread (each image's min and max over the
        /// layer's calls); a static range averages them, so a wide spread means some images are
        /// clipped and others use few of the levels.
        public var inputRangeSpread: InputRangeSpread?
        /// `mean |Y − Ŷ|^p` (p = the clip search norm) with the final ranges, no compensation.
        public var errorUncompensated: Double
        /// The same with every remainder term (compensable ARCQ layers).
        public var errorCompensated: Double?
        /// The error of the layer as it runs.
        public var errorFinal: Double
        /// W8A8 min/max RTN on the same layer, for comparison (compensable ARCQ layers).
        public var errorW8A8: Double?
        /// `Σ(Y − Ŷ)² / ΣY²` of the layer as it runs.
        public var relativeSquaredError: Double
        /// `e_ℓ·ln(P_ℓ)/sqrt(ℓ)` (compensable ARCQ layers).
        public var selectionScore: Double?
        public var compensated: Bool
        /// Multiply-accumulates per calibration sample, and those the compensation adds.
        public var multiplyAccumulates: Double
        public var extraMultiplyAccumulates: Double
        /// Bits of stored remainder codes (`P·(b + 1)` when the weight term is compensated).
        public var extraBits: Int
    }

    /// `[smallest, median, largest]` over the calibration images of their input minima and maxima.
    public struct InputRangeSpread: Sendable, Codable, Equatable {
        public var low: [Float]
        public var high: [Float]

        /// The spread of `sampleRanges` (`[sample][call]`); nil when no sample reached the layer.
        public init?(sampleRanges: [[ValueRange]]) {
            let perSample = perSampleRanges(sampleRanges)
            guard !perSample.isEmpty else { return nil }
            func spread(_ values: [Float]) -> [Float] {
                let sorted = values.sorted()
                let middle = sorted.count / 2
                let median = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
                return [sorted[0], median, sorted[sorted.count - 1]]
            }
            low = spread(perSample.map(\.low))
            high = spread(perSample.map(\.high))
        }
    }

    public struct Totals: Sendable, Codable {
        public var layers: Int
        public var compensatedLayers: Int
        public var parameters: Int
        /// Bits of the integer weights.
        public var weightBits: Int
        public var extraBits: Int
        public var multiplyAccumulates: Double
        public var extraMultiplyAccumulates: Double
    }

    public var model: String
    public var method: QuantizationMethod
    public var recipe: QuantizationRecipe
    public var layers: [Layer]
    public var totals: Totals
    public var calibrationSeconds: Double
    public var searchSeconds: Double
    public var wallSeconds: Double
}
