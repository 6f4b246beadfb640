// Elementwise activations and softmax with torch's formulas (torch.nn.functional).
import Foundation

/// Elements a thread must have before an elementwise loop is split over threads.
@usableFromInline let elementwiseChunk = 32768

extension Tensor {
    /// A tensor of the same shape with `transform` applied to every element, split over threads
    /// for large tensors.
    @inlinable
    public func mapped(_ transform: (Float) -> Float) -> Tensor {
        let count = self.count
        return Tensor(shape: shape) { output in
            self.withUnsafeBufferPointer { input in
                let source = input.baseAddress, destination = output.baseAddress
                guard let source, let destination else { return }
                parallelChunks(count, minimumPerChunk: elementwiseChunk) { range in
                    for i in range { destination[i] = transform(source[i]) }
                }
            }
        }
    }
}

/// `max(x, 0)`; NaN stays NaN, as torch.
public func relu(_ x: Tensor) -> Tensor {
    x.mapped { $0 < 0 ? 0 : $0 }
}

/// `min(max(x, 0), 6)` (torch's hardtanh(0, 6)).
public func relu6(_ x: Tensor) -> Tensor {
    x.mapped { $0 < 0 ? 0 : ($0 > 6 ? 6 : $0) }
}

/// `x · min(max(x + 3, 0), 6) / 6`, evaluated in that order as torch's CPU kernel.
public func hardswish(_ x: Tensor) -> Tensor {
    x.mapped { value in value * min(max(value + 3, 0), 6) / 6 }
}

/// `min(max(x + 3, 0), 6) / 6`, as torch's CPU kernel.
public func hardsigmoid(_ x: Tensor) -> Tensor {
    x.mapped { value in min(max(value + 3, 0), 6) / 6 }
}

/// `1 / (1 + exp(−x))`.
public func sigmoid(_ x: Tensor) -> Tensor {
    x.mapped { value in 1 / (1 + expf(-value)) }
}

/// Softmax along `axis` (negative counts from the end): `exp(x − max) · (1 / Σ exp(x − max))`,
/// as torch's CPU kernel. Shape is unchanged.
public func softmax(_ x: Tensor, axis: Int) -> Tensor {
    let axis = normalizedAxis(axis, rank: x.rank, function: "softmax")
    let length = x.shape[axis]
    let inner = x.shape[(axis + 1)...].reduce(1, *)
    let outer = x.shape[..<axis].reduce(1, *)
    guard x.count > 0 else { return x }
    return Tensor(shape: x.shape) { output in
        x.withUnsafeBufferPointer { input in
            let source = input.baseAddress!, destination = output.baseAddress!
            if inner == 1 {
                // Contiguous lanes (the last axis).
                parallelChunks(outer, minimumPerChunk: max(1, elementwiseChunk / max(1, length))) { lanes in
                    for lane in lanes {
                        softmaxBlock(source + lane * length, destination + lane * length, length: length,
                                     stride: 1, width: 1, scratch: nil)
                    }
                }
                return
            }
            // Blocks of up to 256 neighbouring lanes, walked together along `axis` so that
            // every inner loop runs over contiguous memory.
            let block = 256
            let blocksPerOuter = (inner + block - 1) / block
            parallelJobs(outer * blocksPerOuter, minimumJobsPerWorker: max(1, elementwiseChunk / (block * length)),
                         setUp: { _ in ScratchBuffer(capacity: 2 * block) }) { scratch, job in
                let start = (job % blocksPerOuter) * block
                let offset = (job / blocksPerOuter) * length * inner + start
                softmaxBlock(source + offset, destination + offset, length: length, stride: inner,
                             width: min(block, inner - start), scratch: scratch.pointer)
            }
        }
    }
}

/// Softmax of `width` neighbouring lanes whose elements along the axis are `stride` apart.
/// `scratch` holds `2 · width` floats (unused when `width == 1`).
@inline(__always)
private func softmaxBlock(_ source: UnsafePointer<Float>, _ destination: UnsafeMutablePointer<Float>, length: Int,
                          stride: Int, width: Int, scratch: UnsafeMutablePointer<Float>?) {
    if width == 1 {
        var largest = -Float.infinity
        for i in 0..<length { largest = max(largest, source[i * stride]) }
        var sum: Float = 0
        for i in 0..<length {
            let e = expf(source[i * stride] - largest)
            destination[i * stride] = e
            sum += e
        }
        let reciprocal = 1 / sum
        for i in 0..<length { destination[i * stride] *= reciprocal }
        return
    }
    guard let scratch else { return }
    let largest = scratch, sums = scratch + width
    largest.initialize(repeating: -.infinity, count: width)
    sums.initialize(repeating: 0, count: width)
    for i in 0..<length {
        let row = source + i * stride
        for k in 0..<width { largest[k] = max(largest[k], row[k]) }
    }
    for i in 0..<length {
        let row = source + i * stride, result = destination + i * stride
        for k in 0..<width {
            let e = expf(row[k] - largest[k])
            result[k] = e
            sums[k] += e
        }
    }
    for k in 0..<width { sums[k] = 1 / sums[k] }
    for i in 0..<length {
        let result = destination + i * stride
        for k in 0..<width { result[k] *= sums[k] }
    }
}

/// `axis` in `0..<rank`, with negative values counted from the end.
func normalizedAxis(_ axis: Int, rank: Int, function: String) -> Int {
    let resolved = axis < 0 ? axis + rank : axis
    precondition(resolved >= 0 && resolved < rank, "\(function): axis \(axis) out of range for rank \(rank)")
    return resolved
}
