// Frozen batch norm (torch's eval-mode arithmetic), conv–BN folding, and SSD's L2Norm.

/// Which of torch's two eval-mode batch-norm computations to reproduce, rounding included.
public enum BatchNormRounding: Sendable {
    /// torchvision's `FrozenBatchNorm2d` (detection backbones): `x · α + β` with separate
    /// multiply and add, `α = weight · (1/√(var + eps))`, `β = bias − mean · α`.
    case frozen
    /// `nn.BatchNorm2d` in eval mode (`F.batch_norm`): the same `α`, but
    /// `β = fma(−mean, α, bias)` and `y = fma(x, α, β)`.
    case fused
}

/// Eval-mode batch normalization over axis 1 of `[N, C, ...]`:
/// `y = (x − runningMean) / √(runningVar + eps) · weight + bias`, computed as `x · α + β` in the
/// rounding of `rounding` (default: torchvision's `FrozenBatchNorm2d`).
/// `weight`, `bias`, `runningMean`, `runningVar` are `[C]`; the result has `input`'s shape.
public func batchNorm(_ input: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor,
                      eps: Float, rounding: BatchNormRounding = .frozen) -> Tensor {
    precondition(input.rank >= 2, "batchNorm: input must be [N, C, ...], got \(input.shape)")
    let channels = input.shape[1]
    for (name, parameter) in [("weight", weight), ("bias", bias), ("runningMean", runningMean), ("runningVar", runningVar)] {
        precondition(parameter.shape == [channels], "batchNorm: \(name) \(parameter.shape) does not match \(channels) channels")
    }
    var scale = [Float](repeating: 0, count: channels)
    var shift = [Float](repeating: 0, count: channels)
    for c in 0..<channels {
        let inverseStd = 1 / (runningVar.scalars[c] + eps).squareRoot()
        scale[c] = weight.scalars[c] * inverseStd
        switch rounding {
        case .frozen: shift[c] = bias.scalars[c] - runningMean.scalars[c] * scale[c]
        case .fused: shift[c] = bias.scalars[c].addingProduct(-runningMean.scalars[c], scale[c])
        }
    }
    let plane = input.shape[2...].reduce(1, *)
    return Tensor(shape: input.shape) { output in
        input.withUnsafeBufferPointer { input in
            guard let source = input.baseAddress, let destination = output.baseAddress, plane > 0 else { return }
            parallelChunks(input.count / plane, minimumPerChunk: max(1, elementwiseChunk / plane)) { rows in
                for row in rows {
                    let alpha = scale[row % channels], beta = shift[row % channels]
                    let range = (row * plane)..<((row + 1) * plane)
                    switch rounding {
                    case .frozen: for i in range { destination[i] = source[i] * alpha + beta }
                    case .fused: for i in range { destination[i] = beta.addingProduct(source[i], alpha) }
                    }
                }
            }
        }
    }
}

/// Folds an eval-mode batch norm into the preceding conv (or linear) layer, as
/// `torch.nn.utils.fuse_conv_bn_weights`: `w' = w · (γ · r)` per output channel and
/// `b' = (b − μ) · r · γ + β` with `r = 1 / √(σ² + eps)`.
/// `convWeight` is `[O, ...]`, `convBias` `[O]` or nil (zeros); BN parameters are `[O]`.
/// Returns the weight in `convWeight`'s shape, the bias `[O]` and the per-channel factors
/// `γ · r` the weight was multiplied by.
public func foldBatchNorm(convWeight: Tensor, convBias: Tensor?, weight: Tensor, bias: Tensor, runningMean: Tensor,
                          runningVar: Tensor, eps: Float) -> (weight: Tensor, bias: Tensor, scale: [Float]) {
    precondition(convWeight.rank >= 1, "foldBatchNorm: conv weight must be [O, ...], got \(convWeight.shape)")
    let channels = convWeight.shape[0]
    for (name, parameter) in [("weight", weight), ("bias", bias), ("runningMean", runningMean), ("runningVar", runningVar)] {
        precondition(parameter.shape == [channels], "foldBatchNorm: \(name) \(parameter.shape) does not match \(channels) channels")
    }
    if let convBias {
        precondition(convBias.shape == [channels], "foldBatchNorm: conv bias \(convBias.shape) does not match \(channels) channels")
    }
    let perChannel = channels == 0 ? 0 : convWeight.count / channels
    var foldedWeight = convWeight
    var foldedBias = [Float](repeating: 0, count: channels)
    var factors = [Float](repeating: 0, count: channels)
    foldedWeight.withUnsafeMutableBufferPointer { values in
        for c in 0..<channels {
            let reciprocalStd = 1 / (runningVar.scalars[c] + eps).squareRoot()
            let factor = weight.scalars[c] * reciprocalStd
            factors[c] = factor
            for i in (c * perChannel)..<((c + 1) * perChannel) { values[i] *= factor }
            let original = convBias?.scalars[c] ?? 0
            foldedBias[c] = (original - runningMean.scalars[c]) * reciprocalStd * weight.scalars[c] + bias.scalars[c]
        }
    }
    return (foldedWeight, Tensor(shape: [channels], scalars: foldedBias), factors)
}

/// torchvision SSD's `L2Norm`: `scale[c] · x / max(‖x[n, :, …]‖₂, eps)`, the norm taken over
/// axis 1 at each position (`F.normalize(x, p=2, dim=1, eps)`).
/// `x` is `[N, C, ...]`, `scale` is `[C]`; the result has `x`'s shape.
public func l2Normalize(_ x: Tensor, scale: Tensor, eps: Float = 1e-12) -> Tensor {
    precondition(x.rank >= 2, "l2Normalize: input must be [N, C, ...], got \(x.shape)")
    let batch = x.shape[0], channels = x.shape[1]
    precondition(scale.shape == [channels], "l2Normalize: scale \(scale.shape) does not match \(channels) channels")
    let plane = x.shape[2...].reduce(1, *)
    guard x.count > 0 else { return x }
    let blockSize = 256
    let blocksPerImage = (plane + blockSize - 1) / blockSize
    return Tensor(shape: x.shape) { output in
        x.withUnsafeBufferPointer { input in
            scale.withUnsafeBufferPointer { scale in
                let source = input.baseAddress!, destination = output.baseAddress!, factors = scale.baseAddress!
                // One job per block of up to 256 positions of one image; channels are `plane` apart.
                parallelChunks(batch * blocksPerImage, minimumPerChunk: max(1, elementwiseChunk / (blockSize * channels))) { jobs in
                    var denominators = [Float](repeating: 0, count: blockSize)
                    for job in jobs {
                        let image = job / blocksPerImage
                        let start = (job % blocksPerImage) * blockSize
                        let width = min(blockSize, plane - start)
                        let base = image * channels * plane + start
                        for i in 0..<width { denominators[i] = 0 }
                        for c in 0..<channels {
                            let row = source + base + c * plane
                            for i in 0..<width { denominators[i] = denominators[i].addingProduct(row[i], row[i]) }
                        }
                        for i in 0..<width { denominators[i] = max(denominators[i].squareRoot(), eps) }
                        for c in 0..<channels {
                            let row = source + base + c * plane, result = destination + base + c * plane
                            let factor = factors[c]
                            for i in 0..<width { result[i] = factor * (row[i] / denominators[i]) }
                        }
                    }
                }
            }
        }
    }
}
