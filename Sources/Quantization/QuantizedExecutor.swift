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
/// - `integer`: im2col of the centred integers and Float64 GEMM (exact below 2^53).
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
        let qa = Int64(quantizer.maximumCode), qw = Int64(layer.weightQuantizers[0].maximumCode)
        let outputs = layer.outputs
        let scale = Double(quantizer.scale)
        let sums = accumulator.scalars, weightValues = weightTerm?.scalars, activationValues = activationTerm?.scalars
        return Tensor(shape: accumulator.shape) { values in
            let pointer = values.baseAddress!
            parallelChunks(values.count, minimumPerChunk: 65_536) { range in
                for index in range {
                    pointer[index] = rescaled(
                        accumulator: Double(sums[index]), weightTerm: Double(weightValues?[index] ?? 0),
                        activationTerm: Double(activationValues?[index] ?? 0), o: (index / plane) % outputs,
                        activationScale: scale, qa: qa, qw: qw)
                }
            }
        }
    }

    // MARK: Integer execution

    /// One output value from exact integer sums: `s_a·s_w·(A + C) + bias`.
    @inline(__always)
    private func rescaled(accumulator: Double, weightTerm: Double, activationTerm: Double, o: Int,
                          activationScale: Double, qa: Int64, qw: Int64) -> Float {
        var total = Int64(accumulator)
        if layer.isCompensated {
            total += roundDivHalfEven(qa * Int64(weightTerm) + qw * Int64(activationTerm), qa * qw)
        }
        return Float(activationScale * Double(weightScales[o]) * Double(total)) + (layer.bias?[o] ?? 0)
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
        let weights = integerWeights
        let weightRemainders = integerRemainders
        let tile = max(1, min(plane, (1 << 22) / max(1, patchLength)))
        let qa = Int64(quantizer.maximumCode), qw = Int64(layer.weightQuantizers[0].maximumCode)
        let activationScale = Double(quantizer.scale)
        var output = [Float](repeating: 0, count: batch * outputs * plane)
        var columns = [Double](repeating: 0, count: patchLength * tile)
        var remainderColumns = [Double](repeating: 0, count: remainders == nil ? 0 : patchLength * tile)
        var accumulator = [Double](repeating: 0, count: outputs * tile)
        var weightTerm = [Double](repeating: 0, count: weightRemainders == nil ? 0 : outputs * tile)
        var activationTerm = [Double](repeating: 0, count: remainders == nil ? 0 : outputs * tile)
        let geometry = PatchGeometry(conv, channels: channels, height: height, width: width, outputWidth: outputWidth)

        for image in 0..<batch {
            var start = 0
            while start < plane {
                let count = min(tile, plane - start)
                centred.withUnsafeBufferPointer { source in
                    geometry.columns(source.baseAddress! + image * channels * height * width, positions: start..<(start + count),
                                     into: &columns)
                }
                if let remainders {
                    remainders.withUnsafeBufferPointer { source in
                        geometry.columns(source.baseAddress! + image * channels * height * width,
                                         positions: start..<(start + count), into: &remainderColumns)
                    }
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
                for o in 0..<outputs {
                    for p in 0..<count {
                        let index = o * count + p
                        output[(image * outputs + o) * plane + start + p] = rescaled(
                            accumulator: accumulator[index], weightTerm: weightTerm.isEmpty ? 0 : weightTerm[index],
                            activationTerm: activationTerm.isEmpty ? 0 : activationTerm[index], o: o,
                            activationScale: activationScale, qa: qa, qw: qw)
                    }
                }
                start += count
            }
        }
        return Tensor(shape: [batch, outputs, outputHeight, outputWidth], scalars: output)
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
        let qa = Int64(quantizer.maximumCode), qw = Int64(layer.weightQuantizers[0].maximumCode)
        var output = [Float](repeating: 0, count: rows * outputs)
        for index in output.indices {
            output[index] = rescaled(accumulator: accumulator[index], weightTerm: weightTerm.isEmpty ? 0 : weightTerm[index],
                                     activationTerm: activationTerm.isEmpty ? 0 : activationTerm[index], o: index % outputs,
                                     activationScale: Double(quantizer.scale), qa: qa, qw: qw)
        }
        return Tensor(shape: Array(centred.shape.dropLast()) + [outputs], scalars: output)
    }
}

/// im2col of one image into Float64 columns `[C·kH·kW, positions]` (rows channel-major, as the
/// weight's `[I/groups·kH·kW]`), zero where the conv pads.
struct PatchGeometry {
    let channels, height, width, outputWidth: Int
    let kernel, stride, padding, dilation: Size2

    init(_ conv: Conv2d, channels: Int, height: Int, width: Int, outputWidth: Int) {
        self.channels = channels
        self.height = height
        self.width = width
        self.outputWidth = outputWidth
        kernel = conv.kernelSize
        stride = conv.stride
        padding = conv.padding
        dilation = conv.dilation
    }

    func columns(_ image: UnsafePointer<Float>, positions: Range<Int>, into columns: inout [Double]) {
        let count = positions.count
        let rows = channels * kernel.h * kernel.w
        precondition(columns.count >= rows * count, "PatchGeometry: column buffer too small")
        let geometry = self
        columns.withUnsafeMutableBufferPointer { buffer in
            let target = buffer.baseAddress!
            parallelChunks(rows, minimumPerChunk: max(1, 16_384 / max(1, count))) { rowRange in
                for row in rowRange {
                    let c = row / (geometry.kernel.h * geometry.kernel.w)
                    let i = (row / geometry.kernel.w) % geometry.kernel.h
                    let j = row % geometry.kernel.w
                    let plane = image + c * geometry.height * geometry.width
                    let destination = target + row * count
                    for (column, position) in positions.enumerated() {
                        let oh = position / geometry.outputWidth, ow = position % geometry.outputWidth
                        let ih = oh * geometry.stride.h - geometry.padding.h + i * geometry.dilation.h
                        let iw = ow * geometry.stride.w - geometry.padding.w + j * geometry.dilation.w
                        destination[column] = ih >= 0 && ih < geometry.height && iw >= 0 && iw < geometry.width
                            ? Double(plane[ih * geometry.width + iw]) : 0
                    }
                }
            }
        }
    }
}
