// SSD default boxes as torchvision 0.14's `DefaultBoxGenerator` (models/detection/anchor_utils.py).
import TensorCore

/// Generates SSD's default boxes (SSD paper, p. 6) for a set of feature levels.
///
/// Level `k` has `2 + 2 * aspectRatios[k].count` boxes per location: `(s_k, s_k)`,
/// `(s'_k, s'_k)` with `s'_k = sqrt(s_k * s_{k+1})`, then `(s_k sqrt(ar), s_k / sqrt(ar))` and its
/// transpose for each ratio. The width/height pairs are computed in Double (as torchvision's
/// Python floats) and stored as Float32.
public struct DefaultBoxGenerator: Sendable {
    /// Aspect ratios per level (each adds two boxes per location).
    public let aspectRatios: [[Double]]
    /// The scales `s_k`, one more than the levels (the last one only feeds `s'_k`).
    public let scales: [Double]
    /// Optional steps per level: with steps, the centre grid is `(i + 0.5) / (imageSize / step)`.
    public let steps: [Int]?
    /// Whether the relative widths and heights are clamped to `[0, 1]` (in cx, cy, w, h form).
    public let clip: Bool
    /// The relative (w, h) pairs of each level, `[boxesPerLocation, 2]` Float32.
    public let widthHeightPairs: [Tensor]

    /// Builds the generator as torchvision's constructor does.
    /// - Parameters:
    ///   - aspectRatios: aspect ratios per level.
    ///   - minRatio, maxRatio: used only when `scales` is nil: `s_k = min + (max - min) k / (L - 1)`
    ///     and a final scale 1.0 (with one level: `[min, max]`).
    ///   - scales: explicit scales, at least one more than the levels.
    ///   - steps: optional per-level steps in pixels.
    ///   - clip: clamp the relative sizes to [0, 1].
    /// - Throws: `BoxOpsError` when `steps` or `scales` does not fit the level count.
    public init(aspectRatios: [[Double]], minRatio: Double = 0.15, maxRatio: Double = 0.9,
                scales: [Double]? = nil, steps: [Int]? = nil, clip: Bool = true) throws {
        let levelCount = aspectRatios.count
        if let steps {
            guard steps.count == levelCount else {
                throw BoxOpsError.levelCountMismatch(field: "steps", expected: levelCount, actual: steps.count)
            }
            if let bad = steps.firstIndex(where: { $0 <= 0 }) {
                throw BoxOpsError.invalidValue(field: "steps[\(bad)]", reason: "must be positive")
            }
        }
        var resolvedScales: [Double]
        if let scales {
            guard scales.count >= levelCount + 1 else {
                throw BoxOpsError.levelCountMismatch(field: "scales", expected: levelCount + 1, actual: scales.count)
            }
            resolvedScales = scales
        } else if levelCount > 1 {
            let range = maxRatio - minRatio
            resolvedScales = (0..<levelCount).map { minRatio + range * Double($0) / (Double(levelCount) - 1.0) }
            resolvedScales.append(1.0)
        } else {
            resolvedScales = [minRatio, maxRatio]
        }
        for (level, ratios) in aspectRatios.enumerated() where ratios.contains(where: { !($0 > 0) }) {
            throw BoxOpsError.invalidValue(field: "aspect_ratios[\(level)]", reason: "ratios must be > 0")
        }
        self.aspectRatios = aspectRatios
        self.scales = resolvedScales
        self.steps = steps
        self.clip = clip
        self.widthHeightPairs = (0..<levelCount).map { level in
            let scale = resolvedScales[level]
            let scalePrime = (resolvedScales[level] * resolvedScales[level + 1]).squareRoot()
            var pairs: [Double] = [scale, scale, scalePrime, scalePrime]
            for ratio in aspectRatios[level] {
                let root = ratio.squareRoot()
                let width = scale * root, height = scale / root
                pairs += [width, height, height, width]
            }
            return Tensor(shape: [pairs.count / 2, 2], scalars: pairs.map { Float($0) })
        }
    }

    /// Default boxes per location on each level (`2 + 2 * aspectRatios[k].count`).
    public var boxesPerLocation: [Int] {
        aspectRatios.map { 2 + 2 * $0.count }
    }

    /// The default boxes in relative `(cx, cy, w, h)` form, `[sum_k H_k * W_k * B_k, 4]`,
    /// location-major (y, then x) within a level, then width/height pair — torchvision's
    /// `_grid_default_boxes`.
    public func relativeDefaultBoxes(imageSize: Size2, featureSizes: [Size2]) throws -> Tensor {
        guard featureSizes.count == widthHeightPairs.count else {
            throw BoxOpsError.levelCountMismatch(field: "aspect_ratios", expected: featureSizes.count,
                                                 actual: widthHeightPairs.count)
        }
        var values: [Float] = []
        for (level, size) in featureSizes.enumerated() {
            // Centres: (i + 0.5) / f_k in Float32, where f_k = image / step (Double, then Float32)
            // or the feature extent.
            let gridY: Float, gridX: Float
            if let steps {
                gridY = Float(Double(imageSize.h) / Double(steps[level]))
                gridX = Float(Double(imageSize.w) / Double(steps[level]))
            } else {
                gridY = Float(size.h)
                gridX = Float(size.w)
            }
            var pairs = widthHeightPairs[level].scalars
            if clip { pairs = pairs.map { min(max($0, 0), 1) } }
            let pairCount = pairs.count / 2
            values.reserveCapacity(values.count + size.h * size.w * pairCount * 4)
            for y in 0..<size.h {
                let centreY = (Float(y) + 0.5) / gridY
                for x in 0..<size.w {
                    let centreX = (Float(x) + 0.5) / gridX
                    for pair in 0..<pairCount {
                        values += [centreX, centreY, pairs[2 * pair], pairs[2 * pair + 1]]
                    }
                }
            }
        }
        return Tensor(shape: [values.count / 4, 4], scalars: values)
    }

    /// The default boxes in `xyxy` pixels of the padded batch, `[sum_k H_k * W_k * B_k, 4]`:
    /// `(c - 0.5 * wh) * (W, H)` and `(c + 0.5 * wh) * (W, H)` in Float32, as torchvision's
    /// `forward`.
    /// - Parameters:
    ///   - imageSize: height and width of the padded batch tensor.
    ///   - featureSizes: height and width of each level's feature map.
    /// - Throws: `BoxOpsError` when `featureSizes` does not have one entry per level.
    public func defaultBoxes(imageSize: Size2, featureSizes: [Size2]) throws -> Tensor {
        let relative = try relativeDefaultBoxes(imageSize: imageSize, featureSizes: featureSizes)
        let width = Float(imageSize.w), height = Float(imageSize.h)
        let source = relative.scalars
        return Tensor(shape: relative.shape) { out in
            for row in 0..<(source.count / 4) {
                let cx = source[row * 4], cy = source[row * 4 + 1]
                let halfW = 0.5 * source[row * 4 + 2], halfH = 0.5 * source[row * 4 + 3]
                out[row * 4] = (cx - halfW) * width
                out[row * 4 + 1] = (cy - halfH) * height
                out[row * 4 + 2] = (cx + halfW) * width
                out[row * 4 + 3] = (cy + halfH) * height
            }
        }
    }
}
