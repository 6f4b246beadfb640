// Max and adaptive average pooling with torch's CPU semantics (output sizes, windows, NaN).

/// torch's pooling output size (`pooling_output_shape`): with `ceilMode`, the division rounds
/// up, but the last window must start inside the input or its left padding.
public func poolingOutputSize(_ inputSize: Int, kernel: Int, stride: Int, padding: Int, dilation: Int,
                              ceilMode: Bool) -> Int {
    let span = inputSize + 2 * padding - dilation * (kernel - 1) - 1 + (ceilMode ? stride - 1 : 0)
    // Floor division (torch's div_rtn), for spans below zero.
    var size = (span >= 0 ? span / stride : -((-span + stride - 1) / stride)) + 1
    if ceilMode && (size - 1) * stride >= inputSize + padding {
        size -= 1
    }
    return size
}

/// 2-D max pooling, as `torch.nn.functional.max_pool2d`. Padding acts as −∞; NaN propagates.
///
/// `x` is `[N, C, H, W]`; returns `[N, C, OH, OW]` with `OH = poolingOutputSize(H, ...)`.
/// As torch, `padding` may be at most half the kernel size.
public func maxPool2d(_ x: Tensor, kernelSize: Size2, stride: Size2, padding: Size2 = 0, dilation: Size2 = 1,
                      ceilMode: Bool = false) -> Tensor {
    precondition(x.rank == 4, "maxPool2d: input must be [N, C, H, W], got \(x.shape)")
    precondition(kernelSize.h > 0 && kernelSize.w > 0 && stride.h > 0 && stride.w > 0 && dilation.h > 0 && dilation.w > 0,
                 "maxPool2d: kernel \(kernelSize), stride \(stride), dilation \(dilation) must be positive")
    precondition(padding.h >= 0 && padding.w >= 0 && padding.h <= kernelSize.h / 2 && padding.w <= kernelSize.w / 2,
                 "maxPool2d: padding \(padding) must be between 0 and half the kernel \(kernelSize)")
    let height = x.shape[2], width = x.shape[3]
    let outputHeight = poolingOutputSize(height, kernel: kernelSize.h, stride: stride.h, padding: padding.h,
                                         dilation: dilation.h, ceilMode: ceilMode)
    let outputWidth = poolingOutputSize(width, kernel: kernelSize.w, stride: stride.w, padding: padding.w,
                                        dilation: dilation.w, ceilMode: ceilMode)
    precondition(outputHeight > 0 && outputWidth > 0, "maxPool2d: output would be empty for input \(x.shape)")
    let planes = x.shape[0] * x.shape[1]
    // A window holds the taps i·dilation − padding + o·stride inside the input, as torch's
    // clipped [start, end) stepped by dilation. Separable: the maximum over each input row's
    // window columns first, then over the window rows, each pass vectorizable along a row.
    let horizontal = PoolingTaps(count: outputWidth, input: width, kernel: kernelSize.w, stride: stride.w,
                                 padding: padding.w, dilation: dilation.w)
    let strideW = stride.w
    let work = (height * kernelSize.w + outputHeight * kernelSize.h) * outputWidth
    return Tensor(shape: [x.shape[0], x.shape[1], outputHeight, outputWidth]) { output in
        x.withUnsafeBufferPointer { input in
            guard let source = input.baseAddress, let destination = output.baseAddress else { return }
            parallelJobs(planes, minimumJobsPerWorker: max(1, elementwiseChunk / max(1, work)),
                         setUp: { _ in ScratchBuffer(capacity: height * outputWidth) }) { rowMaxima, plane in
                let planeInput = source + plane * height * width
                for ih in 0..<height {
                    let inputRow = planeInput + ih * width
                    let maxima = rowMaxima.pointer + ih * outputWidth
                    maxima.initialize(repeating: -.infinity, count: outputWidth)
                    for j in 0..<kernelSize.w {
                        let shifted = inputRow + horizontal.offset[j]
                        let low = horizontal.low[j], high = horizontal.high[j]
                        if strideW == 1 {
                            for ow in low..<high { maxima[ow] = nanPropagatingMax(maxima[ow], shifted[ow]) }
                        } else if strideW == 2 {
                            for ow in low..<high { maxima[ow] = nanPropagatingMax(maxima[ow], shifted[2 * ow]) }
                        } else {
                            for ow in low..<high { maxima[ow] = nanPropagatingMax(maxima[ow], shifted[ow * strideW]) }
                        }
                    }
                }
                let planeOutput = destination + plane * outputHeight * outputWidth
                for oh in 0..<outputHeight {
                    let result = planeOutput + oh * outputWidth
                    result.initialize(repeating: -.infinity, count: outputWidth)
                    for i in 0..<kernelSize.h {
                        let ih = oh * stride.h - padding.h + i * dilation.h
                        guard ih >= 0 && ih < height else { continue }
                        let maxima = rowMaxima.pointer + ih * outputWidth
                        for ow in 0..<outputWidth { result[ow] = nanPropagatingMax(result[ow], maxima[ow]) }
                    }
                }
            }
        }
    }
}

/// `value` if it is larger than `current` or NaN, else `current`: torch's max-pool update,
/// under which a NaN, once met, stays.
@inline(__always)
private func nanPropagatingMax(_ current: Float, _ value: Float) -> Float {
    (value > current || value.isNaN) ? value : current
}

/// For each kernel column `j`, the input offset `j·dilation − padding` and the outputs
/// `low[j]..<high[j]` whose tap `o·stride + offset` lies inside `0..<input`.
private struct PoolingTaps {
    var offset: [Int] = []
    var low: [Int] = []
    var high: [Int] = []

    init(count: Int, input: Int, kernel: Int, stride: Int, padding: Int, dilation: Int) {
        for j in 0..<kernel {
            let shift = j * dilation - padding
            let first = min(count, shift >= 0 ? 0 : (-shift + stride - 1) / stride)
            let last = input - 1 - shift < 0 ? 0 : min(count, (input - 1 - shift) / stride + 1)
            offset.append(shift)
            low.append(first)
            high.append(max(first, last))
        }
    }
}

/// Adaptive average pooling, as `torch.nn.functional.adaptive_avg_pool2d`: output cell `i`
/// averages input rows `⌊i·H/OH⌋ ..< ⌈(i+1)·H/OH⌉` (likewise columns), summed in row-major
/// order and divided by the window height, then width.
///
/// `x` is `[N, C, H, W]`; returns `[N, C, OH, OW]`.
public func adaptiveAvgPool2d(_ x: Tensor, outputSize: Size2) -> Tensor {
    precondition(x.rank == 4, "adaptiveAvgPool2d: input must be [N, C, H, W], got \(x.shape)")
    precondition(outputSize.h > 0 && outputSize.w > 0, "adaptiveAvgPool2d: output size \(outputSize) must be positive")
    let height = x.shape[2], width = x.shape[3]
    precondition(height > 0 && width > 0, "adaptiveAvgPool2d: empty input \(x.shape)")
    let outputHeight = outputSize.h, outputWidth = outputSize.w
    func windows(count: Int, input: Int) -> [(Int, Int)] {
        (0..<count).map { o in (o * input / count, ((o + 1) * input + count - 1) / count) }
    }
    let rows = windows(count: outputHeight, input: height)
    let columns = windows(count: outputWidth, input: width)
    let planes = x.shape[0] * x.shape[1]
    let work = max(height * width, outputHeight * outputWidth)
    return Tensor(shape: [x.shape[0], x.shape[1], outputHeight, outputWidth]) { output in
        x.withUnsafeBufferPointer { input in
            guard let source = input.baseAddress, let destination = output.baseAddress else { return }
            parallelChunks(planes, minimumPerChunk: max(1, elementwiseChunk / work)) { range in
                for plane in range {
                    let planeInput = source + plane * height * width
                    var result = destination + plane * outputHeight * outputWidth
                    for (rowStart, rowEnd) in rows {
                        for (columnStart, columnEnd) in columns {
                            var sum: Float = 0
                            for ih in rowStart..<rowEnd {
                                for iw in columnStart..<columnEnd { sum += planeInput[ih * width + iw] }
                            }
                            result.pointee = sum / Float(rowEnd - rowStart) / Float(columnEnd - columnStart)
                            result += 1
                        }
                    }
                }
            }
        }
    }
}
