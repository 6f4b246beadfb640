// One quantized conv or linear layer: integer weights, remainder codes, scales, activation ranges, float bias.

/// A quantized layer as `quantize` builds it and a quantized file stores it.
///
/// Weights are centred integers `W_c` (row-major, the float weight's shape) with one affine
/// quantizer per output channel (or one for the tensor); `weightRemainders` are ARCQ's `D_w`
/// when the weight term is compensated; `compensatesActivations` adds the `D_a` term at run
/// time. The bias stays float (folded batch norm and bias correction included).
public struct QuantizedLayer: Sendable, Equatable {
    /// The layer's state-dict path (`backbone.body.layer1.0.conv1`).
    public var path: String
    /// The part the caller assigned (`backbone`, `neck`, `head`).
    public var part: String
    /// 1-based first-call position among the quantized layers.
    public var executionIndex: Int
    public var kind: LayerKind
    /// `[O, I/groups, kH, kW]` or `[out, in]`.
    public var weightShape: [Int]
    public var weightBits: Int
    public var weightQuantizers: [AffineQuantizer]
    public var weightCodes: [Int32]
    public var weightRemainders: [Int32]?
    public var activation: ActivationQuantization
    public var compensatesActivations: Bool
    public var remainderMode: RemainderMode
    public var bias: [Float]?

    public init(path: String, part: String, executionIndex: Int, kind: LayerKind, weightShape: [Int], weightBits: Int,
                weightQuantizers: [AffineQuantizer], weightCodes: [Int32], weightRemainders: [Int32]?,
                activation: ActivationQuantization, compensatesActivations: Bool, remainderMode: RemainderMode,
                bias: [Float]?) {
        let outputs = weightShape.first ?? 0
        precondition(weightQuantizers.count == 1 || weightQuantizers.count == outputs,
                     "QuantizedLayer \(path): \(weightQuantizers.count) weight quantizers for \(outputs) outputs")
        precondition(weightCodes.count == weightShape.reduce(1, *), "QuantizedLayer \(path): codes do not fill \(weightShape)")
        precondition(weightRemainders.map { $0.count == weightCodes.count } ?? true,
                     "QuantizedLayer \(path): remainder codes do not fill \(weightShape)")
        precondition(bias.map { $0.count == outputs } ?? true, "QuantizedLayer \(path): bias does not have \(outputs) values")
        self.path = path
        self.part = part
        self.executionIndex = executionIndex
        self.kind = kind
        self.weightShape = weightShape
        self.weightBits = weightBits
        self.weightQuantizers = weightQuantizers
        self.weightCodes = weightCodes
        self.weightRemainders = weightRemainders
        self.activation = activation
        self.compensatesActivations = compensatesActivations
        self.remainderMode = remainderMode
        self.bias = bias
    }

    public var outputs: Int { weightShape[0] }
    /// Whether any compensation term runs.
    public var isCompensated: Bool { weightRemainders != nil || compensatesActivations }
    /// The weight quantizer of output channel `o`.
    public func weightQuantizer(_ o: Int) -> AffineQuantizer {
        weightQuantizers.count == 1 ? weightQuantizers[0] : weightQuantizers[o]
    }
    /// The dequantized weights `s_w·W_c`, row-major.
    public var dequantizedWeights: [Float] {
        let rowLength = weightCodes.count / max(1, outputs)
        return weightCodes.indices.map { weightQuantizer($0 / max(1, rowLength)).scale * Float(weightCodes[$0]) }
    }
}

extension QuantizedLayer {
    /// `layer` quantized by round to nearest with `weightQuantizers` (one, or one per output
    /// channel) and `activation`; remainder codes are kept for the compensated terms.
    public init(path: String, layer: QuantizableLayer, weightQuantizers: [AffineQuantizer],
                activation: ActivationQuantization, compensateWeights: Bool, compensateActivations: Bool,
                remainderMode: RemainderMode = .unclamped, part: String = "", executionIndex: Int = 1) {
        let codes = Quantization.weightCodes(layer.weight.scalars, outputs: layer.outputs, quantizers: weightQuantizers,
                                withRemainders: compensateWeights, mode: remainderMode)
        self.init(path: path, part: part, executionIndex: executionIndex, kind: layer.kind, weightShape: layer.weight.shape,
                  weightBits: weightQuantizers[0].bits, weightQuantizers: weightQuantizers,
                  weightCodes: codes.centred.map { Int32($0) }, weightRemainders: codes.remainders?.map { Int32($0) },
                  activation: activation, compensatesActivations: compensateActivations, remainderMode: remainderMode,
                  bias: layer.bias?.scalars)
    }
}
