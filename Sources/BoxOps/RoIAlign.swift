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

/// RoIAlign with average pooling over a regular grid of bilinear samples per output bin.
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
    precondition(features.rank == 4, "roiAlign: features must be [N, C, H, W], got \(features.shape)")
    precondition(rois.rank == 2 && rois.shape[1] == 5, "roiAlign: rois must be [K, 5], got \(rois.shape)")
    precondition(outputSize.h > 0 && outputSize.w > 0, "roiAlign: output size \(outputSize) must be positive")
    let (batch, channels, height, width) = (features.shape[0], features.shape[1], features.shape[2], features.shape[3])
    let roiCount = rois.shape[0]
    let pooledHeight = outputSize.h, pooledWidth = outputSize.w
    let planeSize = height * width, binCount = pooledHeight * pooledWidth
    var output = Tensor(zeros: [roiCount, channels, pooledHeight, pooledWidth])
    if output.count == 0 || planeSize == 0 { return output }
    let roiValues = rois.scalars
    for roi in 0..<roiCount {
        let index = roiValues[roi * 5]
        precondition(index >= 0 && Int(index) < batch, "roiAlign: RoI \(roi) has batch index \(index), batch is \(batch)")
    }
    features.withUnsafeBufferPointer { input in
        // Non-empty: output.count > 0 and planeSize > 0 imply N, C > 0.
        guard let inputBase = input.baseAddress else { return }
        output.withUnsafeMutableBufferPointer { out in
            let out = out
            parallelChunks(roiCount, minimumPerChunk: 4) { range in
                for roi in range {
                    let row = roi * 5
                    let batchIndex = Int(roiValues[row])
                    // No rounding of the box: this detail is what makes RoIAlign align.
                    let offset: Float = aligned ? 0.5 : 0
                    let startW = roiValues[row + 1] * spatialScale - offset
                    let startH = roiValues[row + 2] * spatialScale - offset
                    let endW = roiValues[row + 3] * spatialScale - offset
                    let endH = roiValues[row + 4] * spatialScale - offset
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
                    let sampleCount = Float(max(gridH * gridW, 1))
                    // Sample positions and weights are shared by all channels.
                    var samples: [BilinearSample] = []
                    samples.reserveCapacity(binCount * max(gridH, 0) * max(gridW, 0))
                    for ph in 0..<pooledHeight {
                        for pw in 0..<pooledWidth {
                            for iy in 0..<max(gridH, 0) {
                                let y = startH + Float(ph) * binHeight
                                    + (Float(iy) + 0.5) * binHeight / Float(gridH)
                                for ix in 0..<max(gridW, 0) {
                                    let x = startW + Float(pw) * binWidth
                                        + (Float(ix) + 0.5) * binWidth / Float(gridW)
                                    samples.append(BilinearSample(y: y, x: x, height: height, width: width))
                                }
                            }
                        }
                    }
                    let perBin = max(gridH, 0) * max(gridW, 0)
                    samples.withUnsafeBufferPointer { samples in
                        for channel in 0..<channels {
                            let plane = inputBase + (batchIndex * channels + channel) * planeSize
                            let target = (roi * channels + channel) * binCount
                            for bin in 0..<binCount {
                                var sum: Float = 0
                                for s in (bin * perBin)..<((bin + 1) * perBin) {
                                    let sample = samples[s]
                                    let (p1, p2, p3, p4) = sample.positions
                                    let (w1, w2, w3, w4) = sample.weights
                                    // same association as the C++ kernel: ((a + b) + c) + d
                                    sum += w1 * plane[p1] + w2 * plane[p2] + w3 * plane[p3] + w4 * plane[p4]
                                }
                                out[target + bin] = sum / sampleCount
                            }
                        }
                    }
                }
            }
        }
    }
    return output
}
