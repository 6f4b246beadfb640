// RoIAlign (Mask R-CNN) as torchvision 0.14's CPU kernel (csrc/ops/cpu/roi_align_kernel.cpp).
import Foundation
import TensorCore

/// One bilinear sample: four flat positions in an `H * W` plane and their weights.
struct BilinearSample {
    var positions: (Int, Int, Int, Int)
    var weights: (Float, Float, Float, Float)

    static let empty = BilinearSample(positions: (0, 0, 0, 0), weights: (0, 0, 0, 0))

    /// The sample at `(y, x)` in a `height * width` plane, as the kernel's precalculation:
    /// outside `[-1, H] x [-1, W]` it contributes 0; coordinates `<= 0` snap to 0; a low index
    /// at or past the last row/column clamps to it with no interpolation along that axis.
    init(y: Float, x: Float, height: Int, width: Int) {
        // Written as !(inside) so that NaN coordinates contribute 0.
        guard y >= -1, y <= Float(height), x >= -1, x <= Float(width) else {
            self = .empty
            return
        }
        var y = max(y, 0), x = max(x, 0)
        var yLow = Int(y), xLow = Int(x)
        let yHigh: Int, xHigh: Int
        if yLow >= height - 1 {
            yLow = height - 1
            yHigh = yLow
            y = Float(yLow)
        } else {
            yHigh = yLow + 1
        }
        if xLow >= width - 1 {
            xLow = width - 1
            xHigh = xLow
            x = Float(xLow)
        } else {
            xHigh = xLow + 1
        }
        let ly = y - Float(yLow), lx = x - Float(xLow)
        let hy = 1 - ly, hx = 1 - lx
        positions = (yLow * width + xLow, yLow * width + xHigh, yHigh * width + xLow, yHigh * width + xHigh)
        weights = (hy * hx, hy * lx, ly * hx, ly * lx)
    }

    private init(positions: (Int, Int, Int, Int), weights: (Float, Float, Float, Float)) {
        self.positions = positions
        self.weights = weights
    }
}

/// The bilinear samples of one RoI (as the C++ kernel's `pre_calc`), bin-major: bin
/// `(ph, pw)` owns samples `bin * perBin ..< (bin + 1) * perBin`, each `(iy, ix)` in order.
struct RoISamples {
    var batchIndex: Int
    var samples: [BilinearSample]
    var perBin: Int
    /// The divisor of each bin's sum: `max(gridH * gridW, 1)`.
    var sampleCount: Float

    init(rois: UnsafeBufferPointer<Float>, roi: Int, outputSize: Size2, height: Int, width: Int,
         spatialScale: Float, samplingRatio: Int, aligned: Bool) {
        let pooledHeight = outputSize.h, pooledWidth = outputSize.w
        let row = roi * 5
        batchIndex = Int(rois[row])
        // No rounding of the box: this detail is what makes RoIAlign align.
        let offset: Float = aligned ? 0.5 : 0
        let startW = rois[row + 1] * spatialScale - offset
        let startH = rois[row + 2] * spatialScale - offset
        let endW = rois[row + 3] * spatialScale - offset
        let endH = rois[row + 4] * spatialScale - offset
        var roiWidth = endW - startW, roiHeight = endH - startH
        if !aligned {
            // malformed RoIs are forced to 1x1
            roiWidth = max(roiWidth, 1)
            roiHeight = max(roiHeight, 1)
        }
        let binHeight = roiHeight / Float(pooledHeight)
        let binWidth = roiWidth / Float(pooledWidth)
        let gridH = samplingRatio > 0 ? samplingRatio : Int((roiHeight / Float(pooledHeight)).rounded(.up))
        let gridW = samplingRatio > 0 ? samplingRatio : Int((roiWidth / Float(pooledWidth)).rounded(.up))
        sampleCount = Float(max(gridH * gridW, 1))
        perBin = max(gridH, 0) * max(gridW, 0)
        // Sample positions and weights are shared by all channels.
        samples = []
        samples.reserveCapacity(pooledHeight * pooledWidth * perBin)
        for ph in 0..<pooledHeight {
            for pw in 0..<pooledWidth {
                for iy in 0..<max(gridH, 0) {
                    let y = startH + Float(ph) * binHeight + (Float(iy) + 0.5) * binHeight / Float(gridH)
                    for ix in 0..<max(gridW, 0) {
                        let x = startW + Float(pw) * binWidth + (Float(ix) + 0.5) * binWidth / Float(gridW)
                        samples.append(BilinearSample(y: y, x: x, height: height, width: width))
                    }
                }
            }
        }
    }
}

/// RoIAlign with average pooling over a regular grid of bilinear samples per output bin.
///
/// The features are read channels-last (one `[N, H, W, C]` copy per call), so each sample's
/// four taps are contiguous channel vectors; every channel's sum is formed in the same order
/// and association as torchvision's kernel (and as `roiAlignReference`), so the result is
/// bit-identical to it.
///
/// - Parameters:
///   - features: `[N, C, H, W]` Float32.
///   - rois: `[K, 5]`, each row `(batchIndex, x1, y1, x2, y2)` in the coordinates that
///     `spatialScale` maps onto the feature map (image pixels, xyxy).
///   - outputSize: bins `(oh, ow)` per RoI.
///   - spatialScale: feature size / image size (e.g. 0.25 for stride 4).
///   - samplingRatio: samples per bin along each axis; `<= 0` means adaptive,
///     `ceil(roiHeight / oh)` by `ceil(roiWidth / ow)`.
///   - aligned: shift the scaled box by -0.5 pixel (Detectron2); when false, RoIs smaller
///     than 1×1 are grown to 1×1 (legacy behaviour, used by torchvision's detectors).
/// - Returns: `[K, C, oh, ow]`. A bin with no samples (an empty RoI with `aligned`) is 0.
public func roiAlign(features: Tensor, rois: Tensor, outputSize: Size2, spatialScale: Float,
                     samplingRatio: Int, aligned: Bool) -> Tensor {
    checkRoIAlignArguments(features: features, rois: rois, outputSize: outputSize)
    var output = Tensor(zeros: [rois.shape[0], features.shape[1], outputSize.h, outputSize.w])
    output.withUnsafeMutableBufferPointer { out in
        roiAlign(features: features, rois: rois, outputSize: outputSize, spatialScale: spatialScale,
                 samplingRatio: samplingRatio, aligned: aligned, into: out, rows: Array(0..<rois.shape[0]))
    }
    return output
}

/// `roiAlign` writing RoI `i`'s `[C, oh, ow]` block into row `rows[i]` of `output`
/// (`[R, C, oh, ow]`, R > every row), so that `MultiScaleRoIAlign` pools each level straight
/// into its result.
func roiAlign(features: Tensor, rois: Tensor, outputSize: Size2, spatialScale: Float, samplingRatio: Int,
              aligned: Bool, into output: UnsafeMutableBufferPointer<Float>, rows: [Int]) {
    checkRoIAlignArguments(features: features, rois: rois, outputSize: outputSize)
    let (channels, height, width) = (features.shape[1], features.shape[2], features.shape[3])
    let roiCount = rois.shape[0]
    let binCount = outputSize.h * outputSize.w
    let block = channels * binCount
    precondition(rows.count == roiCount && rows.allSatisfy { $0 >= 0 && ($0 + 1) * block <= output.count },
                 "roiAlign: \(rows.count) output rows for \(roiCount) RoIs in an output of \(output.count) values")
    if roiCount == 0 || block == 0 || height * width == 0 { return }
    checkRoIBatchIndices(rois, batch: features.shape[0])
    // (N, C, H, W) -> (N, H, W, C): a sample's taps become contiguous rows of C values
    let channelsLast = features.permuted([0, 2, 3, 1])
    channelsLast.withUnsafeBufferPointer { input in
        rois.withUnsafeBufferPointer { roiValues in
            // Non-empty: block > 0 and H * W > 0 imply N, C > 0.
            guard let inputBase = input.baseAddress, let outputBase = output.baseAddress else { return }
            let out = UncheckedSendable(outputBase)
            parallelChunks(roiCount, minimumPerChunk: 4) { range in
                let sums = UnsafeMutablePointer<Float>.allocate(capacity: channels)
                defer { sums.deallocate() }
                for roi in range {
                    let geometry = RoISamples(rois: roiValues, roi: roi, outputSize: outputSize, height: height,
                                              width: width, spatialScale: spatialScale,
                                              samplingRatio: samplingRatio, aligned: aligned)
                    let image = inputBase + geometry.batchIndex * height * width * channels
                    let destination = out.value + rows[roi] * block
                    geometry.samples.withUnsafeBufferPointer { samples in
                        for bin in 0..<binCount {
                            sums.initialize(repeating: 0, count: channels)
                            for s in (bin * geometry.perBin)..<((bin + 1) * geometry.perBin) {
                                let sample = samples[s]
                                let (p1, p2, p3, p4) = sample.positions
                                let (w1, w2, w3, w4) = sample.weights
                                let (v1, v2) = (image + p1 * channels, image + p2 * channels)
                                let (v3, v4) = (image + p3 * channels, image + p4 * channels)
                                for c in 0..<channels {
                                    // same association as the C++ kernel: ((a + b) + c) + d
                                    sums[c] += w1 * v1[c] + w2 * v2[c] + w3 * v3[c] + w4 * v4[c]
                                }
                            }
                            for c in 0..<channels { destination[c * binCount + bin] = sums[c] / geometry.sampleCount }
                        }
                    }
                }
            }
        }
    }
}

/// The naive twin of `roiAlign`: one channel plane at a time, reading `[N, C, H, W]` in place,
/// as torchvision's CPU kernel loops. Tests compare the two.
func roiAlignReference(features: Tensor, rois: Tensor, outputSize: Size2, spatialScale: Float,
                       samplingRatio: Int, aligned: Bool) -> Tensor {
    checkRoIAlignArguments(features: features, rois: rois, outputSize: outputSize)
    let (channels, height, width) = (features.shape[1], features.shape[2], features.shape[3])
    let roiCount = rois.shape[0]
    let planeSize = height * width, binCount = outputSize.h * outputSize.w
    var output = Tensor(zeros: [roiCount, channels, outputSize.h, outputSize.w])
    if output.count == 0 || planeSize == 0 { return output }
    checkRoIBatchIndices(rois, batch: features.shape[0])
    let input = features.scalars
    rois.withUnsafeBufferPointer { roiValues in
        for roi in 0..<roiCount {
            let geometry = RoISamples(rois: roiValues, roi: roi, outputSize: outputSize, height: height, width: width,
                                      spatialScale: spatialScale, samplingRatio: samplingRatio, aligned: aligned)
            for channel in 0..<channels {
                let plane = (geometry.batchIndex * channels + channel) * planeSize
                for bin in 0..<binCount {
                    var sum: Float = 0
                    for sample in geometry.samples[(bin * geometry.perBin)..<((bin + 1) * geometry.perBin)] {
                        let (p1, p2, p3, p4) = sample.positions
                        let (w1, w2, w3, w4) = sample.weights
                        sum += w1 * input[plane + p1] + w2 * input[plane + p2] + w3 * input[plane + p3]
                            + w4 * input[plane + p4]
                    }
                    output.scalars[(roi * channels + channel) * binCount + bin] = sum / geometry.sampleCount
                }
            }
        }
    }
    return output
}

/// Shape preconditions shared by `roiAlign` and its twin.
private func checkRoIAlignArguments(features: Tensor, rois: Tensor, outputSize: Size2) {
    precondition(features.rank == 4, "roiAlign: features must be [N, C, H, W], got \(features.shape)")
    precondition(rois.rank == 2 && rois.shape[1] == 5, "roiAlign: rois must be [K, 5], got \(rois.shape)")
    precondition(outputSize.h > 0 && outputSize.w > 0, "roiAlign: output size \(outputSize) must be positive")
}

/// Every RoI's batch index lies in the batch (checked once there is something to pool).
private func checkRoIBatchIndices(_ rois: Tensor, batch: Int) {
    rois.withUnsafeBufferPointer { values in
        for roi in 0..<rois.shape[0] {
            let index = values[roi * 5]
            precondition(index >= 0 && Int(index) < batch,
                         "roiAlign: RoI \(roi) has batch index \(index), batch is \(batch)")
        }
    }
}
