// torch.nn.functional.linear over cblas_sgemm.

/// A fully connected layer, `torch.nn.functional.linear`: `input · weightᵀ + bias`.
/// `input` is `[..., in]`, `weight` `[out, in]`, `bias` `[out]` or nil; returns `[..., out]`.
public func linear(_ input: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
    precondition(input.rank >= 1 && weight.rank == 2 && input.shape.last == weight.shape[1],
                 "linear: input \(input.shape) does not match weight \(weight.shape)")
    let inFeatures = weight.shape[1], outFeatures = weight.shape[0]
    if let bias {
        precondition(bias.shape == [outFeatures], "linear: bias \(bias.shape) does not match \(outFeatures) outputs")
    }
    let rows = inFeatures == 0 ? input.shape.dropLast().reduce(1, *) : input.count / inFeatures
    let outputShape = Array(input.shape.dropLast()) + [outFeatures]
    return Tensor(shape: outputShape) { output in
        guard let result = output.baseAddress, rows > 0, outFeatures > 0 else { return }
        if let bias {
            for row in 0..<rows { (result + row * outFeatures).initialize(from: bias.scalars, count: outFeatures) }
        }
        guard inFeatures > 0 else {
            // An empty sum: the output is the bias.
            if bias == nil { result.initialize(repeating: 0, count: rows * outFeatures) }
            return
        }
        input.withUnsafeBufferPointer { input in
            weight.withUnsafeBufferPointer { weight in
                gemm(transposeB: true, m: rows, n: outFeatures, k: inFeatures,
                     a: input.baseAddress!, lda: inFeatures, b: weight.baseAddress!, ldb: inFeatures,
                     beta: bias == nil ? 0 : 1, c: result, ldc: outFeatures)
            }
        }
    }
}
