// Runs a quantized layer in place of its float forward: fake-quant simulation, or exact integer accumulators.
import Layers
import TensorCore

/// The executor of one quantized layer (installed on its `Conv2d`/`Linear`).
///
/// Both modes compute `A = X_c ⊛ W_c` and the compensation
/// `C = roundDivHalfEven(Q_a·(X_c ⊛ D_w) + Q_w·(D_a ⊛ W_c), Q_a·Q_w)` on the centred integers,
/// then one float rescale per output, `s_a·s_w·(A + C) + bias`, with the same operations:
/// - `simulated`: the convolutions run in Float32 (the model's own conv kernels and sgemm) over
///   the integer codes held as floats. Every product and partial sum is an integer, exact while
///   its magnitude stays below 2^24 (always for 4-bit operands: up to 2^18 terms of 2^6), so the
///   result equals integer execution's; an 8-bit layer with a long patch whose sum passes 2^24
///   could round (not seen on the shipped models).
/// - `integer`: im2col of the centred integers and Float64 GEMM (exact below 2^53); convs with
///   one input channel per group (depthwise) sum their taps directly in Int32 accumulators.
///
/// Both convolve centred integers, so padding is exactly 0. Calls are counted: call `k` uses
/// the static range `k mod ranges.count` (a shared head runs once per level, in order); the
/// count makes an executor stateful, so a model runs one forward at a time, as everywhere in detq.
public final class QuantizedExecutor: LayerExecutor {
    public let layer: QuantizedLayer
    public let mode: ExecutionMode
    private var calls = 0
    private let weightScales: [Float]
    // Simulation: the integer codes as float tensors.
    private let centredWeight: Tensor
    private let remainderWeight: Tensor?
    private let bias: Tensor?
    // Integer execution: the codes as Float64 GEMM operands, converted once.
    private let integerWeights: [Double]
    private let integerRemainders: [Double]?

    public init(layer: QuantizedLayer, mode: ExecutionMode) {
        self.layer = layer
        self.mode = mode
        weightScales = (0..<layer.outputs).map { layer.weightQuantizer($0).scale }
        centredWeight = Tensor(shape: layer.weightShape, scalars: layer.weightCodes.map(Float.init))
        remainderWeight = layer.weightRemainders.map { Tensor(shape: layer.weightShape, scalars: $0.map(Float.init)) }
        bias = layer.bias.map { Tensor(shape: [layer.outputs], scalars: $0) }
        integerWeights = mode == .integer ? layer.weightCodes.map(Double.init) : []
        integerRemainders = mode == .integer ? layer.weightRemainders?.map(Double.init) : nil
    }

    /// Restarts the call count (the next call is level 0).
    public func resetCalls() { calls = 0 }

    /// The input's centred integers and remainder codes (when compensated), and its quantizer.
    private func quantizedInput(_ input: Tensor) -> (quantizer: AffineQuantizer, centred: Tensor, remainders: Tensor?) {
        let call = calls
        calls += 1
        let range = layer.activation.mode == .dynamic ? valueRange(input) : ValueRange(low: 0, high: 0)
        let quantizer = layer.activation.quantizer(call: call, inputRange: range)
        var centred = Tensor(zeros: input.shape)
        var remainders: Tensor? = layer.compensatesActivations ? Tensor(zeros: input.shape) : nil
        input.withUnsafeBufferPointer { source in
            centred.withUnsafeMutableBufferPointer { target in
                if remainders != nil {
                    remainders!.withUnsafeMutableBufferPointer { codes in
                        quantizer.quantize(source, centred: target, remainders: codes, mode: layer.remainderMode)
                    }
                } else {
                    quantizer.quantize(source, centred: target, remainders: nil, mode: layer.remainderMode)
                }
            }
        }
        return (quantizer, centred, remainders)
    }

    public func conv(_ conv: Conv2d, _ input: Tensor) -> Tensor {
        let (quantizer, centred, remainders) = quantizedInput(input)
        switch mode {
        case .simulated:
            let apply = { (x: Tensor, w: Tensor) in
                conv2d(x, weight: w, bias: nil, stride: conv.stride, padding: conv.padding, dilation: conv.dilation,
                       groups: conv.groups)
            }
            let accumulator = apply(centred, centredWeight)
            let compensated = layer.isCompensated
            return rescaledOutput(accumulator, weightTerm: compensated ? remainderWeight.map { apply(centred, $0) } : nil,
                                  activationTerm: compensated ? remainders.map { apply($0, centredWeight) } : nil,
                                  quantizer: quantizer, plane: accumulator.shape[2] * accumulator.shape[3])
        case .integer:
            return integerConvolution(conv, centred: centred, remainders: remainders, quantizer: quantizer)
        }
    }

    public func linear(_ linear: Linear, _ input: Tensor) -> Tensor {
        let (quantizer, centred, remainders) = quantizedInput(input)
        switch mode {
        case .simulated:
            let accumulator = TensorCore.linear(centred, weight: centredWeight, bias: nil)
            let compensated = layer.isCompensated
            return rescaledOutput(
                accumulator,
                weightTerm: compensated ? remainderWeight.map { TensorCore.linear(centred, weight: $0, bias: nil) } : nil,
                activationTerm: compensated ? remainders.map { TensorCore.linear($0, weight: centredWeight, bias: nil) } : nil,
                quantizer: quantizer, plane: 1)
        case .integer:
            return integerLinear(linear, centred: centred, remainders: remainders, quantizer: quantizer)
        }
    }

    /// `s_a·s_w·(A + C) + bias` for float sums laid out `[N, O, plane]` (simulation).
    private func rescaledOutput(_ accumulator: Tensor, weightTerm: Tensor?, activationTerm: Tensor?,
                                quantizer: AffineQuantizer, plane: Int) -> Tensor {
        let rescale = rescaling(quantizer)
        let outputs = layer.outputs
        return Tensor(shape: accumulator.shape, unsafeUninitialized: { values in
            guard let base = values.baseAddress else { return }
            let output = UncheckedSendable(base)
            withSums(accumulator.scalars, weightTerm?.scalars ?? [], activationTerm?.scalars ?? []) { sums, weightSums, activationSums in
                parallelChunks(values.count / max(1, plane), minimumPerChunk: max(1, 65_536 / max(1, plane))) { planes in
                    for task in planes {
                        let offset = task * plane
                        rescale(channel: task % outputs, count: plane, sums: sums + offset,
                                weightTerm: weightSums.map { $0 + offset }, activationTerm: activationSums.map { $0 + offset },
                                into: output.value + offset)
                    }
                }
            }
        })
    }

    // MARK: Integer execution

    /// The rescale of this layer's sums for an input quantized by `quantizer`.
    private func rescaling(_ quantizer: AffineQuantizer) -> Rescale {
        Rescale(activationScale: Double(quantizer.scale), qa: Int64(quantizer.maximumCode),
                qw: Int64(layer.weightQuantizers[0].maximumCode), compensated: layer.isCompensated,
                weightScales: weightScales, bias: layer.bias)
    }

    private func integerConvolution(_ conv: Conv2d, centred: Tensor, remainders: Tensor?,
                                    quantizer: AffineQuantizer) -> Tensor {
        let (batch, channels, height, width) = (centred.shape[0], centred.shape[1], centred.shape[2], centred.shape[3])
        let outputHeight = convolutionOutputSize(height, kernel: conv.kernelSize.h, stride: conv.stride.h,
                                                 padding: conv.padding.h, dilation: conv.dilation.h)
        let outputWidth = convolutionOutputSize(width, kernel: conv.kernelSize.w, stride: conv.stride.w,
                                                padding: conv.padding.w, dilation: conv.dilation.w)
        let plane = outputHeight * outputWidth
        let outputs = layer.outputs, groups = conv.groups
        let groupOutputs = outputs / groups
        let groupPatch = layer.weightCodes.count / outputs
        let patchLength = groupPatch * groups
        precondition(patchLength == channels * conv.kernelSize.h * conv.kernelSize.w,
                     "QuantizedExecutor \(layer.path): input \(centred.shape) does not fit weight \(layer.weightShape)")
        let taps = conv.kernelSize.h * conv.kernelSize.w
        if groupPatch == taps && taps <= DepthwiseGeometry.maximumTaps {
            return integerDepthwise(conv, centred: centred, remainders: remainders, quantizer: quantizer,
                                    outputHeight: outputHeight, outputWidth: outputWidth)
        }
        let weights = integerWeights
        let weightRemainders = integerRemainders
        let tile = max(1, min(plane, (1 << 22) / max(1, patchLength)))
        let rescale = rescaling(quantizer)
        var output = [Float](repeating: 0, count: batch * outputs * plane)
        var columns = [Double](repeating: 0, count: patchLength * tile)
        var remainderColumns = [Double](repeating: 0, count: remainders == nil ? 0 : patchLength * tile)
        var accumulator = [Double](repeating: 0, count: outputs * tile)
        var weightTerm = [Double](repeating: 0, count: weightRemainders == nil ? 0 : outputs * tile)
        var activationTerm = [Double](repeating: 0, count: remainders == nil ? 0 : outputs * tile)
        // conv2d's im2col of the integer codes (floats), then widened to the Float64 GEMM's operand.
        var floatColumns = [Float](repeating: 0, count: patchLength * tile)
        func fillColumns(_ codes: Tensor, image: Int, positions: Range<Int>, into columns: inout [Double]) {
            codes.withUnsafeBufferPointer { source in
                floatColumns.withUnsafeMutableBufferPointer { scratch in
                    im2colColumns(source.baseAddress! + image * channels * height * width, channels: channels,
                                  height: height, width: width, kernel: conv.kernelSize, stride: conv.stride,
                                  padding: conv.padding, dilation: conv.dilation, positions: positions,
                                  into: scratch.baseAddress!)
                    columns.withUnsafeMutableBufferPointer { columns in
                        for k in 0..<(patchLength * positions.count) { columns[k] = Double(scratch[k]) }
                    }
                }
            }
        }

        for image in 0..<batch {
            var start = 0
            while start < plane {
                let count = min(tile, plane - start)
                fillColumns(centred, image: image, positions: start..<(start + count), into: &columns)
                if let remainders {
                    fillColumns(remainders, image: image, positions: start..<(start + count), into: &remainderColumns)
                }
                for group in 0..<groups {
                    let weightOffset = group * groupOutputs * groupPatch
                    let columnOffset = group * groupPatch * count
                    let outputOffset = group * groupOutputs * count
                    product(weights, weightOffset, columns, columnOffset, &accumulator, outputOffset,
                            m: groupOutputs, n: count, k: groupPatch)
                    if let weightRemainders {
                        product(weightRemainders, weightOffset, columns, columnOffset, &weightTerm, outputOffset,
                                m: groupOutputs, n: count, k: groupPatch)
                    }
                    if remainders != nil {
                        product(weights, weightOffset, remainderColumns, columnOffset, &activationTerm, outputOffset,
                                m: groupOutputs, n: count, k: groupPatch)
                    }
                }
                output.withUnsafeMutableBufferPointer { output in
                    withSums(accumulator, weightTerm, activationTerm) { sums, weightSums, activationSums in
                        for o in 0..<outputs {
                            rescale(channel: o, count: count, sums: sums + o * count,
                                    weightTerm: weightSums.map { $0 + o * count },
                                    activationTerm: activationSums.map { $0 + o * count },
                                    into: output.baseAddress! + ((image * outputs + o) * plane + start))
                        }
                    }
                }
                start += count
            }
        }
        return Tensor(shape: [batch, outputs, outputHeight, outputWidth], scalars: output)
    }

    /// A conv with one input channel per group (depthwise, any channel multiplier): each output
    /// plane summed directly over the kernel taps in Int32 accumulators, where im2col + GEMM would
    /// run one tiny product per group. Exact: a sum has at most `maximumTaps` terms of magnitude
    /// at most 255·255 (centred 8-bit codes), far below 2^31.
    private func integerDepthwise(_ conv: Conv2d, centred: Tensor, remainders: Tensor?, quantizer: AffineQuantizer,
                                  outputHeight: Int, outputWidth: Int) -> Tensor {
        let (batch, channels, height, width) = (centred.shape[0], centred.shape[1], centred.shape[2], centred.shape[3])
        let outputs = layer.outputs, multiplier = outputs / channels
        let plane = outputHeight * outputWidth, inputPlane = height * width
        let geometry = DepthwiseGeometry(conv, height: height, width: width, outputHeight: outputHeight,
                                         outputWidth: outputWidth)
        let taps = geometry.taps
        let weights = layer.weightCodes, weightRemainders = layer.weightRemainders
        let rescale = rescaling(quantizer)
        let centredValues = centred.scalars, remainderValues = remainders?.scalars
        return Tensor(shape: [batch, outputs, outputHeight, outputWidth], unsafeUninitialized: { output in
            let target = UncheckedSendable(output)
            parallelChunks(batch * outputs, minimumPerChunk: max(1, 16_384 / max(1, plane * taps))) { tasks in
                var input = [Int32](repeating: 0, count: inputPlane)
                var inputRemainders = [Int32](repeating: 0, count: remainderValues == nil ? 0 : inputPlane)
                var accumulator = [Int32](repeating: 0, count: plane)
                var weightTerm = [Int32](repeating: 0, count: weightRemainders == nil ? 0 : plane)
                var activationTerm = [Int32](repeating: 0, count: remainderValues == nil ? 0 : plane)
                var loadedChannel = -1
                for task in tasks {
                    let image = task / outputs, o = task % outputs
                    let channel = (image * channels + o / multiplier)
                    if channel != loadedChannel {
                        for p in 0..<inputPlane { input[p] = Int32(centredValues[channel * inputPlane + p]) }
                        if let remainderValues {
                            for p in 0..<inputPlane { inputRemainders[p] = Int32(remainderValues[channel * inputPlane + p]) }
                        }
                        loadedChannel = channel
                    }
                    let kernel = weights[(o * taps)..<(o * taps + taps)]
                    geometry.convolve(input, kernel, into: &accumulator)
                    if let weightRemainders {
                        geometry.convolve(input, weightRemainders[(o * taps)..<(o * taps + taps)], into: &weightTerm)
                    }
                    if remainderValues != nil { geometry.convolve(inputRemainders, kernel, into: &activationTerm) }
                    withSums(accumulator, weightTerm, activationTerm) { sums, weightSums, activationSums in
                        rescale(channel: o, count: plane, sums: sums, weightTerm: weightSums, activationTerm: activationSums,
                                into: target.value.baseAddress! + task * plane)
                    }
                }
            }
        })
    }

    /// `C[m, n] = A[m, k] · B[k, n]` on slices of flat Double arrays (B and C with row stride `n`).
    private func product(_ a: [Double], _ aOffset: Int, _ b: [Double], _ bOffset: Int, _ c: inout [Double], _ cOffset: Int,
                         m: Int, n: Int, k: Int) {
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    gemm(m: m, n: n, k: k, a: a.baseAddress! + aOffset, lda: k, b: b.baseAddress! + bOffset, ldb: n,
                         c: c.baseAddress! + cOffset, ldc: n)
                }
            }
        }
    }

    private func integerLinear(_ linear: Linear, centred: Tensor, remainders: Tensor?, quantizer: AffineQuantizer) -> Tensor {
        let inputs = linear.inFeatures, outputs = layer.outputs
        let rows = inputs == 0 ? 0 : centred.count / inputs
        let x = centred.scalars.map(Double.init)
        let weights = integerWeights
        var accumulator = [Double](repeating: 0, count: rows * outputs)
        func transposedProduct(_ a: [Double], _ b: [Double], _ c: inout [Double]) {
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    c.withUnsafeMutableBufferPointer { c in
                        gemm(transposeB: true, m: rows, n: outputs, k: inputs, a: a.baseAddress!, lda: max(1, inputs),
                             b: b.baseAddress!, ldb: max(1, inputs), c: c.baseAddress!, ldc: outputs)
                    }
                }
            }
        }
        transposedProduct(x, weights, &accumulator)
        var weightTerm: [Double] = []
        if let weightRemainders = integerRemainders {
            weightTerm = [Double](repeating: 0, count: rows * outputs)
            transposedProduct(x, weightRemainders, &weightTerm)
        }
        var activationTerm: [Double] = []
        if let remainders {
            activationTerm = [Double](repeating: 0, count: rows * outputs)
            transposedProduct(remainders.scalars.map(Double.init), weights, &activationTerm)
        }
        let rescale = rescaling(quantizer)
        var output = [Float](repeating: 0, count: rows * outputs)
        output.withUnsafeMutableBufferPointer { output in
            withSums(accumulator, weightTerm, activationTerm) { sums, weightSums, activationSums in
                for index in 0..<(rows * outputs) {  // [rows, outputs]: one value per call
                    rescale(channel: index % outputs, count: 1, sums: sums + index, weightTerm: weightSums.map { $0 + index },
                            activationTerm: activationSums.map { $0 + index }, into: output.baseAddress! + index)
                }
            }
        }
        return Tensor(shape: Array(centred.shape.dropLast()) + [outputs], scalars: output)
    }
}

/// Where each kernel tap of a depthwise conv lands: for tap (i, j), the output rows and columns
/// whose input sample lies inside the image (the others read padding, the centred integer 0,
/// and add nothing).
struct DepthwiseGeometry {
    /// Taps of the largest kernel summed in Int32 (255·255·maximumTaps < 2^31).
    static let maximumTaps = 32_768
    let taps, width, outputWidth: Int
    let strideH, strideW: Int
    /// Per tap: its valid output rows and columns and the input offset of output (0, 0).
    let rows: [Range<Int>], columns: [Range<Int>], origins: [(h: Int, w: Int)]

    init(_ conv: Conv2d, height: Int, width: Int, outputHeight: Int, outputWidth: Int) {
        taps = conv.kernelSize.h * conv.kernelSize.w
        self.width = width
        self.outputWidth = outputWidth
        strideH = conv.stride.h
        strideW = conv.stride.w
        var rows: [Range<Int>] = [], columns: [Range<Int>] = [], origins: [(h: Int, w: Int)] = []
        for i in 0..<conv.kernelSize.h {
            for j in 0..<conv.kernelSize.w {
                let h = i * conv.dilation.h - conv.padding.h, w = j * conv.dilation.w - conv.padding.w
                rows.append(validOutputs(offset: h, stride: conv.stride.h, size: height, outputSize: outputHeight))
                columns.append(validOutputs(offset: w, stride: conv.stride.w, size: width, outputSize: outputWidth))
                origins.append((h, w))
            }
        }
        self.rows = rows
        self.columns = columns
        self.origins = origins
    }

    /// `output = input ⊛ kernel` for one plane (`kernel`: the `taps` codes of one output channel).
    func convolve(_ input: [Int32], _ kernel: ArraySlice<Int32>, into output: inout [Int32]) {
        input.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { output in
                let x = input.baseAddress!, y = output.baseAddress!
                y.update(repeating: 0, count: output.count)
                for tap in 0..<taps {
                    let w = kernel[kernel.startIndex + tap]
                    guard w != 0 else { continue }
                    let (h0, w0) = origins[tap]
                    let columnRange = columns[tap]
                    guard !columnRange.isEmpty else { continue }
                    let first = columnRange.lowerBound, count = columnRange.count
                    for oh in rows[tap] {
                        // The input sample of output (oh, first), inside the image.
                        let source = x + ((oh * strideH + h0) * width + first * strideW + w0)
                        let row = y + (oh * outputWidth + first)
                        if strideW == 1 {
                            for k in 0..<count { row[k] &+= w &* source[k] }
                        } else {
                            for k in 0..<count { row[k] &+= w &* source[k * strideW] }
                        }
                    }
                }
            }
        }
    }
}

/// Exact integer sums as the executor holds them: floats (simulation), Float64 (GEMM), Int32
/// (direct); each is exactly a Double.
protocol ExactSum {
    var exactDouble: Double { get }
}
extension Float: ExactSum { var exactDouble: Double { Double(self) } }
extension Double: ExactSum { var exactDouble: Double { self } }
extension Int32: ExactSum { var exactDouble: Double { Double(self) } }

/// One quantized layer's output from its exact sums: `s_a·s_w[o]·(A + C) + bias[o]`, with
/// `C = roundDivHalfEven(Q_a·(X_c ⊛ D_w) + Q_w·(D_a ⊛ W_c), Q_a·Q_w)` when compensated. The
/// integers are carried as Doubles: exact, as every one stays below 2^53.
struct Rescale {
    let activationScale: Double
    let qa: Int64, qw: Int64
    let compensated: Bool
    let weightScales: [Float]
    let bias: [Float]?

    /// `count` consecutive outputs of channel `o` (the compensation terms nil: zero).
    @inline(__always)
    func callAsFunction<S: ExactSum>(channel o: Int, count: Int, sums: UnsafePointer<S>, weightTerm: UnsafePointer<S>?,
                                     activationTerm: UnsafePointer<S>?, into output: UnsafeMutablePointer<Float>) {
        let scale = activationScale * Double(weightScales[o]), offset = bias?[o] ?? 0
        if compensated {
            let divide = HalfEvenDivision(divisor: qa * qw)
            let qa = Double(qa), qw = Double(qw)
            // Q_a·Q_w = (2^a − 1)(2^w − 1) is odd, so no quotient is a tie and the rounded product
            // alone is exact for every output, flagging any term past its bound (none on real
            // layers); a flagged run is redone with the full division. Branch-free: it vectorizes.
            precondition(divide.divisor & 1 == 1, "Rescale: Q_a·Q_w = \(divide.divisor) must be odd")
            @inline(__always) func run(_ terms: (Int) -> Double) {
                var outside: UInt8 = 0
                for p in 0..<count {
                    let term = terms(p)
                    outside |= abs(term) < divide.bound ? 0 : 1
                    output[p] = Float(scale * (sums[p].exactDouble + divide.oddQuotientBelowBound(term))) + offset
                }
                guard outside != 0 else { return }
                for p in 0..<count { output[p] = Float(scale * (sums[p].exactDouble + divide(terms(p)))) + offset }
            }
            switch (weightTerm, activationTerm) {
            case let (weightTerm?, activationTerm?): run { qa * weightTerm[$0].exactDouble + qw * activationTerm[$0].exactDouble }
            case let (weightTerm?, nil): run { qa * weightTerm[$0].exactDouble }
            case let (nil, activationTerm?): run { qw * activationTerm[$0].exactDouble }
            case (nil, nil): run { _ in 0 }
            }
        } else {
            for p in 0..<count { output[p] = Float(scale * sums[p].exactDouble) + offset }
        }
    }
}

/// Base pointers of the sums and their two compensation terms (an empty term: nil); nothing runs
/// without sums.
@inline(__always)
func withSums<S>(_ sums: [S], _ weightTerm: [S], _ activationTerm: [S],
                 _ body: (UnsafePointer<S>, UnsafePointer<S>?, UnsafePointer<S>?) -> Void) {
    guard !sums.isEmpty else { return }
    sums.withUnsafeBufferPointer { sums in
        weightTerm.withUnsafeBufferPointer { weightTerm in
            activationTerm.withUnsafeBufferPointer { activationTerm in
                body(sums.baseAddress!, weightTerm.isEmpty ? nil : weightTerm.baseAddress,
                     activationTerm.isEmpty ? nil : activationTerm.baseAddress)
            }
        }
    }
}
