// torchvision's GeneralizedRCNNTransform at inference: normalize, resize, pad into a batch; rescale boxes back.
import Foundation
import TensorCore

/// Normalize → resize (shorter side to `minSize`, longer side at most `maxSize`, bilinear,
/// or a fixed size) → zero-pad to a multiple of `sizeDivisible` into one batch.
public struct DetectionTransform: Sendable {
    public var minSize: Int
    public var maxSize: Int
    public var imageMean: [Float]
    public var imageStd: [Float]
    public var sizeDivisible: Int
    /// SSD's fixed `(height, width)`; overrides `minSize`/`maxSize`.
    public var fixedSize: Size2?

    public init(minSize: Int, maxSize: Int, imageMean: [Float], imageStd: [Float], sizeDivisible: Int = 32,
                fixedSize: Size2? = nil) {
        self.minSize = minSize
        self.maxSize = maxSize
        self.imageMean = imageMean
        self.imageStd = imageStd
        self.sizeDivisible = sizeDivisible
        self.fixedSize = fixedSize
    }

    /// `(x - mean) / std` per channel of an image `[3, H, W]`.
    public func normalized(_ image: Tensor) -> Tensor {
        precondition(image.rank == 3 && image.shape[0] == imageMean.count,
                     "transform: image \(image.shape) for \(imageMean.count) channel means")
        var out = image
        let plane = image.shape[1] * image.shape[2]
        out.withUnsafeMutableBufferPointer { values in
            for c in 0..<imageMean.count {
                let (mean, std) = (imageMean[c], imageStd[c])
                for i in (c * plane)..<((c + 1) * plane) { values[i] = (values[i] - mean) / std }
            }
        }
        return out
    }

    /// The resized image `[3, H', W']` as torchvision's `_resize_image_and_masks`.
    public func resized(_ image: Tensor) -> Tensor {
        let batched = image.reshaped([1] + image.shape)
        let output: Tensor
        if let fixedSize {
            output = resizeBilinear(batched, size: fixedSize)
        } else {
            // torch computes the scale in float32, then interpolates with
            // recompute_scale_factor=True (output size floor(in · scale), coordinates in/out).
            // `float / tensor` is `tensor.reciprocal() * float` in torch: 800 / 480 is
            // 800 · (1/480) = 1.6666667 (not the nearest float32, 1.6666666), so a 480-pixel side
            // becomes 800 and not 799.
            let (h, w) = (Float(image.shape[1]), Float(image.shape[2]))
            let scale = min(Float(minSize) * (1 / min(h, w)), Float(maxSize) * (1 / max(h, w)))
            output = resizeBilinear(batched, scaleFactor: Double(scale), recomputeScaleFactor: true)
        }
        return output.reshaped(Array(output.shape.dropFirst()))
    }

    /// Batch `[N, 3, Hmax', Wmax']` (padded with zeros to multiples of `sizeDivisible`) and each
    /// image's size before padding.
    public func callAsFunction(_ images: [Tensor]) -> (batch: Tensor, imageSizes: [Size2]) {
        let prepared = images.map { resized(normalized($0)) }
        let sizes = prepared.map { Size2($0.shape[1], $0.shape[2]) }
        let divisor = Double(sizeDivisible)
        let height = Int((Double(sizes.map(\.h).max() ?? 0) / divisor).rounded(.up) * divisor)
        let width = Int((Double(sizes.map(\.w).max() ?? 0) / divisor).rounded(.up) * divisor)
        let channels = prepared.first?.shape[0] ?? 3
        var batch = Tensor(zeros: [prepared.count, channels, height, width])
        batch.withUnsafeMutableBufferPointer { out in
            for (n, image) in prepared.enumerated() {
                image.withUnsafeBufferPointer { src in
                    let (h, w) = (image.shape[1], image.shape[2])
                    for c in 0..<channels {
                        for y in 0..<h {
                            let dst = ((n * channels + c) * height + y) * width
                            let from = (c * h + y) * w
                            for x in 0..<w { out[dst + x] = src[from + x] }
                        }
                    }
                }
            }
        }
        return (batch, sizes)
    }

    /// Boxes scaled from the resized image size back to the original one, as torchvision's
    /// `resize_boxes` (ratios in float32).
    public func rescaled(_ detections: Detections, from resized: Size2, to original: Size2) -> Detections {
        let ratioHeight = Float(original.h) / Float(resized.h)
        let ratioWidth = Float(original.w) / Float(resized.w)
        var out = detections
        for i in 0..<out.count {
            out.boxes[4 * i] *= ratioWidth
            out.boxes[4 * i + 1] *= ratioHeight
            out.boxes[4 * i + 2] *= ratioWidth
            out.boxes[4 * i + 3] *= ratioHeight
        }
        return out
    }
}
