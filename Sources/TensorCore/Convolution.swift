// 2-D convolution as torch.nn.functional.conv2d: im2col + sgemm, a 1×1 path and a direct depthwise kernel.

/// The sizes of one `conv2d` call, checked once.
struct ConvolutionGeometry {
    let batch: Int
    let inputChannels: Int
    let inputHeight: Int
    let inputWidth: Int
    let outputChannels: Int
    let groups: Int
    let kernel: Size2
    let stride: Size2
    let padding: Size2
    let dilation: Size2
    let outputHeight: Int
    let outputWidth: Int

    init(input: [Int], weight: [Int], stride: Size2, padding: Size2, dilation: Size2, groups: Int) {
        precondition(input.count == 4, "conv2d: input must be [N, C, H, W], got \(input)")
        precondition(weight.count == 4, "conv2d: weight must be [O, C/groups, kH, kW], got \(weight)")
        precondition(groups >= 1, "conv2d: groups \(groups) < 1")
        precondition(stride.h >= 1 && stride.w >= 1, "conv2d: stride \(stride) < 1")
        precondition(dilation.h >= 1 && dilation.w >= 1, "conv2d: dilation \(dilation) < 1")
        precondition(padding.h >= 0 && padding.w >= 0, "conv2d: negative padding \(padding)")
        precondition(input[1] % groups == 0 && weight[0] % groups == 0,
                     "conv2d: \(input[1]) input and \(weight[0]) output channels not divisible by groups \(groups)")
        precondition(weight[1] * groups == input[1],
                     "conv2d: weight \(weight) expects \(weight[1] * groups) input channels, input is \(input)")
        batch = input[0]
        inputChannels = input[1]
        inputHeight = input[2]
        inputWidth = input[3]
        outputChannels = weight[0]
        self.groups = groups
        kernel = Size2(weight[2], weight[3])
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        outputHeight = convolutionOutputSize(inputHeight, kernel: kernel.h, stride: stride.h,
                                             padding: padding.h, dilation: dilation.h)
        outputWidth = convolutionOutputSize(inputWidth, kernel: kernel.w, stride: stride.w,
                                            padding: padding.w, dilation: dilation.w)
        precondition(outputHeight > 0 && outputWidth > 0,
                     "conv2d: kernel \(kernel) dilation \(dilation) larger than padded input \(input)")
    }

    var groupInputChannels: Int { inputChannels / groups }
    var groupOutputChannels: Int { outputChannels / groups }
    var outputPlane: Int { outputHeight * outputWidth }
    var inputPlane: Int { inputHeight * inputWidth }
    /// Rows of one group's column matrix: `C/groups · kH · kW`.
    var groupPatch: Int { groupInputChannels * kernel.h * kernel.w }

    /// Every output channel reads exactly one input channel (torch's depthwise, with or without
    /// a channel multiplier).
    var isDepthwise: Bool { groups > 1 && groups == inputChannels }
    /// The input image already is the `[C, H·W]` column matrix.
    var isPointwise: Bool {
        kernel == Size2(1) && stride == Size2(1) && padding == Size2(0)
    }
}

/// torch's convolution output size: `⌊(in + 2·pad − dilation·(kernel − 1) − 1) / stride⌋ + 1`.
@inlinable
public func convolutionOutputSize(_ inputSize: Int, kernel: Int, stride: Int, padding: Int, dilation: Int) -> Int {
    let span = inputSize + 2 * padding - dilation * (kernel - 1) - 1
    return span < 0 ? 0 : span / stride + 1
}

/// 2-D cross-correlation, as `torch.nn.functional.conv2d`.
///
/// - Parameters:
///   - input: `[N, C, H, W]`.
///   - weight: `[O, C/groups, kH, kW]`.
///   - bias: `[O]` or nil.
/// - Returns: `[N, O, OH, OW]` with `OH = ⌊(H + 2·padding.h − dilation.h·(kH − 1) − 1) / stride.h⌋ + 1`
///   (and likewise `OW`).
public func conv2d(_ input: Tensor, weight: Tensor, bias: Tensor?, stride: Size2 = 1, padding: Size2 = 0,
                   dilation: Size2 = 1, groups: Int = 1) -> Tensor {
    convolved(input, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups,
              route: nil)
}

/// How `conv2d` computes one convolution.
enum ConvolutionRoute: Equatable {
    /// The direct kernel (`groups == C`).
    case depthwise
    /// GEMMs straight on the input, which already is the `[C, H·W]` matrix (1×1, stride 1, no padding).
    case pointwise(Im2colPlan)
    /// GEMMs on column matrices built by im2col.
    case im2col(Im2colPlan)

    static func choose(for geometry: ConvolutionGeometry, threads: Int) -> ConvolutionRoute {
        if geometry.isDepthwise { return .depthwise }
        let plan = Im2colPlan.choose(for: geometry, threads: threads)
        return geometry.isPointwise ? .pointwise(plan) : .im2col(plan)
    }
}

/// `conv2d` along a given route (tests reach every path with it); nil chooses.
/// `.pointwise` needs a pointwise geometry and `.depthwise` a depthwise one.
func convolved(_ input: Tensor, weight: Tensor, bias: Tensor?, stride: Size2, padding: Size2, dilation: Size2,
               groups: Int, route: ConvolutionRoute?) -> Tensor {
    let geometry = ConvolutionGeometry(input: input.shape, weight: weight.shape, stride: stride,
                                       padding: padding, dilation: dilation, groups: groups)
    if let bias {
        precondition(bias.shape == [geometry.outputChannels],
                     "conv2d: bias \(bias.shape) does not match \(geometry.outputChannels) output channels")
    }
    let outputShape = [geometry.batch, geometry.outputChannels, geometry.outputHeight, geometry.outputWidth]
    guard geometry.batch > 0, geometry.outputChannels > 0 else { return Tensor(zeros: outputShape) }
    guard geometry.inputChannels > 0 else {
        // An empty sum: every output is its bias.
        return Tensor(shape: outputShape) { output in
            fillWithBias(output.baseAddress!, bias: bias?.scalars, channels: geometry.outputChannels,
                         plane: geometry.outputPlane, batch: geometry.batch)
        }
    }
    let route = route ?? ConvolutionRoute.choose(for: geometry, threads: Threads.count)
    switch route {
    case .depthwise: precondition(geometry.isDepthwise, "conv2d: depthwise route for \(weight.shape), groups \(groups)")
    case .pointwise: precondition(geometry.isPointwise, "conv2d: pointwise route for \(weight.shape), stride \(stride)")
    case .im2col: break
    }
    let biasValues = bias?.scalars
    return Tensor(shape: outputShape) { output in
        input.withUnsafeBufferPointer { input in
            weight.withUnsafeBufferPointer { weight in
                let (source, filters, result) = (input.baseAddress!, weight.baseAddress!, output.baseAddress!)
                switch route {
                case .depthwise:
                    depthwiseConvolution(source, weight: filters, bias: biasValues, output: result, geometry: geometry)
                case .pointwise(.wholeImage):
                    pointwiseConvolution(source, weight: filters, bias: biasValues, output: result, geometry: geometry)
                case .im2col(.wholeImage):
                    wholeImageIm2colConvolution(source, weight: filters, bias: biasValues, output: result,
                                                geometry: geometry)
                case .pointwise(.tiled(let columns)):
                    tiledConvolution(source, weight: filters, bias: biasValues, output: result, geometry: geometry,
                                     tileColumns: columns, im2col: false)
                case .im2col(.tiled(let columns)):
                    tiledConvolution(source, weight: filters, bias: biasValues, output: result, geometry: geometry,
                                     tileColumns: columns, im2col: true)
                }
            }
        }
    }
}

/// Writes `bias[o]` (or 0) to every element of each `[plane]` row of `batch · channels` rows.
private func fillWithBias(_ output: UnsafeMutablePointer<Float>, bias: [Float]?, channels: Int, plane: Int, batch: Int) {
    let rows = batch * channels
    parallelChunks(rows, minimumPerChunk: max(1, 65536 / max(1, plane))) { range in
        for row in range {
            (output + row * plane).initialize(repeating: bias?[row % channels] ?? 0, count: plane)
        }
    }
}

// MARK: - 1×1, stride 1, no padding

/// Per image and group, `W_g [O/g, C/g] × X_g [C/g, H·W]`: the input needs no rearranging.
private func pointwiseConvolution(_ input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: [Float]?,
                                  output: UnsafeMutablePointer<Float>, geometry: ConvolutionGeometry) {
    let plane = geometry.outputPlane
    let groupIn = geometry.groupInputChannels, groupOut = geometry.groupOutputChannels
    if bias != nil {
        fillWithBias(output, bias: bias, channels: geometry.outputChannels, plane: plane, batch: geometry.batch)
    }
    for image in 0..<geometry.batch {
        for group in 0..<geometry.groups {
            gemm(m: groupOut, n: plane, k: groupIn,
                 a: weight + group * groupOut * groupIn, lda: groupIn,
                 b: input + (image * geometry.inputChannels + group * groupIn) * plane, ldb: plane,
                 beta: bias == nil ? 0 : 1,
                 c: output + (image * geometry.outputChannels + group * groupOut) * plane, ldc: plane)
        }
    }
}

// MARK: - General convolution: im2col + sgemm

/// How a GEMM convolution is split over threads.
enum Im2colPlan: Equatable {
    /// Workers take tiles of up to `columns` output positions of one image and group, build
    /// the tile's column matrix (sized to stay in L2; none for pointwise convolutions) and
    /// multiply it with a single-threaded GEMM. No worker waits for another until the end.
    case tiled(columns: Int)
    /// All threads build one image's whole column matrix (none for pointwise convolutions),
    /// then one multi-threaded GEMM per group; for planes too small to share out as tiles.
    case wholeImage

    /// Floats of one column tile (2 MiB): near the L2 cache of one core; larger tiles measured
    /// no faster, and smaller ones spend more on the weights each tile's GEMM repacks.
    static let tileFloats = 524_288
    /// Tiles have at least this many columns: thinner GEMMs run measurably slower.
    static let minimumTileColumns = 256

    /// The plan for `geometry` on `threads` threads: tiles of about `tileFloats` floats and not
    /// thinner than the minimum; with several threads, more tiles until there are four jobs
    /// (images × groups × tiles) a thread, or else a job count the threads share exactly; the
    /// whole image when neither can be had.
    static func choose(for geometry: ConvolutionGeometry, threads: Int) -> Im2colPlan {
        let plane = geometry.outputPlane
        let jobsPerTile = geometry.batch * geometry.groups
        let mostTiles = max(1, plane / minimumTileColumns)
        // Pointwise convolutions build no column matrix: their tiles only share out the work.
        let columnFloats = geometry.isPointwise ? 0 : plane * geometry.groupPatch
        var tiles = max(1, min(mostTiles, (columnFloats + tileFloats - 1) / tileFloats))
        if threads > 1 {
            // Enough jobs for the queue to balance, else a number the threads share exactly.
            let candidates = tiles...max(tiles, mostTiles)
            if let many = candidates.first(where: { jobsPerTile * $0 >= 4 * threads }) {
                tiles = many
            } else if let even = candidates.first(where: { jobsPerTile * $0 % threads == 0 }) {
                tiles = even
            } else {
                return .wholeImage
            }
        }
        return .tiled(columns: (plane + tiles - 1) / tiles)
    }
}

private func wholeImageIm2colConvolution(_ input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: [Float]?,
                                         output: UnsafeMutablePointer<Float>, geometry: ConvolutionGeometry) {
    let plane = geometry.outputPlane
    let patch = geometry.groupPatch
    let groupOut = geometry.groupOutputChannels
    let rowsPerChannel = geometry.kernel.h * geometry.kernel.w
    // Column matrix of one image: [C·kH·kW, OH·OW], group g's rows contiguous.
    let columns = UnsafeMutablePointer<Float>.allocate(capacity: geometry.inputChannels * rowsPerChannel * plane)
    defer { columns.deallocate() }
    if bias != nil {
        fillWithBias(output, bias: bias, channels: geometry.outputChannels, plane: plane, batch: geometry.batch)
    }
    let segments = Im2colSegment.covering(0..<plane, outputWidth: geometry.outputWidth)
    for image in 0..<geometry.batch {
        let imageInput = input + image * geometry.inputChannels * geometry.inputPlane
        parallelChunks(geometry.inputChannels, minimumPerChunk: max(1, 32768 / (rowsPerChannel * plane))) { channels in
            im2col(imageInput, geometry: geometry, channels: channels, segments: segments,
                   into: columns + channels.lowerBound * rowsPerChannel * plane, rowStride: plane)
        }
        for group in 0..<geometry.groups {
            gemm(m: groupOut, n: plane, k: patch,
                 a: weight + group * groupOut * patch, lda: patch,
                 b: columns + group * patch * plane, ldb: plane,
                 beta: bias == nil ? 0 : 1,
                 c: output + (image * geometry.outputChannels + group * groupOut) * plane, ldc: plane)
        }
    }
}

private func tiledConvolution(_ input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: [Float]?,
                              output: UnsafeMutablePointer<Float>, geometry: ConvolutionGeometry, tileColumns: Int,
                              im2col buildsColumns: Bool) {
    let plane = geometry.outputPlane
    let patch = geometry.groupPatch
    let groupIn = geometry.groupInputChannels, groupOut = geometry.groupOutputChannels
    let tile = min(max(1, tileColumns), plane)
    let tilesPerPlane = (plane + tile - 1) / tile
    let jobs = geometry.batch * geometry.groups * tilesPerPlane
    // Every tile of a plane has the same segments, shifted: precompute them per tile index.
    let tileSegments = buildsColumns ? (0..<tilesPerPlane).map { index in
        Im2colSegment.covering((index * tile)..<min(plane, (index + 1) * tile), outputWidth: geometry.outputWidth)
    } : []
    withSingleThreadedBLAS {
        parallelJobs(jobs, setUp: { _ in ScratchBuffer(capacity: buildsColumns ? patch * tile : 0) }) { columns, job in
            let tileIndex = job % tilesPerPlane
            let group = (job / tilesPerPlane) % geometry.groups
            let image = job / (tilesPerPlane * geometry.groups)
            let start = tileIndex * tile
            let count = min(tile, plane - start)
            let groupInput = input + (image * geometry.inputChannels + group * groupIn) * geometry.inputPlane
            // The GEMM's right operand: the tile's column matrix, or the input's own columns.
            let right: UnsafePointer<Float>, rightStride: Int
            if buildsColumns {
                im2col(groupInput, geometry: geometry, channels: 0..<groupIn, segments: tileSegments[tileIndex],
                       into: columns.pointer, rowStride: count)
                (right, rightStride) = (UnsafePointer(columns.pointer), count)
            } else {
                (right, rightStride) = (groupInput + start, plane)
            }
            let outputTile = output + (image * geometry.outputChannels + group * groupOut) * plane + start
            if let bias {
                for o in 0..<groupOut {
                    (outputTile + o * plane).initialize(repeating: bias[group * groupOut + o], count: count)
                }
            }
            gemm(m: groupOut, n: count, k: patch,
                 a: weight + group * groupOut * patch, lda: patch,
                 b: right, ldb: rightStride,
                 beta: bias == nil ? 0 : 1,
                 c: outputTile, ldc: plane)
        }
    }
}

/// Uninitialized Float storage owned by one worker, freed with it.
final class ScratchBuffer {
    let pointer: UnsafeMutablePointer<Float>
    init(capacity: Int) { pointer = .allocate(capacity: max(1, capacity)) }
    deinit { pointer.deallocate() }
}

/// A run of output positions within one output row: columns `start..<end` of row `row`,
/// written at `offset` in a column-matrix row.
struct Im2colSegment {
    let row: Int
    let start: Int
    let end: Int
    let offset: Int

    /// The segments of the output positions `positions` (row-major over `[OH, outputWidth]`).
    static func covering(_ positions: Range<Int>, outputWidth: Int) -> [Im2colSegment] {
        var segments: [Im2colSegment] = []
        var position = positions.lowerBound
        while position < positions.upperBound {
            let row = position / outputWidth
            let start = position - row * outputWidth
            let end = min(outputWidth, start + positions.upperBound - position)
            segments.append(Im2colSegment(row: row, start: start, end: end, offset: position - positions.lowerBound))
            position += end - start
        }
        return segments
    }
}

/// Writes the column-matrix rows of `channels` (of `image`, one image's `[C, H, W]`) for the
/// output positions of `segments`: row `(c·kH + i)·kW + j` holds input
/// `(c, oh·sH − pH + i·dH, ow·sW − pW + j·dW)`, zero outside the input. Rows are `rowStride`
/// apart, the first channel of `channels` starting at `destination`.
@inline(__always)
func im2col(_ image: UnsafePointer<Float>, geometry: ConvolutionGeometry, channels: Range<Int>,
                    segments: [Im2colSegment], into destination: UnsafeMutablePointer<Float>, rowStride: Int) {
    let height = geometry.inputHeight, width = geometry.inputWidth
    let kernelH = geometry.kernel.h, kernelW = geometry.kernel.w
    let strideH = geometry.stride.h, strideW = geometry.stride.w
    let padH = geometry.padding.h, padW = geometry.padding.w
    let dilationH = geometry.dilation.h, dilationW = geometry.dilation.w
    var row = destination
    segments.withUnsafeBufferPointer { segments in
        for channel in channels {
            let channelInput = image + channel * height * width
            for i in 0..<kernelH {
                for j in 0..<kernelW {
                    // Output columns whose input column iw = ow·sW − pW + j·dW lies in [0, W).
                    let offsetW = j * dilationW - padW
                    let inside = validOutputs(offset: offsetW, stride: strideW, size: width)
                    let validLow = inside.lowerBound, validHigh = inside.upperBound
                    for segment in segments {
                        let target = row + segment.offset
                        let ih = segment.row * strideH - padH + i * dilationH
                        if ih < 0 || ih >= height {
                            target.initialize(repeating: 0, count: segment.end - segment.start)
                            continue
                        }
                        let low = min(max(validLow, segment.start), segment.end)
                        let high = max(min(validHigh, segment.end), low)
                        for ow in segment.start..<low { target[ow - segment.start] = 0 }
                        let source = channelInput + ih * width + offsetW
                        let copied = target - segment.start
                        if strideW == 1 {
                            (copied + low).update(from: source + low, count: high - low)
                        } else if strideW == 2 {
                            // A constant stride lets the compiler vectorize the gather.
                            for ow in low..<high { copied[ow] = source[2 * ow] }
                        } else {
                            for ow in low..<high { copied[ow] = source[ow * strideW] }
                        }
                        for ow in high..<segment.end { copied[ow] = 0 }
                    }
                    row += rowStride
                }
            }
        }
    }
}

/// The outputs `o` in `0..<outputSize` whose input sample `o·stride + offset` lies in `0..<size`
/// (empty: `0..<0`).
public func validOutputs(offset: Int, stride: Int, size: Int, outputSize: Int = Int.max) -> Range<Int> {
    let low = offset >= 0 ? 0 : (-offset + stride - 1) / stride
    let high = size - 1 - offset < 0 ? 0 : min(outputSize, (size - 1 - offset) / stride + 1)
    return low < high ? low..<high : 0..<0
}

/// One image's (`[C, H, W]`) column matrix for the output positions `positions` (row-major
/// over the output plane), as `conv2d` builds it: `[C·kH·kW, positions.count]`, row
/// `(c·kH + i)·kW + j` holding input `(c, oh·sH − pH + i·dH, ow·sW − pW + j·dW)`, zero outside
/// the input; in parallel over channels. For callers that multiply the columns themselves.
public func im2colColumns(_ image: UnsafePointer<Float>, channels: Int, height: Int, width: Int, kernel: Size2,
                          stride: Size2, padding: Size2, dilation: Size2, positions: Range<Int>,
                          into destination: UnsafeMutablePointer<Float>) {
    let geometry = ConvolutionGeometry(input: [1, channels, height, width], weight: [1, channels, kernel.h, kernel.w],
                                       stride: stride, padding: padding, dilation: dilation, groups: 1)
    let segments = Im2colSegment.covering(positions, outputWidth: geometry.outputWidth)
    let rowsPerChannel = kernel.h * kernel.w, count = positions.count
    parallelChunks(channels, minimumPerChunk: max(1, 32768 / max(1, rowsPerChannel * count))) { range in
        im2col(image, geometry: geometry, channels: range, segments: segments,
               into: destination + range.lowerBound * rowsPerChannel * count, rowStride: count)
    }
}

// MARK: - Depthwise

/// Direct kernel for `groups == C`: output channel `o` reads input channel `o / (O/C)`.
private func depthwiseConvolution(_ input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: [Float]?,
                                  output: UnsafeMutablePointer<Float>, geometry: ConvolutionGeometry) {
    let channels = geometry.inputChannels, outputChannels = geometry.outputChannels
    let multiplier = outputChannels / channels
    let height = geometry.inputHeight, width = geometry.inputWidth
    let outputHeight = geometry.outputHeight, outputWidth = geometry.outputWidth
    let kernelH = geometry.kernel.h, kernelW = geometry.kernel.w
    let strideH = geometry.stride.h, strideW = geometry.stride.w
    let padH = geometry.padding.h, padW = geometry.padding.w
    let dilationH = geometry.dilation.h, dilationW = geometry.dilation.w
    let planeWork = geometry.outputPlane * kernelH * kernelW
    let isThreeByThree = kernelH == 3 && kernelW == 3
    parallelChunks(geometry.batch * outputChannels, minimumPerChunk: max(1, 32768 / max(1, planeWork))) { planes in
        // Valid output-column range for each kernel column j, as in im2col.
        var validLow = [Int](repeating: 0, count: kernelW)
        var validHigh = [Int](repeating: 0, count: kernelW)
        for j in 0..<kernelW {
            let offsetW = j * dilationW - padW
            validLow[j] = min(outputWidth, offsetW >= 0 ? 0 : (-offsetW + strideW - 1) / strideW)
            validHigh[j] = max(validLow[j], min(outputWidth, width - 1 - offsetW < 0 ? 0 : (width - 1 - offsetW) / strideW + 1))
        }
        // Output columns whose three taps all lie inside the input (3×3 kernels).
        let interiorLow = validLow.max() ?? 0
        let interiorHigh = max(interiorLow, validHigh.min() ?? 0)
        for planeIndex in planes {
            let image = planeIndex / outputChannels, o = planeIndex % outputChannels
            let source = input + (image * channels + o / multiplier) * height * width
            let taps = weight + o * kernelH * kernelW
            let destination = output + planeIndex * outputHeight * outputWidth
            let start = bias?[o] ?? 0
            for oh in 0..<outputHeight {
                let outputRow = destination + oh * outputWidth
                let firstRow = oh * strideH - padH
                if isThreeByThree && firstRow >= 0 && firstRow + 2 * dilationH < height {
                    // All nine taps inside the input rows: one pass over the interior columns.
                    let row0 = source + firstRow * width - padW
                    let row1 = row0 + dilationH * width, row2 = row1 + dilationH * width
                    let (w0, w1, w2) = (taps[0], taps[1], taps[2])
                    let (w3, w4, w5) = (taps[3], taps[4], taps[5])
                    let (w6, w7, w8) = (taps[6], taps[7], taps[8])
                    let d = dilationW
                    if strideW == 1 {
                        for ow in interiorLow..<interiorHigh {
                            var sum = start + w0 * row0[ow] + w1 * row0[ow + d] + w2 * row0[ow + 2 * d]
                            sum += w3 * row1[ow] + w4 * row1[ow + d] + w5 * row1[ow + 2 * d]
                            sum += w6 * row2[ow] + w7 * row2[ow + d] + w8 * row2[ow + 2 * d]
                            outputRow[ow] = sum
                        }
                    } else {
                        for ow in interiorLow..<interiorHigh {
                            let x = ow * strideW
                            var sum = start + w0 * row0[x] + w1 * row0[x + d] + w2 * row0[x + 2 * d]
                            sum += w3 * row1[x] + w4 * row1[x + d] + w5 * row1[x + 2 * d]
                            sum += w6 * row2[x] + w7 * row2[x + d] + w8 * row2[x + 2 * d]
                            outputRow[ow] = sum
                        }
                    }
                    // The border columns, tap by tap.
                    func border(_ ow: Int) {
                        var sum = start
                        for i in 0..<3 {
                            let inputRow = source + (firstRow + i * dilationH) * width
                            for j in 0..<3 {
                                let iw = ow * strideW - padW + j * dilationW
                                if iw >= 0 && iw < width { sum += taps[i * 3 + j] * inputRow[iw] }
                            }
                        }
                        outputRow[ow] = sum
                    }
                    for ow in 0..<interiorLow { border(ow) }
                    for ow in interiorHigh..<outputWidth { border(ow) }
                    continue
                }
                // Row by row and tap by tap, skipping taps outside the input.
                outputRow.initialize(repeating: start, count: outputWidth)
                for i in 0..<kernelH {
                    let ih = oh * strideH - padH + i * dilationH
                    if ih < 0 || ih >= height { continue }
                    let inputRow = source + ih * width
                    for j in 0..<kernelW {
                        let tap = taps[i * kernelW + j]
                        let shifted = inputRow + (j * dilationW - padW)
                        let low = validLow[j], high = validHigh[j]
                        if strideW == 1 {
                            for ow in low..<high { outputRow[ow] += tap * shifted[ow] }
                        } else {
                            for ow in low..<high { outputRow[ow] += tap * shifted[ow * strideW] }
                        }
                    }
                }
            }
        }
    }
}
