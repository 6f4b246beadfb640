// torchvision 0.14's Faster R-CNN box heads and predictor (models/detection/faster_rcnn.py).
import Layers
import TensorCore

/// The box head of the RoI heads: pooled features `[R, C, oh, ow]` → `[R, representationSize]`.
public protocol RoIBoxHead: Module {
    /// Width of the output (the predictor's input).
    var representationSize: Int { get }
    func callAsFunction(_ pooled: Tensor) -> Tensor
}

extension RoIHeads {
    /// torchvision's `TwoMLPHead` (v1, MobileNetV3): flatten, `fc6` + ReLU, `fc7` + ReLU.
    public final class TwoMLPHead: RoIBoxHead {
        public let fc6: Linear
        public let fc7: Linear

        /// `inFeatures` = channels · oh · ow of the pooled features.
        public init(inFeatures: Int, representationSize: Int) {
            fc6 = Linear(inFeatures, representationSize)
            fc7 = Linear(representationSize, representationSize)
        }

        public var representationSize: Int { fc7.outFeatures }
        public var children: [(name: String, module: any Module)] { [("fc6", fc6), ("fc7", fc7)] }

        public func callAsFunction(_ pooled: Tensor) -> Tensor {
            // (R, C, oh, ow) -> (R, C*oh*ow); R may be 0
            let flat = pooled.reshaped([pooled.shape[0], pooled.shape.dropFirst().reduce(1, *)])
            return relu(fc7(relu(fc6(flat))))
        }
    }

    /// torchvision's `FastRCNNConvFCHead` (v2): a Sequential of 3×3 `Conv2dNormActivation`s
    /// (`0` … `n-1`; batch norm and no conv bias with `batchNorm`, else a conv bias), a
    /// flatten (`n`), then linear + ReLU pairs (`n+1`, `n+3`, …).
    public final class ConvFCHead: RoIBoxHead {
        public let convs: [Sequential]
        public let linears: [Linear]

        /// Input `[R, inChannels, height, width]`; `convLayers` and `fcLayers` as torchvision's
        /// `conv_layers` and `fc_layers`.
        public init(inChannels: Int, height: Int, width: Int, convLayers: [Int], fcLayers: [Int], batchNorm: Bool) {
            precondition(!fcLayers.isEmpty, "ConvFCHead: needs at least one fc layer")
            var previous = inChannels
            var convs: [Sequential] = []
            for channels in convLayers {
                if batchNorm {
                    convs.append(convNormActivation(previous, channels, kernelSize: 3, activation: .relu))
                } else {
                    convs.append(Sequential([Conv2d(previous, channels, kernelSize: 3, padding: 1), Activation(.relu)]))
                }
                previous = channels
            }
            self.convs = convs
            var features = previous * height * width
            var linears: [Linear] = []
            for width in fcLayers {
                linears.append(Linear(features, width))
                features = width
            }
            self.linears = linears
        }

        public var representationSize: Int { linears[linears.count - 1].outFeatures }

        public var children: [(name: String, module: any Module)] {
            let convEntries = convs.enumerated().map { (String($0.offset), $0.element as any Module) }
            let linearEntries = linears.enumerated().map {
                (String(convs.count + 1 + 2 * $0.offset), $0.element as any Module)
            }
            return convEntries + linearEntries
        }

        public func callAsFunction(_ pooled: Tensor) -> Tensor {
            var x = pooled
            for conv in convs { x = conv(x) }
            // nn.Flatten: (R, C, oh, ow) -> (R, C*oh*ow); R may be 0
            x = x.reshaped([x.shape[0], x.shape.dropFirst().reduce(1, *)])
            for linear in linears { x = relu(linear(x)) }
            return x
        }
    }

    /// torchvision's `FastRCNNPredictor`: class logits (`cls_score`, `[R, K]`) and per-class
    /// box deltas (`bbox_pred`, `[R, 4K]`, columns `4k…4k+3` for class k).
    public final class Predictor: Module {
        public let clsScore: Linear
        public let bboxPred: Linear

        /// `numClasses` includes the background (class 0).
        public init(inFeatures: Int, numClasses: Int) {
            clsScore = Linear(inFeatures, numClasses)
            bboxPred = Linear(inFeatures, numClasses * 4)
        }

        public var numClasses: Int { clsScore.outFeatures }
        public var children: [(name: String, module: any Module)] { [("cls_score", clsScore), ("bbox_pred", bboxPred)] }

        /// Logits `[R, K]` and deltas `[R, 4K]` for box features `[R, in]`.
        public func callAsFunction(_ features: Tensor) -> (classLogits: Tensor, boxRegression: Tensor) {
            (clsScore(features), bboxPred(features))
        }
    }
}
