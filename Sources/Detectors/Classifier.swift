// ImageNet classifiers built from detectors/<name>/config.json: the backbones on real weights.
import Layers
import TensorCore

/// `detectors/mobilenet_v2/config.json`, `detectors/resnet50/config.json`.
public struct ClassifierConfig: Codable, Sendable {
    public var architecture: String
    public var numClasses: Int
    /// A file of class names, one per line, next to the config or in `detectors/`.
    public var classNames: String?
    public var resizeSize: Int
    public var cropSize: Int
    public var imageMean: [Float]
    public var imageStd: [Float]
    public var batchNormEps: Float?
}

/// The error for a description detq cannot build.
public struct UnsupportedModelError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Builds the classifier a config describes (weights not loaded yet).
public func makeClassifier(_ config: ClassifierConfig) throws -> any Layer {
    let eps = config.batchNormEps ?? 1e-5
    switch config.architecture {
    case "mobilenet_v2": return MobileNetV2(numClasses: config.numClasses, normEps: eps)
    case "resnet50": return ResNet(blocks: [3, 4, 6, 3], numClasses: config.numClasses, normEps: eps)
    default:
        throw UnsupportedModelError("architecture '\(config.architecture)' is not a classifier detq builds (mobilenet_v2, resnet50)")
    }
}
