// Obviously-correct reference twins of TensorCore's optimized kernels, for tests and benchmarks.
import Foundation

/// Slow, direct implementations that follow torch's definitions loop by loop. Each optimized
/// kernel in TensorCore is tested against its twin here; benchmarks use them as a baseline.
public enum Naive {
    /// Direct 7-loop convolution, same contract as `conv2d`.
    public static func conv2d(_ input: Tensor, weight: Tensor, bias: Tensor?, stride: Size2 = 1, padding: Size2 = 0,
                              dilation: Size2 = 1, groups: Int = 1) -> Tensor {
        let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let (o, groupIn, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        precondition(groupIn * groups == c && o % groups == 0, "Naive.conv2d: channels do not match groups")
        let groupOut = o / groups
        let oh = convolutionOutputSize(h, kernel: kh, stride: stride.h, padding: padding.h, dilation: dilation.h)
        let ow = convolutionOutputSize(w, kernel: kw, stride: stride.w, padding: padding.w, dilation: dilation.w)
        var output = Tensor(zeros: [n, o, oh, ow])
        let x = input.scalars, k = weight.scalars
        for b in 0..<n {
            for oc in 0..<o {
                let group = oc / groupOut
                for y in 0..<oh {
                    for xo in 0..<ow {
                        var sum: Double = Double(bias?.scalars[oc] ?? 0)
                        for ic in 0..<groupIn {
                            let channel = group * groupIn + ic
                            for i in 0..<kh {
                                let iy = y * stride.h - padding.h + i * dilation.h
                                if iy < 0 || iy >= h { continue }
                                for j in 0..<kw {
                                    let ix = xo * stride.w - padding.w + j * dilation.w
                                    if ix < 0 || ix >= w { continue }
                                    sum += Double(x[((b * c + channel) * h + iy) * w + ix])
                                        * Double(k[((oc * groupIn + ic) * kh + i) * kw + j])
                                }
                            }
                        }
                        output[b, oc, y, xo] = Float(sum)
                    }
                }
            }
        }
        return output
    }

    /// Triple-loop matrix product in Double, same contract as `matmul`.
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
        let m = transposeA ? a.shape[1] : a.shape[0]
        let k = transposeA ? a.shape[0] : a.shape[1]
        let n = transposeB ? b.shape[0] : b.shape[1]
        var output = Tensor(zeros: [m, n])
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for p in 0..<k {
                    let left = transposeA ? a[p, i] : a[i, p]
                    let right = transposeB ? b[j, p] : b[p, j]
                    sum += Double(left) * Double(right)
                }
                output[i, j] = Float(sum)
            }
        }
        return output
    }

    /// `input · weightᵀ + bias` by loops, same contract as `linear`.
    public static func linear(_ input: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        let inFeatures = weight.shape[1], outFeatures = weight.shape[0]
        let rows = input.shape.dropLast().reduce(1, *)
        var output = [Float](repeating: 0, count: rows * outFeatures)
        for row in 0..<rows {
            for o in 0..<outFeatures {
                var sum = Double(bias?.scalars[o] ?? 0)
                for i in 0..<inFeatures {
                    sum += Double(input.scalars[row * inFeatures + i]) * Double(weight.scalars[o * inFeatures + i])
                }
                output[row * outFeatures + o] = Float(sum)
            }
        }
        return Tensor(shape: Array(input.shape.dropLast()) + [outFeatures], scalars: output)
    }

    /// `(x − mean) / √(var + eps) · weight + bias` per channel of axis 1, in Double.
    public static func batchNorm(_ input: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor,
                                 eps: Float) -> Tensor {
        let channels = input.shape[1], plane = input.shape[2...].reduce(1, *)
        var output = input
        for i in 0..<input.count {
            let c = (i / plane) % channels
            let normalized = (Double(input.scalars[i]) - Double(runningMean.scalars[c]))
                / (Double(runningVar.scalars[c]) + Double(eps)).squareRoot()
            output.scalars[i] = Float(normalized * Double(weight.scalars[c]) + Double(bias.scalars[c]))
        }
        return output
    }

    /// `scale[c] · x / max(‖x‖₂ over axis 1, eps)`, in Double.
    public static func l2Normalize(_ x: Tensor, scale: Tensor, eps: Float = 1e-12) -> Tensor {
        let batch = x.shape[0], channels = x.shape[1], plane = x.shape[2...].reduce(1, *)
        var output = x
        for n in 0..<batch {
            for p in 0..<plane {
                var sum = 0.0
                for c in 0..<channels { sum += pow(Double(x.scalars[(n * channels + c) * plane + p]), 2) }
                let denominator = max(sum.squareRoot(), Double(eps))
                for c in 0..<channels {
                    let i = (n * channels + c) * plane + p
                    output.scalars[i] = Float(Double(scale.scalars[c]) * Double(x.scalars[i]) / denominator)
                }
            }
        }
        return output
    }

    /// `max(x, 0)` in Double.
    public static func relu(_ x: Tensor) -> Tensor { apply(x) { max($0, 0) } }
    /// `min(max(x, 0), 6)` in Double.
    public static func relu6(_ x: Tensor) -> Tensor { apply(x) { min(max($0, 0), 6) } }
    /// `x · min(max(x + 3, 0), 6) / 6` in Double.
    public static func hardswish(_ x: Tensor) -> Tensor { apply(x) { $0 * min(max($0 + 3, 0), 6) / 6 } }
    /// `min(max(x + 3, 0), 6) / 6` in Double.
    public static func hardsigmoid(_ x: Tensor) -> Tensor { apply(x) { min(max($0 + 3, 0), 6) / 6 } }
    /// `1 / (1 + exp(−x))` in Double.
    public static func sigmoid(_ x: Tensor) -> Tensor { apply(x) { 1 / (1 + Foundation.exp(-$0)) } }

    private static func apply(_ x: Tensor, _ function: (Double) -> Double) -> Tensor {
        Tensor(shape: x.shape, scalars: x.scalars.map { Float(function(Double($0))) })
    }

    /// `exp(x) / Σ exp(x)` along `axis`, in Double (the maximum subtracted for range only).
    public static func softmax(_ x: Tensor, axis: Int) -> Tensor {
        let axis = axis < 0 ? axis + x.rank : axis
        let length = x.shape[axis], inner = x.shape[(axis + 1)...].reduce(1, *)
        var output = x
        for i in 0..<x.count {
            let base = (i / (length * inner)) * length * inner + i % inner
            let lane = (0..<length).map { Double(x.scalars[base + $0 * inner]) }
            let largest = lane.max()!
            let sum = lane.reduce(0.0) { $0 + Foundation.exp($1 - largest) }
            output.scalars[i] = Float(Foundation.exp(Double(x.scalars[i]) - largest) / sum)
        }
        return output
    }

    /// Max pooling by scanning every kernel tap and skipping those in the padding. The output
    /// size is `ceil` or `floor` of the span over the stride, less one when the last window
    /// would start past the input and its left padding (ceil mode only).
    public static func maxPool2d(_ x: Tensor, kernelSize: Size2, stride: Size2, padding: Size2 = 0, dilation: Size2 = 1,
                                 ceilMode: Bool = false) -> Tensor {
        func outputSize(_ input: Int, _ kernel: Int, _ stride: Int, _ padding: Int, _ dilation: Int) -> Int {
            let ratio = Double(input + 2 * padding - dilation * (kernel - 1) - 1) / Double(stride)
            var size = Int(ceilMode ? ratio.rounded(.up) : ratio.rounded(.down)) + 1
            if ceilMode && (size - 1) * stride >= input + padding { size -= 1 }
            return size
        }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let oh = outputSize(h, kernelSize.h, stride.h, padding.h, dilation.h)
        let ow = outputSize(w, kernelSize.w, stride.w, padding.w, dilation.w)
        var output = Tensor(zeros: [n, c, oh, ow])
        for b in 0..<n {
            for channel in 0..<c {
                for y in 0..<oh {
                    for xo in 0..<ow {
                        var largest = -Float.infinity
                        for i in 0..<kernelSize.h {
                            for j in 0..<kernelSize.w {
                                let iy = y * stride.h - padding.h + i * dilation.h
                                let ix = xo * stride.w - padding.w + j * dilation.w
                                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                                let value = x[b, channel, iy, ix]
                                if value.isNaN || largest.isNaN { largest = .nan } else { largest = max(largest, value) }
                            }
                        }
                        output[b, channel, y, xo] = largest
                    }
                }
            }
        }
        return output
    }

    /// Adaptive average pooling with windows `⌊i·In/Out⌋ ..< ⌈(i+1)·In/Out⌉` from Double
    /// arithmetic, averaged in Double.
    public static func adaptiveAvgPool2d(_ x: Tensor, outputSize: Size2) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var output = Tensor(zeros: [n, c, outputSize.h, outputSize.w])
        for b in 0..<n {
            for channel in 0..<c {
                for y in 0..<outputSize.h {
                    let rowStart = Int((Double(y * h) / Double(outputSize.h)).rounded(.down))
                    let rowEnd = Int((Double((y + 1) * h) / Double(outputSize.h)).rounded(.up))
                    for xo in 0..<outputSize.w {
                        let columnStart = Int((Double(xo * w) / Double(outputSize.w)).rounded(.down))
                        let columnEnd = Int((Double((xo + 1) * w) / Double(outputSize.w)).rounded(.up))
                        var sum = 0.0
                        for iy in rowStart..<rowEnd {
                            for ix in columnStart..<columnEnd { sum += Double(x[b, channel, iy, ix]) }
                        }
                        output[b, channel, y, xo] = Float(sum / Double((rowEnd - rowStart) * (columnEnd - columnStart)))
                    }
                }
            }
        }
        return output
    }

    /// Nearest resizing by the per-pixel formula `min(⌊dst · Float(in)/Float(out)⌋, in − 1)`,
    /// with torch's equal-size and double-size shortcuts.
    public static func upsampleNearest(_ x: Tensor, size: Size2) -> Tensor {
        func source(_ dst: Int, _ input: Int, _ output: Int) -> Int {
            if input == output { return dst }
            if output == 2 * input { return dst / 2 }
            return min(Int((Float(dst) * (Float(input) / Float(output))).rounded(.down)), input - 1)
        }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var output = Tensor(zeros: [n, c, size.h, size.w])
        for b in 0..<n {
            for channel in 0..<c {
                for y in 0..<size.h {
                    for xo in 0..<size.w {
                        output[b, channel, y, xo] = x[b, channel, source(y, h, size.h), source(xo, w, size.w)]
                    }
                }
            }
        }
        return output
    }

    /// Bilinear resizing (align_corners False) pixel by pixel; `heightScale`/`widthScale` are
    /// the coordinate scales (input pixels per output pixel).
    public static func resizeBilinear(_ x: Tensor, size: Size2, heightScale: Float, widthScale: Float) -> Tensor {
        func taps(_ dst: Int, _ input: Int, _ scale: Float) -> (Int, Int, Float) {
            let source = max(0, Double(scale) * (Double(dst) + 0.5) - 0.5)
            let low = Int(source.rounded(.down))
            return (low, min(low + 1, input - 1), Float(source - Double(low)))
        }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var output = Tensor(zeros: [n, c, size.h, size.w])
        for b in 0..<n {
            for channel in 0..<c {
                for y in 0..<size.h {
                    let (y0, y1, fy) = taps(y, h, heightScale)
                    for xo in 0..<size.w {
                        let (x0, x1, fx) = taps(xo, w, widthScale)
                        // Σ x · (Float product of the axis weights), summed in Double.
                        let terms: [(Float, Float)] = [
                            (x[b, channel, y0, x0], (1 - fy) * (1 - fx)), (x[b, channel, y0, x1], (1 - fy) * fx),
                            (x[b, channel, y1, x0], fy * (1 - fx)), (x[b, channel, y1, x1], fy * fx),
                        ]
                        output[b, channel, y, xo] = Float(terms.reduce(0.0) { $0 + Double($1.0) * Double($1.1) })
                    }
                }
            }
        }
        return output
    }

    /// Elementwise `combine(a, b)` with torch broadcasting, by multi-indices.
    public static func broadcasted(_ a: Tensor, _ b: Tensor, _ combine: (Float, Float) -> Float) -> Tensor {
        let rank = max(a.rank, b.rank)
        let left = [Int](repeating: 1, count: rank - a.rank) + a.shape
        let right = [Int](repeating: 1, count: rank - b.rank) + b.shape
        let shape = zip(left, right).map { max($0, $1) }
        var output = Tensor(zeros: shape)
        let outputStrides = output.strides
        let leftTensor = a.reshaped(left), rightTensor = b.reshaped(right)
        let leftStrides = leftTensor.strides, rightStrides = rightTensor.strides
        for flat in 0..<output.count {
            var leftOffset = 0, rightOffset = 0
            for axis in 0..<rank {
                let index = (flat / outputStrides[axis]) % shape[axis]
                leftOffset += (left[axis] == 1 ? 0 : index) * leftStrides[axis]
                rightOffset += (right[axis] == 1 ? 0 : index) * rightStrides[axis]
            }
            output.scalars[flat] = combine(leftTensor.scalars[leftOffset], rightTensor.scalars[rightOffset])
        }
        return output
    }

    /// `permuted` by computing every element's source multi-index.
    public static func permuted(_ x: Tensor, _ axes: [Int]) -> Tensor {
        let shape = axes.map { x.shape[$0] }
        var output = Tensor(zeros: shape)
        let outputStrides = output.strides, inputStrides = x.strides
        for flat in 0..<output.count {
            var offset = 0
            for axis in 0..<shape.count {
                offset += (flat / outputStrides[axis]) % shape[axis] * inputStrides[axes[axis]]
            }
            output.scalars[flat] = x.scalars[offset]
        }
        return output
    }

    /// `concat` by locating each output element's source tensor.
    public static func concat(_ tensors: [Tensor], axis: Int) -> Tensor {
        var shape = tensors[0].shape
        shape[axis] = tensors.reduce(0) { $0 + $1.shape[axis] }
        var output = Tensor(zeros: shape)
        let outputStrides = output.strides
        for flat in 0..<output.count {
            var index = (0..<shape.count).map { (flat / outputStrides[$0]) % shape[$0] }
            var which = 0
            while index[axis] >= tensors[which].shape[axis] {
                index[axis] -= tensors[which].shape[axis]
                which += 1
            }
            let strides = tensors[which].strides
            output.scalars[flat] = tensors[which].scalars[zip(index, strides).reduce(0) { $0 + $1.0 * $1.1 }]
        }
        return output
    }

    /// Insertion sort of the indices: stable by construction. NaN is the largest value.
    public static func stableArgsort(_ values: [Float], descending: Bool) -> [Int] {
        func before(_ a: Float, _ b: Float) -> Bool {
            if descending { return (a.isNaN && !b.isNaN) || a > b }
            return (b.isNaN && !a.isNaN) || a < b
        }
        var order: [Int] = []
        for index in values.indices {
            var position = order.count
            while position > 0 && before(values[index], values[order[position - 1]]) { position -= 1 }
            order.insert(index, at: position)
        }
        return order
    }

    /// The first `k` of the stable descending order.
    public static func topK(_ values: [Float], k: Int) -> (values: [Float], indices: [Int]) {
        let order = Array(stableArgsort(values, descending: true).prefix(k))
        return (order.map { values[$0] }, order)
    }
}
