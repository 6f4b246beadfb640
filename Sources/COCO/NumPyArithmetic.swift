// NumPy's linspace and mean, reproduced operation by operation so that results agree bit for bit.

/// `numpy.linspace(start, stop, count)` (endpoint included): `i * step + start` with
/// `step = (stop - start) / (count - 1)`, and the last element exactly `stop`. Building the
/// IoU thresholds this way (not by adding 0.05 repeatedly) is what makes 0.75 findable.
func numpyLinspace(_ start: Double, _ stop: Double, count: Int) -> [Double] {
    precondition(count >= 2, "linspace needs at least two points")
    let step = (stop - start) / Double(count - 1)
    var values = (0..<count).map { Double($0) * step + start }
    values[count - 1] = stop
    return values
}

/// `numpy.mean` of a 1-D float64 array: the reduction walks the array in buffers of 8192
/// elements (NumPy's default `bufsize`), adds each buffer's pairwise sum (8 accumulators, blocks
/// of 128) to a running total that starts at 0, then divides once by the count. nil for an
/// empty array.
func numpyMean(_ values: [Double]) -> Double? {
    guard !values.isEmpty else { return nil }
    let bufferSize = 8192
    var sum = 0.0
    values.withUnsafeBufferPointer { buffer in
        guard let base = buffer.baseAddress else { return }
        var start = 0
        while start < buffer.count {
            let n = min(bufferSize, buffer.count - start)
            sum += pairwiseSum(base + start, n)
            start += n
        }
    }
    return sum / Double(values.count)
}

/// NumPy's `pairwise_sum` for float64 (numpy/core/src/umath/loops_utils.h.src).
private func pairwiseSum(_ values: UnsafePointer<Double>, _ n: Int) -> Double {
    if n < 8 {
        var result = 0.0
        for index in 0..<n { result += values[index] }
        return result
    }
    if n <= 128 {
        var r0 = values[0], r1 = values[1], r2 = values[2], r3 = values[3]
        var r4 = values[4], r5 = values[5], r6 = values[6], r7 = values[7]
        var index = 8
        while index < n - n % 8 {
            r0 += values[index]; r1 += values[index + 1]; r2 += values[index + 2]; r3 += values[index + 3]
            r4 += values[index + 4]; r5 += values[index + 5]; r6 += values[index + 6]; r7 += values[index + 7]
            index += 8
        }
        var result = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while index < n {
            result += values[index]
            index += 1
        }
        return result
    }
    // Halve, keeping the first half a multiple of the unroll factor.
    var half = n / 2
    half -= half % 8
    return pairwiseSum(values, half) + pairwiseSum(values + half, n - half)
}
