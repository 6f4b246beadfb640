// Nearest and bilinear resizing with torch 1.13's F.interpolate index and weight arithmetic.
import Foundation

/// `F.interpolate(x, size: size, mode: "nearest")`: output row `i` reads input row
/// `min(⌊i · s⌋, H − 1)` with `s = Float(H) / Float(OH)` multiplied in Float, as torch's
/// (legacy) nearest kernel; equal sizes copy and doubled sizes read `i >> 1`. Likewise columns.
///
/// `x` is `[N, C, H, W]`; returns `[N, C, size.h, size.w]`.
public func upsampleNearest(_ x: Tensor, size: Size2) -> Tensor {
    precondition(x.rank == 4, "upsampleNearest: input must be [N, C, H, W], got \(x.shape)")
    precondition(size.h > 0 && size.w > 0 && x.shape[2] > 0 && x.shape[3] > 0,
                 "upsampleNearest: sizes must be positive, input \(x.shape), output \(size)")
    let height = x.shape[2], width = x.shape[3]
    let rows = (0..<size.h).map { nearestSourceIndex($0, inputSize: height, outputSize: size.h) }
    let columns = (0..<size.w).map { nearestSourceIndex($0, inputSize: width, outputSize: size.w) }
    let planes = x.shape[0] * x.shape[1]
    return Tensor(shape: [x.shape[0], x.shape[1], size.h, size.w]) { output in
        x.withUnsafeBufferPointer { input in
            guard let source = input.baseAddress, let destination = output.baseAddress else { return }
            parallelChunks(planes, minimumPerChunk: max(1, elementwiseChunk / (size.h * size.w))) { range in
                for plane in range {
                    let planeInput = source + plane * height * width
                    var result = destination + plane * size.h * size.w
                    for row in rows {
                        let inputRow = planeInput + row * width
                        for column in columns {
                            result.pointee = inputRow[column]
                            result += 1
                        }
                    }
                }
            }
        }
    }
}

/// torch's `nearest_idx` (the deprecated `nearest` mode, not `nearest-exact`).
private func nearestSourceIndex(_ outputIndex: Int, inputSize: Int, outputSize: Int) -> Int {
    if outputSize == inputSize { return outputIndex }
    if outputSize == 2 * inputSize { return outputIndex >> 1 }
    let scale = Float(inputSize) / Float(outputSize)
    return min(Int(floorf(Float(outputIndex) * scale)), inputSize - 1)
}

/// `F.interpolate(x, size: size, mode: "bilinear", align_corners: False)`.
///
/// `x` is `[N, C, H, W]`; returns `[N, C, size.h, size.w]`. The coordinate scale is
/// `Float(H) / Float(OH)` (likewise for width).
public func resizeBilinear(_ x: Tensor, size: Size2) -> Tensor {
    precondition(x.rank == 4, "resizeBilinear: input must be [N, C, H, W], got \(x.shape)")
    precondition(size.h > 0 && size.w > 0, "resizeBilinear: output size \(size) must be positive")
    return bilinear(x, size: size,
                    heightScale: Float(x.shape[2]) / Float(size.h), widthScale: Float(x.shape[3]) / Float(size.w))
}

/// `F.interpolate(x, scale_factor: scaleFactor, mode: "bilinear", align_corners: False,
/// recompute_scale_factor: recomputeScaleFactor)`, as torchvision's detection transform calls it.
///
/// The output size is `⌊in · scaleFactor⌋` computed in Double. With `recomputeScaleFactor` the
/// coordinate scale is `Float(in) / Float(out)`; without it, `Float(1 / scaleFactor)`.
/// `x` is `[N, C, H, W]`; returns `[N, C, OH, OW]`.
public func resizeBilinear(_ x: Tensor, scaleFactor: Double, recomputeScaleFactor: Bool) -> Tensor {
    precondition(x.rank == 4, "resizeBilinear: input must be [N, C, H, W], got \(x.shape)")
    precondition(scaleFactor > 0 && scaleFactor.isFinite, "resizeBilinear: scale factor \(scaleFactor) must be positive")
    let size = Size2(Int((Double(x.shape[2]) * scaleFactor).rounded(.down)),
                     Int((Double(x.shape[3]) * scaleFactor).rounded(.down)))
    precondition(size.h > 0 && size.w > 0, "resizeBilinear: scale \(scaleFactor) makes \(x.shape) empty")
    if recomputeScaleFactor {
        return resizeBilinear(x, size: size)
    }
    let scale = Float(1.0 / scaleFactor)
    return bilinear(x, size: size, heightScale: scale, widthScale: scale)
}

/// Source rows (or columns) and weights of one output axis, as torch's
/// `compute_indices_weights_linear` with `align_corners = False`.
private struct LinearTaps {
    var low: [Int] = []
    var high: [Int] = []
    var lowWeight: [Float] = []
    var highWeight: [Float] = []

    init(inputSize: Int, outputSize: Int, scale: Float) {
        for i in 0..<outputSize {
            // The source coordinate stays in Double (Float scale, Double arithmetic); only the
            // weight is rounded to Float, as the reference torch build computes it.
            let source = max(0, Double(scale) * (Double(i) + 0.5) - 0.5)
            let index = Int(source)
            let fraction = Float(source - Double(index))
            low.append(index)
            high.append(index + (index < inputSize - 1 ? 1 : 0))
            highWeight.append(fraction)
            lowWeight.append(1 - fraction)
        }
    }
}

private func bilinear(_ x: Tensor, size: Size2, heightScale: Float, widthScale: Float) -> Tensor {
    let height = x.shape[2], width = x.shape[3]
    precondition(height > 0 && width > 0, "resizeBilinear: empty input \(x.shape)")
    let rows = LinearTaps(inputSize: height, outputSize: size.h, scale: heightScale)
    let columns = LinearTaps(inputSize: width, outputSize: size.w, scale: widthScale)
    let planes = x.shape[0] * x.shape[1]
    let outputWidth = size.w
    // The reference torch build (1.13, AVX2) rounds differently by channel count; both are
    // followed so that results match it bit for bit.
    let singleChannel = x.shape[1] == 1
    return Tensor(shape: [x.shape[0], x.shape[1], size.h, size.w]) { output in
        x.withUnsafeBufferPointer { input in
            guard let source = input.baseAddress, let destination = output.baseAddress else { return }
            // One job per output row of one plane.
            parallelChunks(planes * size.h, minimumPerChunk: max(1, elementwiseChunk / (4 * outputWidth))) { jobs in
                for job in jobs {
                    let plane = job / size.h, row = job % size.h
                    let top = source + (plane * height + rows.low[row]) * width
                    let bottom = source + (plane * height + rows.high[row]) * width
                    let topWeight = rows.lowWeight[row], bottomWeight = rows.highWeight[row]
                    let result = destination + job * outputWidth
                    if singleChannel {
                        for column in 0..<outputWidth {
                            let left = columns.low[column], right = columns.high[column]
                            let leftWeight = columns.lowWeight[column], rightWeight = columns.highWeight[column]
                            // Float products of the axis weights; the four terms summed in Double in
                            // this order (float·float products are exact in Double).
                            var sum = Double(top[left]) * Double(topWeight * leftWeight)
                            sum += Double(top[right]) * Double(topWeight * rightWeight)
                            sum += Double(bottom[left]) * Double(bottomWeight * leftWeight)
                            sum += Double(bottom[right]) * Double(bottomWeight * rightWeight)
                            result[column] = Float(sum)
                        }
                    } else {
                        for column in 0..<outputWidth {
                            let left = columns.low[column], right = columns.high[column]
                            let leftWeight = columns.lowWeight[column], rightWeight = columns.highWeight[column]
                            // Width then height, each as fma(first, w₀, second · w₁).
                            let upper = (top[right] * rightWeight).addingProduct(top[left], leftWeight)
                            let lower = (bottom[right] * rightWeight).addingProduct(bottom[left], leftWeight)
                            result[column] = (lower * bottomWeight).addingProduct(upper, topWeight)
                        }
                    }
                }
            }
        }
    }
}
