// Builds the detector a config describes: one case per family, each family in its own file.
import Layers

/// Builds the detector `config` describes (weights not loaded yet).
public func makeDetector(_ config: DetectorConfig) throws -> any Detector {
    switch config.family {
    case "retinanet": return try RetinaNet(config)
    case "fcos": return try FCOS(config)
    case "ssd", "ssdlite": return try SSD(config)
    case "fasterrcnn": return try FasterRCNN(config)
    default:
        throw UnsupportedModelError("detector family '\(config.family)' is not built by detq yet")
    }
}
