// torchvision 0.14's RPNHead (models/detection/rpn.py): shared 3×3 convs, objectness and box deltas per anchor.
import Layers
import TensorCore

extension RegionProposalNetwork {
    /// torchvision's `RPNHead`, applied to every pyramid level with the same weights:
    /// `conv_depth` 3×3 convs with bias and ReLU (`conv.i.0`, no normalization, also in v2),
    /// then 1×1 convs for one objectness logit (`cls_logits`) and four box deltas
    /// (`bbox_pred`) per anchor.
    ///
    /// Checkpoints saved before torchvision 0.13 (the COCO v1 and MobileNetV3 ones) name the
    /// single conv `conv.weight`; torchvision renames it on load, detq expects `conv.0.0.weight`.
    public final class Head: Module {
        /// `conv.0` … `conv.{depth-1}`, each `Sequential([Conv2d 3×3, ReLU])`.
        public let conv: Sequential
        /// `cls_logits`: `[A, C, 1, 1]`.
        public let clsLogits: Conv2d
        /// `bbox_pred`: `[4A, C, 1, 1]`, channel `4a + k` is delta k of anchor a.
        public let bboxPred: Conv2d

        /// A head over `inChannels`-channel levels with `anchorsPerLocation` anchors per position.
        public init(inChannels: Int, anchorsPerLocation: Int, convDepth: Int = 1) {
            conv = Sequential((0..<convDepth).map { _ in
                Sequential([Conv2d(inChannels, inChannels, kernelSize: 3, padding: 1), Activation(.relu)])
            })
            clsLogits = Conv2d(inChannels, anchorsPerLocation, kernelSize: 1)
            bboxPred = Conv2d(inChannels, anchorsPerLocation * 4, kernelSize: 1)
        }

        public var children: [(name: String, module: any Module)] {
            [("conv", conv), ("cls_logits", clsLogits), ("bbox_pred", bboxPred)]
        }

        /// Per level `[N, C, H, W]`: objectness logits `[N, A, H, W]` and deltas `[N, 4A, H, W]`.
        public func callAsFunction(_ features: [Tensor]) -> (objectness: [Tensor], deltas: [Tensor]) {
            var objectness: [Tensor] = []
            var deltas: [Tensor] = []
            for level in features {
                let shared = conv(level)
                objectness.append(clsLogits(shared))
                deltas.append(bboxPred(shared))
            }
            return (objectness, deltas)
        }
    }
}
