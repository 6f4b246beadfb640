// Anchor grids as torchvision 0.14's `AnchorGenerator` (models/detection/anchor_utils.py).
import TensorCore

/// Generates the anchors of RetinaNet, FCOS and the Faster R-CNN RPN.
///
/// Each feature level `l` has `sizes[l].count * aspectRatios[l].count` zero-centred cell
/// anchors (aspect ratio = height / width), ordered ratio-major as torchvision does:
/// for each ratio, for each size. Their half extents are rounded to integers (half to even,
/// as `torch.round`), so a cell anchor is integral. Anchors are Float `xyxy` pixels, no +1.
public struct AnchorGenerator: Sendable {
    /// Anchor sizes (square root of the area, in pixels) per level.
    public let sizes: [[Double]]
    /// Aspect ratios (height / width) per level.
    public let aspectRatios: [[Double]]
    /// The rounded, zero-centred cell anchors of each level, `[A_l, 4]` xyxy.
    public let cellAnchors: [Tensor]

    /// Builds the generator; `sizes` and `aspectRatios` need one entry per feature level.
    /// - Throws: `BoxOpsError` when the level counts differ or a list is empty.
    public init(sizes: [[Double]], aspectRatios: [[Double]]) throws {
        guard sizes.count == aspectRatios.count else {
            throw BoxOpsError.levelCountMismatch(field: "aspect_ratios", expected: sizes.count,
                                                 actual: aspectRatios.count)
        }
        for (level, (levelSizes, levelRatios)) in zip(sizes, aspectRatios).enumerated() {
            if levelSizes.isEmpty || levelRatios.isEmpty {
                throw BoxOpsError.invalidValue(field: "anchor_sizes/aspect_ratios[\(level)]",
                                               reason: "needs at least one size and one ratio")
            }
            if levelRatios.contains(where: { !($0 > 0) }) {
                throw BoxOpsError.invalidValue(field: "aspect_ratios[\(level)]", reason: "ratios must be > 0")
            }
        }
        self.sizes = sizes
        self.aspectRatios = aspectRatios
        self.cellAnchors = zip(sizes, aspectRatios).map { Self.cellAnchors(sizes: $0, aspectRatios: $1) }
    }

    /// Anchors per spatial location on each level (`sizes[l].count * aspectRatios[l].count`).
    public var anchorsPerLocation: [Int] {
        zip(sizes, aspectRatios).map { $0.count * $1.count }
    }

    /// The zero-centred anchors of one level, `[ratios * sizes, 4]`, computed in Float32 as
    /// torchvision's `generate_anchors`.
    static func cellAnchors(sizes: [Double], aspectRatios: [Double]) -> Tensor {
        var values: [Float] = []
        values.reserveCapacity(sizes.count * aspectRatios.count * 4)
        for ratio in aspectRatios {
            let heightRatio = Float(ratio).squareRoot()
            let widthRatio = 1 / heightRatio
            for size in sizes {
                let width = widthRatio * Float(size)
                let height = heightRatio * Float(size)
                // round() of the half extents: half to even, as torch.round
                for value in [-width, -height, width, height] {
                    values.append((value / 2).rounded(.toNearestOrEven))
                }
            }
        }
        return Tensor(shape: [values.count / 4, 4], scalars: values)
    }

    /// The anchors of every level for an image batch of padded size `imageSize`, concatenated
    /// level by level: `[sum_l H_l * W_l * A_l, 4]` xyxy pixels.
    ///
    /// Within a level the order is location-major (y, then x), then cell anchor. The stride of
    /// a level is the integer division `imageSize / featureSize` on each axis.
    /// - Parameters:
    ///   - imageSize: height and width of the padded batch tensor (`images.tensors.shape[-2:]`).
    ///   - featureSizes: height and width of each level's feature map.
    /// - Throws: `BoxOpsError` when `featureSizes` does not have one entry per level or an
    ///   extent is not positive.
    public func anchors(imageSize: Size2, featureSizes: [Size2]) throws -> Tensor {
        guard featureSizes.count == cellAnchors.count else {
            throw BoxOpsError.levelCountMismatch(field: "anchor_sizes", expected: featureSizes.count,
                                                 actual: cellAnchors.count)
        }
        for (level, size) in featureSizes.enumerated() where size.h <= 0 || size.w <= 0 {
            throw BoxOpsError.invalidValue(field: "feature size of level \(level)",
                                           reason: "extent \(size) must be positive")
        }
        let strides = featureSizes.map { Size2(imageSize.h / $0.h, imageSize.w / $0.w) }
        let levels = gridAnchors(featureSizes: featureSizes, strides: strides)
        return Tensor(shape: [levels.reduce(0) { $0 + $1.shape[0] }, 4],
                      scalars: levels.flatMap(\.scalars))
    }

    /// The anchors of each level for the given grid sizes and strides (torchvision's
    /// `grid_anchors`): level `l` is `[H_l * W_l * A_l, 4]`, the cell anchors shifted by
    /// `(x * strideW, y * strideH)` for each location, y-major.
    public func gridAnchors(featureSizes: [Size2], strides: [Size2]) -> [Tensor] {
        precondition(featureSizes.count == cellAnchors.count && strides.count == cellAnchors.count,
                     "gridAnchors: \(featureSizes.count) sizes and \(strides.count) strides for \(cellAnchors.count) levels")
        var levels: [Tensor] = []
        for (level, cell) in cellAnchors.enumerated() {
            let size = featureSizes[level], stride = strides[level]
            let anchorCount = cell.shape[0]
            let base = cell.scalars
            let total = size.h * size.w * anchorCount * 4
            let grid = Tensor(shape: [size.h * size.w * anchorCount, 4]) { out in
                var index = 0
                for y in 0..<size.h {
                    let shiftY = Float(y * stride.h)
                    for x in 0..<size.w {
                        let shiftX = Float(x * stride.w)
                        for a in 0..<anchorCount {
                            out[index] = shiftX + base[a * 4]
                            out[index + 1] = shiftY + base[a * 4 + 1]
                            out[index + 2] = shiftX + base[a * 4 + 2]
                            out[index + 3] = shiftY + base[a * 4 + 3]
                            index += 4
                        }
                    }
                }
                precondition(index == total, "gridAnchors: wrote \(index) of \(total) values")
            }
            levels.append(grid)
        }
        return levels
    }
}
