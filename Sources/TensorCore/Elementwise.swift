// Binary elementwise ops with numpy/torch broadcasting.

/// `a + b` elementwise, with torch broadcasting (axes aligned from the right; an extent of 1
/// stretches). Fast paths: equal shapes, and `b` equal to `a` on leading axes and 1 on the rest
/// (e.g. `[N, C, H, W] + [N, C, 1, 1]`).
public func add(_ a: Tensor, _ b: Tensor) -> Tensor {
    broadcasted(a, b, function: "add") { $0 + $1 }
}

/// `a · b` elementwise, with the broadcasting of `add` (e.g. squeeze-excitation's
/// `[N, C, H, W] · [N, C, 1, 1]`).
public func multiply(_ a: Tensor, _ b: Tensor) -> Tensor {
    broadcasted(a, b, function: "multiply") { $0 * $1 }
}

/// The shape two tensors broadcast to, by torch's rules.
public func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
    let rank = max(a.count, b.count)
    var result = [Int](repeating: 1, count: rank)
    for axis in 0..<rank {
        let left = axis - (rank - a.count) >= 0 ? a[axis - (rank - a.count)] : 1
        let right = axis - (rank - b.count) >= 0 ? b[axis - (rank - b.count)] : 1
        if left == right || right == 1 {
            result[axis] = left
        } else if left == 1 {
            result[axis] = right
        } else {
            return nil
        }
    }
    return result
}

@inline(__always)
private func broadcasted(_ a: Tensor, _ b: Tensor, function: String, _ combine: (Float, Float) -> Float) -> Tensor {
    if a.shape == b.shape {
        return Tensor(shape: a.shape) { output in
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    guard let left = a.baseAddress, let right = b.baseAddress, let result = output.baseAddress else { return }
                    parallelChunks(output.count, minimumPerChunk: elementwiseChunk) { range in
                        for i in range { result[i] = combine(left[i], right[i]) }
                    }
                }
            }
        }
    }
    if let inner = trailingBroadcastBlock(full: a.shape, partial: b.shape) {
        return rowBroadcasted(a, b, inner: inner) { combine($0, $1) }
    }
    if let inner = trailingBroadcastBlock(full: b.shape, partial: a.shape) {
        return rowBroadcasted(b, a, inner: inner) { combine($1, $0) }
    }
    guard let shape = broadcastShape(a.shape, b.shape) else {
        preconditionFailure("\(function): shapes \(a.shape) and \(b.shape) do not broadcast")
    }
    let leftStrides = broadcastStrides(a.shape, to: shape)
    let rightStrides = broadcastStrides(b.shape, to: shape)
    return Tensor(shape: shape) { output in
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                var index = [Int](repeating: 0, count: shape.count)
                var left = 0, right = 0
                for flat in 0..<output.count {
                    output[flat] = combine(a[left], b[right])
                    // Odometer step over `shape`, moving both source offsets.
                    var axis = shape.count - 1
                    while axis >= 0 {
                        index[axis] += 1
                        left += leftStrides[axis]
                        right += rightStrides[axis]
                        if index[axis] < shape[axis] { break }
                        left -= leftStrides[axis] * shape[axis]
                        right -= rightStrides[axis] * shape[axis]
                        index[axis] = 0
                        axis -= 1
                    }
                }
            }
        }
    }
}

/// When `partial` has `full`'s rank, equals it on leading axes and is 1 on all the others,
/// the number of `full` elements that share one `partial` element; else nil.
private func trailingBroadcastBlock(full: [Int], partial: [Int]) -> Int? {
    guard full.count == partial.count, full.count > 0 else { return nil }
    var split = 0
    while split < full.count, partial[split] == full[split] { split += 1 }
    guard partial[split...].allSatisfy({ $0 == 1 }) else { return nil }
    return full[split...].reduce(1, *)
}

/// `result[i] = combine(full[i], partial[i / inner])`.
@inline(__always)
private func rowBroadcasted(_ full: Tensor, _ partial: Tensor, inner: Int, _ combine: (Float, Float) -> Float) -> Tensor {
    Tensor(shape: full.shape) { output in
        full.withUnsafeBufferPointer { full in
            partial.withUnsafeBufferPointer { partial in
                guard let source = full.baseAddress, let rows = partial.baseAddress, let result = output.baseAddress,
                      inner > 0 else { return }
                parallelChunks(partial.count, minimumPerChunk: max(1, elementwiseChunk / inner)) { range in
                    for row in range {
                        let value = rows[row]
                        for i in (row * inner)..<((row + 1) * inner) { result[i] = combine(source[i], value) }
                    }
                }
            }
        }
    }
}

/// Strides (in elements) that read `shape`'s tensor as if it had `target`'s shape:
/// 0 on stretched and missing axes.
private func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
    var strides = [Int](repeating: 0, count: target.count)
    var step = 1
    for axis in shape.indices.reversed() {
        let targetAxis = axis + target.count - shape.count
        strides[targetAxis] = shape[axis] == 1 ? 0 : step
        step *= shape[axis]
    }
    return strides
}
