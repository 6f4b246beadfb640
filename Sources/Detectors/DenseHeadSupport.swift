// Pieces RetinaNet's and FCOS's heads share: the conv towers, the classification head, the per-location flattening, the head norm.
import BoxOps
import Layers
import TensorCore

/// The normalization after each tower conv of a dense head.
public enum DenseHeadNorm: Sendable, Equatable {
    /// `nn.GroupNorm(groups, channels, eps)`.
    case groupNorm(groups: Int, eps: Float)

    /// The norm a head config asks for: nil, or `group_norm` with `group_norm_groups`
    /// (default 32) and `group_norm_eps` (default 1e-5).
    /// - Throws: `UnsupportedModelError` naming `head.norm` for another value, or
    ///   `head.group_norm_groups` when it does not divide `channels`.
    public static func from(_ head: HeadConfig?, channels: Int) throws -> DenseHeadNorm? {
        guard let name = head?.norm else { return nil }
        guard name == "group_norm" else {
            throw UnsupportedModelError("head.norm '\(name)' is not a dense-head norm detq builds (group_norm or null)")
        }
        let groups = head?.groupNormGroups ?? 32
        guard groups > 0, channels % groups == 0 else {
            throw UnsupportedModelError("head.group_norm_groups \(groups) does not divide the head's \(channels) channels")
        }
        return .groupNorm(groups: groups, eps: head?.groupNormEps ?? 1e-5)
    }

    func layer(channels: Int) -> GroupNorm {
        switch self {
        case .groupNorm(let groups, let eps): GroupNorm(groups: groups, channels: channels, eps: eps)
        }
    }
}

/// RetinaNet's tower, torchvision's `Sequential` of `Conv2dNormActivation(c, c)`: block `i` is
/// `Sequential([conv3×3, norm?, ReLU])`, so keys are `i.0.weight` (+ `i.0.bias` without norm)
/// and `i.1.weight`/`i.1.bias` for the norm.
func retinaNetTower(channels: Int, numConvs: Int, norm: DenseHeadNorm?) -> Sequential {
    Sequential((0..<numConvs).map { _ in
        let conv = Conv2d(channels, channels, kernelSize: 3, padding: 1, bias: norm == nil)
        let layers: [(any Layer)?] = norm.map { [conv, $0.layer(channels: channels), Activation(.relu)] }
            ?? [conv, Activation(.relu)]
        return Sequential(layers)
    })
}

/// FCOS's tower, one flat `Sequential`: `3i` conv3×3 with bias, `3i+1` norm, `3i+2` ReLU.
func fcosTower(channels: Int, numConvs: Int, norm: DenseHeadNorm) -> Sequential {
    Sequential((0..<numConvs).flatMap { _ -> [(any Layer)?] in
        [Conv2d(channels, channels, kernelSize: 3, padding: 1), norm.layer(channels: channels), Activation(.relu)]
    })
}

/// `head.classification_head` of RetinaNet and FCOS: a tower (`conv`, built by
/// `retinaNetTower` or `fcosTower`) then `cls_logits`, a 3×3 conv to `A·K` channels.
public final class DenseClassificationHead: Module {
    public let conv: Sequential
    public let clsLogits: Conv2d
    public let numAnchors: Int
    public let numClasses: Int

    init(tower: Sequential, inChannels: Int, numAnchors: Int, numClasses: Int) {
        conv = tower
        clsLogits = Conv2d(inChannels, numAnchors * numClasses, kernelSize: 3, padding: 1)
        self.numAnchors = numAnchors
        self.numClasses = numClasses
    }

    public var children: [(name: String, module: any Module)] { [("conv", conv), ("cls_logits", clsLogits)] }

    /// Class logits `[N, H·W·A, K]` of each level `[N, C, H, W]`.
    public func callAsFunction(_ features: [Tensor]) -> [Tensor] {
        features.map { flattenedPerLocation(clsLogits(conv($0)), valuesPerAnchor: numClasses) }
    }
}

/// A predictor output `[N, A·K, H, W]` as `[N, H·W·A, K]`: location-major, then anchor, as
/// torchvision's `view(N, -1, K, H, W).permute(0, 3, 4, 1, 2).reshape(N, -1, K)`.
func flattenedPerLocation(_ x: Tensor, valuesPerAnchor: Int) -> Tensor {
    precondition(x.rank == 4 && x.shape[1] % valuesPerAnchor == 0,
                 "flattenedPerLocation: \(x.shape) has no \(valuesPerAnchor) values per anchor")
    let (n, channels, plane) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
    // (N, A*K, H*W) -> (N, H*W, A*K) = (N, H*W*A, K)
    return x.reshaped([n, channels, plane]).permuted([0, 2, 1])
        .reshaped([n, plane * channels / valuesPerAnchor, valuesPerAnchor])
}

/// Checks a config's head width against the FPN and returns the tower depth (`head.num_convs`).
func headConvCount(_ config: DetectorConfig, default defaultCount: Int) throws -> Int {
    let count = config.head?.numConvs ?? defaultCount
    guard count >= 0 else { throw UnsupportedModelError("head.num_convs must be >= 0, got \(count)") }
    return count
}

extension FeaturePyramidNetwork {
    /// How many levels the pyramid returns: one per lateral conv plus its extra block's.
    var outputLevelCount: Int {
        switch extraBlock {
        case .none: innerBlocks.count
        case .maxPool: innerBlocks.count + 1
        case .p6p7: innerBlocks.count + 2
        }
    }
}

/// The anchor generator of a dense detector: the config's `anchor_sizes` / `aspect_ratios`
/// (or the family's torchvision defaults), checked against the pyramid's level count.
/// - Returns: the generator and its anchors per location (equal on every level, as the
///   shared head predicts the same number everywhere).
/// - Throws: `UnsupportedModelError` naming the field on a level-count or anchor-count mismatch.
func denseAnchorGenerator(_ config: DetectorConfig, levels: Int, defaultSizes: [[Double]],
                          defaultRatios: [[Double]]) throws -> (generator: AnchorGenerator, anchorsPerLocation: Int) {
    let sizes = config.anchorSizes ?? defaultSizes
    let ratios = config.aspectRatios ?? defaultRatios
    guard sizes.count == levels else {
        throw UnsupportedModelError("anchor_sizes has \(sizes.count) levels; the feature pyramid returns \(levels)")
    }
    let generator: AnchorGenerator
    do {
        generator = try AnchorGenerator(sizes: sizes, aspectRatios: ratios)
    } catch {
        throw UnsupportedModelError("anchor_sizes/aspect_ratios: \(error)")
    }
    let perLocation = generator.anchorsPerLocation
    guard let first = perLocation.first, perLocation.allSatisfy({ $0 == first }) else {
        throw UnsupportedModelError("anchor_sizes × aspect_ratios give \(perLocation) anchors per level; the shared head needs the same count on every level")
    }
    return (generator, first)
}

/// The anchors of each level `[H_l·W_l·A, 4]` for a padded batch of `batchSize`, with
/// torchvision's integer-division strides.
func levelAnchors(_ generator: AnchorGenerator, batchSize: Size2, featureSizes: [Size2]) -> [Tensor] {
    let strides = featureSizes.map { Size2(batchSize.h / $0.h, batchSize.w / $0.w) }
    return generator.gridAnchors(featureSizes: featureSizes, strides: strides)
}
