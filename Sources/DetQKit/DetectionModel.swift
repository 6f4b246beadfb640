// `detq detect`: a detector with its weights, fed decoded images, returning pixel boxes.
import Detectors
import Foundation
import ImageIO
import Layers
import Quantization
import TensorCore

/// A detector built from its description with weights loaded, plus its class names.
public struct DetectionModel {
    public let name: String
    public let config: DetectorConfig
    public let detector: any Detector
    /// Names by label index (COCO's 91 for torchvision COCO models).
    public let classNames: [String]
    /// The quantized model running in `detector`, when built with `quantized`.
    public private(set) var quantization: QuantizedModel?

    /// Builds `model` from its description and loads `weights` strictly (random-free: without
    /// weights the parameters stay at their placeholders, for benchmarks only); with
    /// `quantized`, loads that quantized file (made for the same model and weights) and runs it
    /// in `mode` (default: the file's).
    public init(model: String, weights: String?, configPath: String? = nil, scoreThreshold: Float? = nil,
                quantized: String? = nil, mode: ExecutionMode? = nil) throws {
        let url = try ModelCatalog.configURL(model: model, configPath: configPath)
        var config = try ModelCatalog.decode(DetectorConfig.self, from: url)
        if let scoreThreshold { config.scoreThresh = scoreThreshold }
        self.config = config
        name = model
        detector = try makeDetector(config)
        if let weights { try loadWeights(weights, into: detector) } else { detector.foldBatchNorms() }
        if let categories = config.categories {
            var names = (0..<config.numClasses).map(String.init)
            for category in categories {
                let label = config.labelToCategory?.first { $0.value == category.id }.flatMap { Int($0.key) } ?? category.id
                if label >= 0 && label < names.count { names[label] = category.name }
            }
            classNames = names
        } else if let file = config.classNames {
            classNames = try ModelCatalog.classNames(file: file, relativeTo: url)
        } else {
            classNames = (0..<config.numClasses).map(String.init)
        }
        if let quantized {
            quantization = try installQuantized(quantized, on: detector, modelName: model, mode: mode)
        }
    }

    /// Detections in original pixels for a decoded image.
    public func detect(_ image: RGBImage) -> Detections {
        detector([imageTensor(image)])[0]
    }

    /// The COCO category id of a label: the config's map, else the label itself.
    public func categoryID(label: Int) -> Int {
        config.labelToCategory?[String(label)] ?? label
    }
}

/// An RGB8 image as `[3, H, W]` Float32 in [0, 1] (torchvision's `to_tensor`: value / 255).
public func imageTensor(_ image: RGBImage) -> Tensor {
    let (h, w) = (image.height, image.width)
    return Tensor(shape: [3, h, w]) { out in
        image.pixels.withUnsafeBufferPointer { rgb in
            for y in 0..<h {
                for x in 0..<w {
                    let p = (y * w + x) * 3
                    for c in 0..<3 { out[(c * h + y) * w + x] = Float(rgb[p + c]) / 255 }
                }
            }
        }
    }
}
