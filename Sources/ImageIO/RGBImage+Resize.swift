// PIL's Image.resize(size, Image.BILINEAR) for 8-bit RGB (libImaging/Resample.c, Pillow 9.4).

/// PIL's fixed-point precision for 8-bit resampling: 32 - 8 - 2 bits, leaving room for
/// 8-bit samples and an overflow margin in an Int32 accumulator.
private let precisionBits: Int32 = 22

/// The separable weights of one resampling direction: output sample `o` reads
/// `counts[o]` input samples starting at `starts[o]`, weighted by
/// `weights[o * taps ..< o * taps + counts[o]]` in `precisionBits` fixed point.
struct ResampleWeights {
    var taps: Int
    var starts: [Int]
    var counts: [Int]
    var weights: [Int32]

    /// PIL's `precompute_coeffs` with the triangle filter and the box `(0, inputSize)`,
    /// followed by `normalize_coeffs_8bpc`. Downscaling widens the triangle by the scale
    /// factor (antialiasing); upscaling keeps support 1.
    init(inputSize: Int, outputSize: Int) {
        precondition(inputSize > 0 && outputSize > 0, "ResampleWeights: sizes \(inputSize) -> \(outputSize)")
        // PIL: (double)(in1 - in0) / outSize, the box corners being floats
        let scale = Double(Float(inputSize) - Float(0)) / Double(outputSize)
        let filterScale = max(scale, 1.0)
        let support = 1.0 * filterScale
        let taps = Int(support.rounded(.up)) * 2 + 1
        let inverseFilterScale = 1.0 / filterScale

        var starts = [Int](repeating: 0, count: outputSize)
        var counts = [Int](repeating: 0, count: outputSize)
        var weights = [Int32](repeating: 0, count: outputSize * taps)
        var raw = [Double](repeating: 0, count: taps)
        for output in 0..<outputSize {
            let center = 0.0 + (Double(output) + 0.5) * scale
            // C's (int) truncates toward zero, as Int(_: Double) does
            let start = max(Int(center - support + 0.5), 0)
            let end = min(Int(center + support + 0.5), inputSize)
            let count = end - start
            var total = 0.0
            for tap in 0..<taps { raw[tap] = 0 }
            for tap in 0..<count {
                let weight = triangle((Double(tap + start) - center + 0.5) * inverseFilterScale)
                raw[tap] = weight
                total += weight
            }
            if total != 0 {
                for tap in 0..<count { raw[tap] /= total }
            }
            for tap in 0..<taps {
                // round half away from zero into fixed point, as normalize_coeffs_8bpc
                let value = raw[tap]
                let scaled = value * Double(Int32(1) << precisionBits)
                weights[output * taps + tap] = Int32(value < 0 ? -0.5 + scaled : 0.5 + scaled)
            }
            starts[output] = start
            counts[output] = count
        }
        self.taps = taps
        self.starts = starts
        self.counts = counts
        self.weights = weights
    }
}

/// PIL's `bilinear_filter`: the triangle 1 - |x| on (-1, 1).
@inline(__always)
private func triangle(_ x: Double) -> Double {
    let magnitude = x < 0 ? -x : x
    return magnitude < 1 ? 1 - magnitude : 0
}

/// PIL's `clip8`: drop the fixed-point fraction and clamp to 0...255.
@inline(__always)
private func clip8(_ accumulator: Int32) -> UInt8 {
    let value = accumulator >> precisionBits
    return value < 0 ? 0 : (value > 255 ? 255 : UInt8(truncatingIfNeeded: value))
}

extension RGBImage {
    /// The image resized to `width` x `height` exactly as PIL's
    /// `Image.resize((width, height), Image.BILINEAR)` on an 8-bit RGB image: a separable
    /// triangle filter whose support grows with the downscale factor (antialiasing), Int32
    /// fixed-point weights with 22 fraction bits, a horizontal pass over the rows the
    /// vertical pass will read, rounded and clipped to 8 bits, then a vertical pass. A pass
    /// whose size does not change is skipped; when neither changes, the image is returned.
    public func resizedBilinearAntialiased(width outputWidth: Int, height outputHeight: Int) -> RGBImage {
        precondition(outputWidth > 0 && outputHeight > 0,
                     "resizedBilinearAntialiased: output size \(outputWidth)x\(outputHeight) must be positive")
        precondition(width > 0 && height > 0, "resizedBilinearAntialiased: empty \(width)x\(height) input")
        checkLayout("resizedBilinearAntialiased")
        let needHorizontal = outputWidth != width
        let needVertical = outputHeight != height
        if !needHorizontal && !needVertical { return self }

        var vertical = ResampleWeights(inputSize: height, outputSize: outputHeight)
        var current = self
        if needHorizontal {
            // only the rows the vertical pass reads: [first, last)
            let firstRow = vertical.starts[0]
            let lastRow = vertical.starts[outputHeight - 1] + vertical.counts[outputHeight - 1]
            let horizontal = ResampleWeights(inputSize: width, outputSize: outputWidth)
            current = resampledHorizontally(horizontal, firstRow: firstRow, rowCount: lastRow - firstRow)
            for index in vertical.starts.indices { vertical.starts[index] -= firstRow }
        }
        if needVertical {
            current = current.resampledVertically(vertical)
        }
        return current
    }

    /// PIL's `ImagingResampleHorizontal_8bpc` over rows `firstRow ..< firstRow + rowCount`.
    func resampledHorizontally(_ kernel: ResampleWeights, firstRow: Int, rowCount: Int) -> RGBImage {
        let outputWidth = kernel.starts.count
        var output = [UInt8](repeating: 0, count: outputWidth * rowCount * 3)
        let inputWidth = width
        pixels.withUnsafeBufferPointer { input in
            kernel.weights.withUnsafeBufferPointer { weights in
                output.withUnsafeMutableBufferPointer { output in
                    for row in 0..<rowCount {
                        let inputRow = (row + firstRow) * inputWidth * 3
                        let outputRow = row * outputWidth * 3
                        for x in 0..<outputWidth {
                            let start = kernel.starts[x]
                            let taps = x * kernel.taps
                            var red: Int32 = 1 << (precisionBits - 1)
                            var green = red
                            var blue = red
                            for tap in 0..<kernel.counts[x] {
                                let weight = weights[taps + tap]
                                let source = inputRow + (start + tap) * 3
                                red &+= Int32(input[source]) &* weight
                                green &+= Int32(input[source + 1]) &* weight
                                blue &+= Int32(input[source + 2]) &* weight
                            }
                            output[outputRow + x * 3] = clip8(red)
                            output[outputRow + x * 3 + 1] = clip8(green)
                            output[outputRow + x * 3 + 2] = clip8(blue)
                        }
                    }
                }
            }
        }
        return RGBImage(width: outputWidth, height: rowCount, pixels: output)
    }

    /// PIL's `ImagingResampleVertical_8bpc` (starts already relative to this image's rows).
    func resampledVertically(_ kernel: ResampleWeights) -> RGBImage {
        let outputHeight = kernel.starts.count
        let rowLength = width * 3
        var output = [UInt8](repeating: 0, count: rowLength * outputHeight)
        pixels.withUnsafeBufferPointer { input in
            kernel.weights.withUnsafeBufferPointer { weights in
                output.withUnsafeMutableBufferPointer { output in
                    for y in 0..<outputHeight {
                        let start = kernel.starts[y]
                        let count = kernel.counts[y]
                        let taps = y * kernel.taps
                        for column in 0..<rowLength {
                            var sum: Int32 = 1 << (precisionBits - 1)
                            for tap in 0..<count {
                                sum &+= Int32(input[(start + tap) * rowLength + column]) &* weights[taps + tap]
                            }
                            output[y * rowLength + column] = clip8(sum)
                        }
                    }
                }
            }
        }
        return RGBImage(width: width, height: outputHeight, pixels: output)
    }

    /// torchvision 0.14's `Resize(size)` on a PIL image: the shorter side becomes `size`,
    /// the longer `int(size * long / short)` (`_compute_resized_output_size`), resampled
    /// with ``resizedBilinearAntialiased(width:height:)``; an image already at that size is
    /// returned unchanged.
    public func resizedShorterSide(to size: Int) -> RGBImage {
        precondition(size > 0, "resizedShorterSide: size \(size) must be positive")
        precondition(width > 0 && height > 0, "resizedShorterSide: empty \(width)x\(height) image")
        let (short, long) = width <= height ? (width, height) : (height, width)
        // Python's int(size * long / short): an exact product, one correctly rounded
        // division, truncation
        let newLong = Int(Double(size * long) / Double(short))
        let (newWidth, newHeight) = width <= height ? (size, newLong) : (newLong, size)
        if newWidth == width && newHeight == height { return self }
        return resizedBilinearAntialiased(width: newWidth, height: newHeight)
    }
}
