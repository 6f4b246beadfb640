// torchvision's FCOSHead (Tian et al. 2019): classification, box-regression and centre-ness branches.
import Layers
import TensorCore

/// `head.regression_head`: GroupNorm tower (`conv`) shared by `bbox_reg` (3×3 conv to `A·4`,
/// then ReLU) and `bbox_ctrness` (3×3 conv to `A`).
public final class FCOSRegressionHead: Module {
    public let conv: Sequential
    public let bboxReg: Conv2d
    public let bboxCtrness: Conv2d
    public let numAnchors: Int

    public init(inChannels: Int, numAnchors: Int, numConvs: Int = 4,
                norm: DenseHeadNorm = .groupNorm(groups: 32, eps: 1e-5)) {
        conv = fcosTower(channels: inChannels, numConvs: numConvs, norm: norm)
        bboxReg = Conv2d(inChannels, numAnchors * 4, kernelSize: 3, padding: 1)
        bboxCtrness = Conv2d(inChannels, numAnchors, kernelSize: 3, padding: 1)
        self.numAnchors = numAnchors
    }

    public var children: [(name: String, module: any Module)] {
        [("conv", conv), ("bbox_reg", bboxReg), ("bbox_ctrness", bboxCtrness)]
    }

    /// Per level: box distances (l, t, r, b) `[N, H·W·A, 4]` (after ReLU) and centre-ness
    /// logits `[N, H·W·A, 1]`.
    public func callAsFunction(_ features: [Tensor]) -> (boxRegression: [Tensor], centerness: [Tensor]) {
        var regression: [Tensor] = [], centerness: [Tensor] = []
        for level in features {
            let tower = conv(level)
            regression.append(flattenedPerLocation(relu(bboxReg(tower)), valuesPerAnchor: 4))
            centerness.append(flattenedPerLocation(bboxCtrness(tower), valuesPerAnchor: 1))
        }
        return (regression, centerness)
    }
}

/// `head`: FCOS's two branches, GroupNorm(32) towers of `num_convs` (torchvision: 4) convs.
public final class FCOSHead: Module {
    public let classificationHead: DenseClassificationHead
    public let regressionHead: FCOSRegressionHead

    public init(inChannels: Int, numAnchors: Int, numClasses: Int, numConvs: Int = 4,
                norm: DenseHeadNorm = .groupNorm(groups: 32, eps: 1e-5)) {
        classificationHead = DenseClassificationHead(
            tower: fcosTower(channels: inChannels, numConvs: numConvs, norm: norm),
            inChannels: inChannels, numAnchors: numAnchors, numClasses: numClasses)
        regressionHead = FCOSRegressionHead(inChannels: inChannels, numAnchors: numAnchors, numConvs: numConvs,
                                            norm: norm)
    }

    public var children: [(name: String, module: any Module)] {
        [("classification_head", classificationHead), ("regression_head", regressionHead)]
    }

    /// Per level: class logits `[N, H·W·A, K]`, box distances `[N, H·W·A, 4]` and centre-ness
    /// logits `[N, H·W·A, 1]`.
    public func callAsFunction(_ features: [Tensor])
        -> (classLogits: [Tensor], boxRegression: [Tensor], centerness: [Tensor]) {
        let (regression, centerness) = regressionHead(features)
        return (classificationHead(features), regression, centerness)
    }
}
