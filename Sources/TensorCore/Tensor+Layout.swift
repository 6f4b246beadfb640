// Copies that rearrange axes: permute, transpose, slice, concatenate (torch.permute / narrow / cat).

extension Tensor {
    /// The tensor with its axes reordered: result axis `i` is input axis `axes[i]`
    /// (`torch.permute`). `axes` is a permutation of `0..<rank`.
    public func permuted(_ axes: [Int]) -> Tensor {
        precondition(axes.count == rank && Set(axes) == Set(0..<rank),
                     "permuted: \(axes) is not a permutation of the axes of \(shape)")
        let outputShape = axes.map { shape[$0] }
        guard rank > 1, count > 0, axes != Array(0..<rank) else { return reshaped(outputShape) }
        let inputStrides = strides
        let sourceStrides = axes.map { inputStrides[$0] }
        let innerLength = outputShape[rank - 1], innerStride = sourceStrides[rank - 1]
        let rows = count / innerLength
        let outerShape = Array(outputShape.dropLast())
        return Tensor(shape: outputShape) { output in
            self.withUnsafeBufferPointer { input in
                let source = input.baseAddress!, destination = output.baseAddress!
                parallelChunks(rows, minimumPerChunk: max(1, elementwiseChunk / innerLength)) { range in
                    // Multi-index of the first row of the chunk, then an odometer over the outer axes.
                    var index = [Int](repeating: 0, count: outerShape.count)
                    var remainder = range.lowerBound
                    var offset = 0
                    for axis in outerShape.indices.reversed() {
                        index[axis] = remainder % outerShape[axis]
                        remainder /= outerShape[axis]
                        offset += index[axis] * sourceStrides[axis]
                    }
                    for row in range {
                        let result = destination + row * innerLength
                        if innerStride == 1 {
                            result.update(from: source + offset, count: innerLength)
                        } else {
                            for i in 0..<innerLength { result[i] = source[offset + i * innerStride] }
                        }
                        var axis = outerShape.count - 1
                        while axis >= 0 {
                            index[axis] += 1
                            offset += sourceStrides[axis]
                            if index[axis] < outerShape[axis] { break }
                            offset -= sourceStrides[axis] * outerShape[axis]
                            index[axis] = 0
                            axis -= 1
                        }
                    }
                }
            }
        }
    }

    /// The transpose of a 2-D tensor: `[m, n]` becomes `[n, m]`.
    public func transposed() -> Tensor {
        precondition(rank == 2, "transposed: needs a 2-D tensor, got \(shape)")
        return permuted([1, 0])
    }

    /// The elements whose index along `axis` lies in `range` (`torch.narrow`); negative `axis`
    /// counts from the end. The result has extent `range.count` on `axis`.
    public func sliced(axis: Int, range: Range<Int>) -> Tensor {
        let axis = normalizedAxis(axis, rank: rank, function: "sliced")
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[axis],
                     "sliced: range \(range) out of 0..<\(shape[axis]) on axis \(axis) of \(shape)")
        var outputShape = shape
        outputShape[axis] = range.count
        let inner = shape[(axis + 1)...].reduce(1, *)
        let outer = shape[..<axis].reduce(1, *)
        let block = range.count * inner
        let inputBlock = shape[axis] * inner
        let start = range.lowerBound * inner
        return Tensor(shape: outputShape) { output in
            guard block > 0 else { return }
            self.withUnsafeBufferPointer { input in
                for o in 0..<outer {
                    (output.baseAddress! + o * block).initialize(from: input.baseAddress! + o * inputBlock + start, count: block)
                }
            }
        }
    }
}

/// The tensors joined along `axis` (`torch.cat`); negative `axis` counts from the end.
/// All tensors have the same rank and equal extents on every other axis.
public func concat(_ tensors: [Tensor], axis: Int) -> Tensor {
    precondition(!tensors.isEmpty, "concat: no tensors")
    let first = tensors[0]
    let axis = normalizedAxis(axis, rank: first.rank, function: "concat")
    for tensor in tensors {
        precondition(tensor.rank == first.rank
                     && zip(tensor.shape, first.shape).enumerated().allSatisfy { $0.offset == axis || $0.element.0 == $0.element.1 },
                     "concat: shape \(tensor.shape) does not match \(first.shape) off axis \(axis)")
    }
    var outputShape = first.shape
    outputShape[axis] = tensors.reduce(0) { $0 + $1.shape[axis] }
    let inner = first.shape[(axis + 1)...].reduce(1, *)
    let outer = first.shape[..<axis].reduce(1, *)
    let outputBlock = outputShape[axis] * inner
    return Tensor(shape: outputShape) { output in
        var offset = 0
        for tensor in tensors {
            let block = tensor.shape[axis] * inner
            guard block > 0 else { continue }
            tensor.withUnsafeBufferPointer { input in
                for o in 0..<outer {
                    (output.baseAddress! + o * outputBlock + offset).initialize(from: input.baseAddress! + o * block, count: block)
                }
            }
            offset += block
        }
    }
}
