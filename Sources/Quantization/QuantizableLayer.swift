// A conv or linear layer seen as a grouped matrix product: the unit every quantizer works on.
import Layers
import TensorCore

/// What a quantizable layer is.
public enum LayerKind: String, Sendable, Codable {
    case conv
    /// A conv with `groups == inChannels` (MobileNet's 3×3).
    case depthwise
    /// A conv with `1 < groups < inChannels`.
    case grouped
    case linear
}

/// A `Conv2d` or `Linear` of a model tree, with the matrix view quantization uses.
///
/// A conv's output channel `o` is the dot product of its weight row `[I/groups·kH·kW]` with
/// the patch of group `o / (O/groups)`; a patch row holds all groups' patches side by side
/// (`[C·kH·kW]`, channel-major as im2col). A linear layer is one group with `kH = kW = 1`.
public enum QuantizableLayer {
    case conv(Conv2d)
    case linear(Linear)

    /// The layer at `module`, or nil when it is neither a conv nor a linear layer.
    public init?(_ module: any Module) {
        if let conv = module as? Conv2d {
            self = .conv(conv)
        } else if let linear = module as? Linear {
            self = .linear(linear)
        } else {
            return nil
        }
    }

    public var kind: LayerKind {
        switch self {
        case .conv(let conv):
            if conv.groups == 1 { return .conv }
            return conv.groups == conv.inChannels ? .depthwise : .grouped
        case .linear:
            return .linear
        }
    }

    public var weight: Tensor {
        switch self {
        case .conv(let conv): conv.weight
        case .linear(let linear): linear.weight
        }
    }

    public var bias: Tensor? {
        switch self {
        case .conv(let conv): conv.bias
        case .linear(let linear): linear.bias
        }
    }

    public var outputs: Int {
        switch self {
        case .conv(let conv): conv.outChannels
        case .linear(let linear): linear.outFeatures
        }
    }

    public var groups: Int {
        switch self {
        case .conv(let conv): conv.groups
        case .linear: 1
        }
    }

    /// The per-output-channel factor of a batch norm folded into this conv (`γ/√(σ² + eps)`), or nil.
    public var foldedNormScale: [Float]? {
        switch self {
        case .conv(let conv): conv.foldedNormScale
        case .linear: nil
        }
    }

    /// Length of one group's patch (the weight row): `I/groups·kH·kW`, or `in`.
    public var groupPatchLength: Int { weight.count / outputs }
    /// Length of a full patch row: `groups · groupPatchLength`.
    public var patchLength: Int { groups * groupPatchLength }
    /// Outputs per group.
    public var groupOutputs: Int { outputs / groups }
    /// Weight count (the `P_ℓ` of the selection score).
    public var parameterCount: Int { weight.count }

    /// The executor currently installed.
    public var executor: (any LayerExecutor)? {
        get {
            switch self {
            case .conv(let conv): conv.executor
            case .linear(let linear): linear.executor
            }
        }
        nonmutating set {
            switch self {
            case .conv(let conv): conv.executor = newValue
            case .linear(let linear): linear.executor = newValue
            }
        }
    }

    /// A description of the shape and geometry, for mismatch errors.
    public var signature: String {
        switch self {
        case .conv(let conv):
            "conv weight \(conv.weight.shape) stride \(conv.stride) padding \(conv.padding) dilation \(conv.dilation) groups \(conv.groups)"
        case .linear(let linear):
            "linear weight \(linear.weight.shape)"
        }
    }
}
