// torchvision's SSDLiteHead (models/detection/ssdlite.py): SSD's head with depthwise-separable predictors (MobileNetV2 paper, section 6.2).
import Layers
import TensorCore

extension SSDHead {
    /// torchvision's `SSDLiteHead`: per level and head, `module_list.i.0` a 3×3 depthwise
    /// conv + batch norm + ReLU6 (`.0.0`, `.0.1`) and `module_list.i.1` a 1×1 conv with bias to
    /// `A_i · K` channels.
    public static func lite(inChannels: [Int], anchorsPerLocation: [Int], numClasses: Int,
                            normEps: Float) -> SSDHead {
        precondition(inChannels.count == anchorsPerLocation.count,
                     "SSDLiteHead: \(inChannels.count) levels of channels, \(anchorsPerLocation.count) of anchors")
        func predictors(_ columns: Int) -> [any Layer] {
            zip(inChannels, anchorsPerLocation).map { channels, anchors in
                Sequential([
                    convNormActivation(channels, channels, kernelSize: 3, groups: channels, normEps: normEps,
                                       activation: .relu6),
                    Conv2d(channels, columns * anchors, kernelSize: 1),
                ])
            }
        }
        return SSDHead(classificationHead: SSDScoringHead(moduleList: predictors(numClasses), numColumns: numClasses),
                       regressionHead: SSDScoringHead(moduleList: predictors(4), numColumns: 4))
    }
}
