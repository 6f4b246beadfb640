// torchvision's RetinaNetHead (Lin et al. 2017): classification and box-regression branches shared by all levels.
import Layers
import TensorCore

/// `head.regression_head`: tower (`conv`) then `bbox_reg`, a 3×3 conv to `A·4` channels.
public final class RetinaNetRegressionHead: Module {
    public let conv: Sequential
    public let bboxReg: Conv2d
    public let numAnchors: Int

    public init(inChannels: Int, numAnchors: Int, numConvs: Int = 4, norm: DenseHeadNorm? = nil) {
        conv = retinaNetTower(channels: inChannels, numConvs: numConvs, norm: norm)
        bboxReg = Conv2d(inChannels, numAnchors * 4, kernelSize: 3, padding: 1)
        self.numAnchors = numAnchors
    }

    public var children: [(name: String, module: any Module)] { [("conv", conv), ("bbox_reg", bboxReg)] }

    /// Box codes (dx, dy, dw, dh) `[N, H·W·A, 4]` of each level `[N, C, H, W]`.
    public func callAsFunction(_ features: [Tensor]) -> [Tensor] {
        features.map { flattenedPerLocation(bboxReg(conv($0)), valuesPerAnchor: 4) }
    }
}

/// `head`: the two branches. v1 (`retinanet_resnet50_fpn`) has no norm and conv biases; v2
/// has GroupNorm(32) after bias-free convs.
public final class RetinaNetHead: Module {
    public let classificationHead: DenseClassificationHead
    public let regressionHead: RetinaNetRegressionHead

    public init(inChannels: Int, numAnchors: Int, numClasses: Int, numConvs: Int = 4, norm: DenseHeadNorm? = nil) {
        classificationHead = DenseClassificationHead(
            tower: retinaNetTower(channels: inChannels, numConvs: numConvs, norm: norm),
            inChannels: inChannels, numAnchors: numAnchors, numClasses: numClasses)
        regressionHead = RetinaNetRegressionHead(inChannels: inChannels, numAnchors: numAnchors,
                                                 numConvs: numConvs, norm: norm)
    }

    public var children: [(name: String, module: any Module)] {
        [("classification_head", classificationHead), ("regression_head", regressionHead)]
    }

    /// Per level: class logits `[N, H·W·A, K]` and box codes `[N, H·W·A, 4]`.
    public func callAsFunction(_ features: [Tensor]) -> (classLogits: [Tensor], boxRegression: [Tensor]) {
        (classificationHead(features), regressionHead(features))
    }

    /// The state-dict key torchvision 0.14 uses for `key` from a checkpoint saved before the
    /// head convs became `Conv2dNormActivation` (the COCO v1 checkpoint,
    /// `retinanet_resnet50_fpn_coco-eeacb38b.pth`): `…_head.conv.{2i}.{weight,bias}` →
    /// `…_head.conv.{i}.0.{weight,bias}`, as torchvision's `_v1_to_v2_weights`. Other keys are
    /// returned unchanged.
    public static func upgradedLegacyKey(_ key: String) -> String {
        for branch in ["head.classification_head.conv.", "head.regression_head.conv."] where key.hasPrefix(branch) {
            let rest = key.dropFirst(branch.count).split(separator: ".")
            guard rest.count == 2, let index = Int(rest[0]), index % 2 == 0, index < 8,
                  rest[1] == "weight" || rest[1] == "bias" else { return key }
            return "\(branch)\(index / 2).0.\(rest[1])"
        }
        return key
    }
}
