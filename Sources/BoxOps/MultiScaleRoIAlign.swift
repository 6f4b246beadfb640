// FPN level assignment and multi-level RoIAlign as torchvision 0.14's ops/poolers.py.
import Foundation
import TensorCore

/// Assigns each box to an FPN level by Eqn. (1) of the FPN paper, in Float32 as torchvision:
/// `floor(canonicalLevel + log2(sqrt(area) / canonicalScale) + eps)`, clamped to
/// `[kMin, kMax]`, returned relative to `kMin`.
public struct LevelMapper: Sendable, Equatable {
    /// The finest and coarsest pyramid levels (e.g. 2 and 5 for strides 4 to 32).
    public let kMin: Int, kMax: Int
    /// The box size that maps to `canonicalLevel` (224, the ImageNet crop).
    public let canonicalScale: Int
    /// The level of a `canonicalScale`-sized box (4).
    public let canonicalLevel: Int
    /// Added before the floor so that exact powers of two land on their level.
    public let eps: Float

    /// A mapper over levels `kMin...kMax`.
    public init(kMin: Int, kMax: Int, canonicalScale: Int = 224, canonicalLevel: Int = 4, eps: Float = 1e-6) {
        self.kMin = kMin
        self.kMax = kMax
        self.canonicalScale = canonicalScale
        self.canonicalLevel = canonicalLevel
        self.eps = eps
    }

    /// The level index (0 = `kMin`) of each box of `boxes` `[N, 4]` xyxy pixels.
    ///
    /// A box whose area is NaN or negative (never after `removeSmallBoxes`) gets -1, which
    /// matches no level, so `MultiScaleRoIAlign` leaves its output at 0 — where torch's
    /// float-to-int cast of NaN likewise selects no level.
    public func levels(for boxes: Tensor) -> [Int] {
        boxArea(boxes).map { area in
            let size = area.squareRoot()
            let level = (Float(canonicalLevel) + Foundation.log2(size / Float(canonicalScale)) + eps).rounded(.down)
            if level.isNaN { return -1 }
            return Int(min(max(level, Float(kMin)), Float(kMax))) - kMin
        }
    }
}

/// RoIAlign over several feature levels, each box pooled from the level `LevelMapper`
/// assigns it (torchvision's `MultiScaleRoIAlign`, `aligned: false`).
///
/// torchvision infers the scales on its first call and caches them; this type infers them
/// on every call, which is the same whenever every call's feature/image ratios round to the
/// same powers of two (always, for one detector).
public struct MultiScaleRoIAlign: Sendable {
    /// Bins `(oh, ow)` per box.
    public let outputSize: Size2
    /// RoIAlign samples per bin along each axis (`<= 0`: adaptive).
    public let samplingRatio: Int
    /// `canonical_scale` of the level mapper (224).
    public let canonicalScale: Int
    /// `canonical_level` of the level mapper (4).
    public let canonicalLevel: Int

    /// A pooler with torchvision's arguments (Faster R-CNN: output 7, sampling ratio 2).
    public init(outputSize: Size2, samplingRatio: Int, canonicalScale: Int = 224, canonicalLevel: Int = 4) {
        self.outputSize = outputSize
        self.samplingRatio = samplingRatio
        self.canonicalScale = canonicalScale
        self.canonicalLevel = canonicalLevel
    }

    /// The scale of one level, as torchvision's `_infer_scale`: `2 ** round(log2(H_f / H_img))`
    /// with the log taken in Float32 (the height ratio decides).
    public static func inferScale(featureSize: Size2, imageSize: Size2) -> Float {
        let approximate = Float(Double(featureSize.h) / Double(imageSize.h))
        let exponent = Foundation.log2(approximate).rounded(.toNearestOrEven)
        return Float(Foundation.pow(2.0, Double(exponent)))
    }

    /// The per-level scales and the level mapper for features of `featureSizes` (finest first)
    /// and images of `imageSizes` (each image's size before batch padding), as `_setup_scales`:
    /// the image size is the per-axis maximum, `kMin = -log2(scales.first)`,
    /// `kMax = -log2(scales.last)`.
    public func scalesAndMapper(featureSizes: [Size2], imageSizes: [Size2]) -> (scales: [Float], mapper: LevelMapper) {
        precondition(!imageSizes.isEmpty, "MultiScaleRoIAlign: images list should not be empty")
        precondition(!featureSizes.isEmpty, "MultiScaleRoIAlign: no feature levels")
        let largest = Size2(imageSizes.map(\.h).max() ?? 0, imageSizes.map(\.w).max() ?? 0)
        let scales = featureSizes.map { Self.inferScale(featureSize: $0, imageSize: largest) }
        let levelMin = Int(-Foundation.log2(scales[0]))
        let levelMax = Int(-Foundation.log2(scales[scales.count - 1]))
        let mapper = LevelMapper(kMin: levelMin, kMax: levelMax, canonicalScale: canonicalScale,
                                 canonicalLevel: canonicalLevel)
        return (scales, mapper)
    }

    /// Pools every box from its level.
    /// - Parameters:
    ///   - features: the pooled levels, finest first, each `[N, C, H_l, W_l]` (the same N and C).
    ///   - boxes: one `[B_i, 4]` xyxy tensor per image, in pixels of the (resized) image.
    ///   - imageSizes: each image's height and width before batch padding.
    /// - Returns: `[sum B_i, C, oh, ow]`, boxes in image order.
    public func callAsFunction(features: [Tensor], boxes: [Tensor], imageSizes: [Size2]) -> Tensor {
        precondition(!features.isEmpty && features.allSatisfy { $0.rank == 4 },
                     "MultiScaleRoIAlign: features must be non-empty [N, C, H, W] tensors")
        let featureSizes = features.map { Size2($0.shape[2], $0.shape[3]) }
        let (scales, mapper) = scalesAndMapper(featureSizes: featureSizes, imageSizes: imageSizes)
        let rois = Self.roiRows(boxes)
        if features.count == 1 {
            return roiAlign(features: features[0], rois: rois, outputSize: outputSize, spatialScale: scales[0],
                            samplingRatio: samplingRatio, aligned: false)
        }
        let allBoxes = Tensor(shape: [rois.shape[0], 4], scalars: boxes.flatMap(\.scalars))
        let levels = mapper.levels(for: allBoxes)
        let channels = features[0].shape[1]
        var result = Tensor(zeros: [rois.shape[0], channels, outputSize.h, outputSize.w])
        result.withUnsafeMutableBufferPointer { out in
            for (level, levelFeatures) in features.enumerated() {
                let members = levels.indices.filter { levels[$0] == level }
                if members.isEmpty { continue }
                precondition(levelFeatures.shape[1] == channels,
                             "MultiScaleRoIAlign: level \(level) has \(levelFeatures.shape[1]) channels, expected \(channels)")
                var levelRois = [Float]()
                levelRois.reserveCapacity(members.count * 5)
                rois.withUnsafeBufferPointer { values in
                    for index in members { levelRois += values[(index * 5)..<(index * 5 + 5)] }
                }
                // each level's boxes are pooled straight into their rows of the result
                roiAlign(features: levelFeatures, rois: Tensor(shape: [members.count, 5], scalars: levelRois),
                         outputSize: outputSize, spatialScale: scales[level], samplingRatio: samplingRatio,
                         aligned: false, into: out, rows: members)
            }
        }
        return result
    }

    /// `[sum B_i, 5]` rows `(imageIndex, x1, y1, x2, y2)` from per-image boxes
    /// (torchvision's `_convert_to_roi_format`).
    public static func roiRows(_ boxes: [Tensor]) -> Tensor {
        var rows: [Float] = []
        for (image, imageBoxes) in boxes.enumerated() {
            precondition(imageBoxes.rank == 2 && imageBoxes.shape[1] == 4,
                         "MultiScaleRoIAlign: boxes of image \(image) must be [B, 4], got \(imageBoxes.shape)")
            for row in 0..<imageBoxes.shape[0] {
                rows.append(Float(image))
                rows += imageBoxes.scalars[(row * 4)..<(row * 4 + 4)]
            }
        }
        return Tensor(shape: [rows.count / 5, 5], scalars: rows)
    }
}
