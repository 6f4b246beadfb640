// `detq classify`: ImageNet preprocessing, a classifier forward, softmax and top-k.
import Detectors
import Foundation
import ImageIO
import Layers
import Quantization
import TensorCore

/// A classifier with its weights and preprocessing, ready to run.
public struct ClassificationModel {
    public let name: String
    public let config: ClassifierConfig
    public let network: any Layer
    public let classNames: [String]
    /// The quantized model running in `network`, when built with `quantized`.
    public private(set) var quantization: QuantizedModel?

    /// Builds `model` from its description and loads `weights` strictly; with `quantized`, loads
    /// that quantized file (made for the same model and weights) and runs it in `mode` (default:
    /// the file's).
    public init(model: String, weights: String?, configPath: String? = nil, quantized: String? = nil,
                mode: ExecutionMode? = nil) throws {
        let url = try ModelCatalog.configURL(model: model, configPath: configPath)
        config = try ModelCatalog.decode(ClassifierConfig.self, from: url)
        name = model
        network = try makeClassifier(config)
        if let weights { try loadWeights(weights, into: network) } else { network.foldBatchNorms() }
        if let file = config.classNames {
            classNames = try ModelCatalog.classNames(file: file, relativeTo: url)
            guard classNames.count == config.numClasses else {
                throw ModelDescriptionError("\(url.path): class_names has \(classNames.count) names for \(config.numClasses) classes")
            }
        } else {
            classNames = (0..<config.numClasses).map(String.init)
        }
        if let quantized {
            quantization = try installQuantized(quantized, on: network, modelName: model, mode: mode)
        }
    }

    /// The network input `[1, 3, crop, crop]` for an image, as torchvision's ImageNet transforms.
    public func preprocess(_ image: RGBImage) -> Tensor {
        let values = imagenetPreprocess(image, resize: config.resizeSize, crop: config.cropSize,
                                        mean: config.imageMean, std: config.imageStd)
        return Tensor(shape: [1, 3, config.cropSize, config.cropSize], scalars: values)
    }

    /// Class probabilities (softmax of the logits) for one image.
    public func probabilities(_ image: RGBImage) -> [Float] {
        softmax(network(preprocess(image)), axis: 1).scalars
    }
}

/// One predicted class.
public struct ClassPrediction: Codable, Sendable {
    public var index: Int
    public var name: String
    public var probability: Float
}

/// The `k` most probable classes, highest first (ties: lower index first).
public func topPredictions(_ probabilities: [Float], names: [String], k: Int) -> [ClassPrediction] {
    let (values, indices) = topK(probabilities, k: min(k, probabilities.count))
    return zip(values, indices).map { ClassPrediction(index: $1, name: names[$1], probability: $0) }
}
