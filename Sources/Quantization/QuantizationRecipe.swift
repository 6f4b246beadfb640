// The recipe a quantized file carries (SPEC.md `quantize --out`): every choice needed to redo or read the run.

/// One quantized layer as the recipe lists it.
public struct LayerRecipe: Sendable, Codable, Equatable {
    public var path: String
    public var part: String
    /// 1-based first-call position among the quantized layers (the `ℓ` of docs/arcq.md §5).
    public var executionIndex: Int
    public var kind: LayerKind
    /// The model layer's shape and geometry when quantized (checked on load).
    public var signature: String
    public var weightShape: [Int]
    public var weightBits: Int
    public var activationBits: Int
    /// 1 (per tensor) or the output channel count.
    public var weightQuantizerCount: Int
    public var activationMode: ActivationRangeMode
    /// Static ranges kept: 1, or one per call index.
    public var activationRangeCount: Int
    public var compensatesWeights: Bool
    public var compensatesActivations: Bool
    public var remainderMode: RemainderMode
    public var hasBias: Bool
}

/// The full recipe: options, scope, calibration, per-layer bits and compensation.
public struct QuantizationRecipe: Sendable, Codable, Equatable {
    /// The file format tag, `detq-quantized/1`.
    public var format: String
    public var model: String
    public var options: QuantizationOptions
    /// The parts quantized (`backbone`, `neck`, `head`).
    public var scope: [String]
    /// The calibration inputs, in the order they ran (file names for images).
    public var calibrationImages: [String]
    public var calibrationSamples: Int
    public var batchNormFolded: Bool
    /// The execution mode the model was evaluated with when made (either can run it).
    public var executionMode: ExecutionMode
    public var layers: [LayerRecipe]
    public var compensatedLayers: [String]

    public static let formatTag = "detq-quantized/1"
}
