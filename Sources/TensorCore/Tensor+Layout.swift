// Copies that rearrange axes: permute, transpose, slice, concatenate (torch.permute / narrow / cat).

extension Tensor {
    /// The tensor with its axes reordered: result axis `i` is input axis `axes[i]`
    /// (`torch.permute`). `axes` is a permutation of `0..<rank`.
    public func permuted(_ axes: [Int]) -> Tensor {
        precondition(axes.count == rank && Set(axes) == Set(0..<rank),
                     "permuted: \(axes) is not a permutation of the axes of \(shape)")
        let outputShape = axes.map { shape[$0] }
        guard count > 0 else { return reshaped(outputShape) }
        let (mergedShape, mergedAxes) = mergedPermutation(shape: shape, axes: axes)
        switch mergedAxes {
        case [], [0]:
            return reshaped(outputShape)
        case [1, 0]:
            return Tensor(shape: outputShape) { output in
                self.withUnsafeBufferPointer { input in
                    transposeBlocks(input.baseAddress!, into: output.baseAddress!, batch: 1,
                                    rows: mergedShape[0], columns: mergedShape[1])
                }
            }
        case [0, 2, 1]:
            return Tensor(shape: outputShape) { output in
                self.withUnsafeBufferPointer { input in
                    transposeBlocks(input.baseAddress!, into: output.baseAddress!, batch: mergedShape[0],
                                    rows: mergedShape[1], columns: mergedShape[2])
                }
            }
        default:
            return Tensor(shape: outputShape) { output in
                self.withUnsafeBufferPointer { input in
                    gatherPermuted(input.baseAddress!, into: output.baseAddress!, shape: mergedShape, axes: mergedAxes)
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

/// The same permutation on fewer axes: extent-1 axes dropped, and runs of output axes that are
/// consecutive in the input merged into one. Returns the merged input shape and permutation.
private func mergedPermutation(shape: [Int], axes: [Int]) -> (shape: [Int], axes: [Int]) {
    let kept = axes.filter { shape[$0] != 1 }
    // Groups of input axes, in output order.
    var groups: [[Int]] = []
    for axis in kept {
        if let last = groups.last?.last, last + 1 == axis {
            groups[groups.count - 1].append(axis)
        } else {
            groups.append([axis])
        }
    }
    let inputOrder = groups.indices.sorted { groups[$0][0] < groups[$1][0] }
    let mergedShape = inputOrder.map { groups[$0].reduce(1) { $0 * shape[$1] } }
    var mergedAxes = [Int](repeating: 0, count: groups.count)
    for (position, group) in inputOrder.enumerated() { mergedAxes[group] = position }
    return (mergedShape, mergedAxes)
}

/// `output[b, c, r] = input[b, r, c]` for `batch` matrices of `rows × columns`, in blocks of
/// 16 rows × 64 columns: few enough rows that power-of-two row strides do not thrash a cache set.
private func transposeBlocks(_ input: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>,
                             batch: Int, rows: Int, columns: Int) {
    let rowBlock = 16, columnBlock = 64
    let rowBlocks = (rows + rowBlock - 1) / rowBlock
    parallelChunks(batch * rowBlocks, minimumPerChunk: max(1, elementwiseChunk / (rowBlock * columns))) { jobs in
        for job in jobs {
            let matrix = job / rowBlocks
            let source = input + matrix * rows * columns, destination = output + matrix * rows * columns
            let rowStart = (job % rowBlocks) * rowBlock, rowEnd = min(rows, rowStart + rowBlock)
            var columnStart = 0
            while columnStart < columns {
                let columnEnd = min(columns, columnStart + columnBlock)
                for column in columnStart..<columnEnd {
                    let target = destination + column * rows
                    for row in rowStart..<rowEnd { target[row] = source[row * columns + column] }
                }
                columnStart = columnEnd
            }
        }
    }
}

/// The general permutation: output rows (all axes but the last) walked with an odometer over
/// the input strides.
private func gatherPermuted(_ source: UnsafePointer<Float>, into destination: UnsafeMutablePointer<Float>,
                            shape: [Int], axes: [Int]) {
    var inputStrides = [Int](repeating: 1, count: shape.count)
    for axis in shape.indices.reversed().dropFirst() { inputStrides[axis] = inputStrides[axis + 1] * shape[axis + 1] }
    let outputShape = axes.map { shape[$0] }
    let sourceStrides = axes.map { inputStrides[$0] }
    let innerLength = outputShape[outputShape.count - 1], innerStride = sourceStrides[sourceStrides.count - 1]
    let rows = outputShape.reduce(1, *) / innerLength
    let outerShape = Array(outputShape.dropLast())
    parallelChunks(rows, minimumPerChunk: max(1, elementwiseChunk / innerLength)) { range in
        // Multi-index of the chunk's first row, then an odometer over the outer axes.
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
