// torch.nn.Conv2d at inference, with batch-norm folding and a hook for quantized execution.
import TensorCore

/// Runs a conv or linear layer in place of its float forward: quantized simulation, integer
/// execution or calibration observers are executors. The layer stays the owner of its weights.
public protocol LayerExecutor: AnyObject {
    /// Output of `layer` for `input` `[N, C, H, W]`.
    func conv(_ layer: Conv2d, _ input: Tensor) -> Tensor
    /// Output of `layer` for `input` `[N, in]`.
    func linear(_ layer: Linear, _ input: Tensor) -> Tensor
}

/// A 2-D convolution: weight `[O, I/groups, kH, kW]`, optional bias `[O]`.
public final class Conv2d: Layer {
    public let inChannels: Int
    public let outChannels: Int
    public let kernelSize: Size2
    public let stride: Size2
    public let padding: Size2
    public let dilation: Size2
    public let groups: Int
    /// Whether the checkpoint stores a bias for this conv.
    public let checkpointHasBias: Bool
    public var weight: Tensor
    public var bias: Tensor?
    /// Set by `foldBatchNorms()` once a batch norm has been folded into this conv.
    public var hasFoldedNorm: Bool { foldedNormScale != nil }
    /// The folded batch norm's per-output-channel factor `γ/√(σ² + eps)` (the weight was
    /// multiplied by it), or nil when no norm was folded. Quantization uses it to quantize as
    /// if the norm had not been folded (`--batchnorm keep`).
    public private(set) var foldedNormScale: [Float]?
    /// When set, `callAsFunction` delegates to it (quantization, calibration).
    public var executor: (any LayerExecutor)?

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Size2, stride: Size2 = 1,
                padding: Size2 = 0, dilation: Size2 = 1, groups: Int = 1, bias: Bool = true) {
        precondition(inChannels % groups == 0 && outChannels % groups == 0,
                     "Conv2d: channels \(inChannels)→\(outChannels) not divisible by groups \(groups)")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.checkpointHasBias = bias
        self.weight = Tensor(zeros: [outChannels, inChannels / groups, kernelSize.h, kernelSize.w])
        self.bias = bias ? Tensor(zeros: [outChannels]) : nil
    }

    public var ownParameters: [(name: String, tensor: Tensor)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func loadOwnParameters(from loader: ParameterLoader, prefix: String) {
        if let w = loader.take(prefix + "weight", shape: weight.shape) { weight = w }
        if checkpointHasBias, let b = loader.take(prefix + "bias", shape: [outChannels]) { bias = b }
    }

    /// The float convolution, ignoring any executor.
    public func floatForward(_ input: Tensor) -> Tensor {
        conv2d(input, weight: weight, bias: bias, stride: stride, padding: padding,
               dilation: dilation, groups: groups)
    }

    public func callAsFunction(_ input: Tensor) -> Tensor {
        if let executor { return executor.conv(self, input) }
        return floatForward(input)
    }

    /// Folds `norm` (applied right after this conv) into the weight and bias, and turns
    /// `norm` into the identity.
    public func fold(_ norm: BatchNorm2d) {
        precondition(norm.channels == outChannels, "fold: batch norm of \(norm.channels) after conv of \(outChannels)")
        let folded = foldBatchNorm(convWeight: weight, convBias: bias, weight: norm.weight, bias: norm.bias,
                                   runningMean: norm.runningMean, runningVar: norm.runningVar, eps: norm.eps)
        weight = folded.weight
        bias = folded.bias
        foldedNormScale = foldedNormScale.map { zip($0, folded.scale).map { $0 * $1 } } ?? folded.scale
        norm.isFolded = true
    }

    /// Multiply-accumulates per output element times the output size for an `[1, C, H, W]` input.
    public func macs(outputHeight: Int, outputWidth: Int) -> Int {
        outChannels * (inChannels / groups) * kernelSize.h * kernelSize.w * outputHeight * outputWidth
    }
}

/// `nn.Linear`: weight `[out, in]`, optional bias `[out]`.
public final class Linear: Layer {
    public let inFeatures: Int
    public let outFeatures: Int
    public var weight: Tensor
    public var bias: Tensor?
    public var executor: (any LayerExecutor)?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.weight = Tensor(zeros: [outFeatures, inFeatures])
        self.bias = bias ? Tensor(zeros: [outFeatures]) : nil
    }

    public var ownParameters: [(name: String, tensor: Tensor)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func loadOwnParameters(from loader: ParameterLoader, prefix: String) {
        if let w = loader.take(prefix + "weight", shape: weight.shape) { weight = w }
        if bias != nil, let b = loader.take(prefix + "bias", shape: [outFeatures]) { bias = b }
    }

    /// The float product, ignoring any executor. Input `[N, in]`.
    public func floatForward(_ input: Tensor) -> Tensor {
        linear(input, weight: weight, bias: bias)
    }

    public func callAsFunction(_ input: Tensor) -> Tensor {
        if let executor { return executor.linear(self, input) }
        return floatForward(input)
    }
}
