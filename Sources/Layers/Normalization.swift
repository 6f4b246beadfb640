// Frozen batch norm (torchvision's FrozenBatchNorm2d / BatchNorm2d in eval) and GroupNorm.
import TensorCore

/// Batch norm with frozen statistics, over axis 1 of `[N, C, H, W]`. After folding into the
/// preceding conv it is the identity.
public final class BatchNorm2d: Layer {
    public let channels: Int
    public let eps: Float
    public var weight: Tensor
    public var bias: Tensor
    public var runningMean: Tensor
    public var runningVar: Tensor
    /// True once folded into the conv before it: forward is then the identity.
    public var isFolded = false

    public init(_ channels: Int, eps: Float = 1e-5) {
        self.channels = channels
        self.eps = eps
        weight = Tensor(repeating: 1, shape: [channels])
        bias = Tensor(zeros: [channels])
        runningMean = Tensor(zeros: [channels])
        runningVar = Tensor(repeating: 1, shape: [channels])
    }

    public var ownParameters: [(name: String, tensor: Tensor)] {
        [("weight", weight), ("bias", bias), ("running_mean", runningMean), ("running_var", runningVar)]
    }

    public func loadOwnParameters(from loader: ParameterLoader, prefix: String) {
        let shape = [channels]
        if let t = loader.take(prefix + "weight", shape: shape) { weight = t }
        if let t = loader.take(prefix + "bias", shape: shape) { bias = t }
        if let t = loader.take(prefix + "running_mean", shape: shape) { runningMean = t }
        if let t = loader.take(prefix + "running_var", shape: shape) { runningVar = t }
        loader.ignore(prefix + "num_batches_tracked")
    }

    public func callAsFunction(_ input: Tensor) -> Tensor {
        if isFolded { return input }
        return batchNorm(input, weight: weight, bias: bias, runningMean: runningMean,
                         runningVar: runningVar, eps: eps)
    }
}

/// `nn.GroupNorm` over `[N, C, H, W]`: statistics per (sample, group), affine per channel.
public final class GroupNorm: Layer {
    public let groups: Int
    public let channels: Int
    public let eps: Float
    public var weight: Tensor
    public var bias: Tensor

    public init(groups: Int, channels: Int, eps: Float = 1e-5) {
        precondition(channels % groups == 0, "GroupNorm: \(channels) channels in \(groups) groups")
        self.groups = groups
        self.channels = channels
        self.eps = eps
        weight = Tensor(repeating: 1, shape: [channels])
        bias = Tensor(zeros: [channels])
    }

    public var ownParameters: [(name: String, tensor: Tensor)] { [("weight", weight), ("bias", bias)] }

    public func loadOwnParameters(from loader: ParameterLoader, prefix: String) {
        if let t = loader.take(prefix + "weight", shape: [channels]) { weight = t }
        if let t = loader.take(prefix + "bias", shape: [channels]) { bias = t }
    }

    public func callAsFunction(_ input: Tensor) -> Tensor {
        precondition(input.rank == 4 && input.shape[1] == channels,
                     "GroupNorm(\(channels)): input \(input.shape)")
        let (n, spatial) = (input.shape[0], input.shape[2] * input.shape[3])
        let perGroup = channels / groups
        let groupSize = perGroup * spatial
        var output = input
        output.withUnsafeMutableBufferPointer { out in
            let base = UncheckedSendable(out.baseAddress!)
            weight.withUnsafeBufferPointer { gamma in
                bias.withUnsafeBufferPointer { beta in
                    parallelChunks(n * groups) { range in
                        for slot in range {
                            let start = slot * groupSize
                            let values = base.value + start
                            // Two-pass mean and biased variance in Double, as torch accumulates wider.
                            var sum = 0.0
                            for i in 0..<groupSize { sum += Double(values[i]) }
                            let mean = sum / Double(groupSize)
                            var squares = 0.0
                            for i in 0..<groupSize {
                                let d = Double(values[i]) - mean
                                squares += d * d
                            }
                            let invStd = 1 / (squares / Double(groupSize) + Double(eps)).squareRoot()
                            let firstChannel = (slot % groups) * perGroup
                            for c in 0..<perGroup {
                                let scale = Double(gamma[firstChannel + c]) * invStd
                                let shift = Double(beta[firstChannel + c]) - mean * scale
                                let row = values + c * spatial
                                for i in 0..<spatial { row[i] = Float(Double(row[i]) * scale + shift) }
                            }
                        }
                    }
                }
            }
        }
        return output
    }
}
