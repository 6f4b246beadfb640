// The errors a quantization request, a calibration or a quantized file can raise.

/// A quantization request that cannot be carried out, or a quantized file that does not fit.
public enum QuantizationError: Error, CustomStringConvertible, Equatable {
    /// An option outside its domain.
    case invalidOption(name: String, value: String, reason: String)
    /// A requested layer path that the model does not have, or that is not a conv/linear layer.
    case unknownLayer(path: String, reason: String)
    /// No conv or linear layer is in scope.
    case emptyScope(String)
    /// An in-scope layer that calibration never ran.
    case layerNotExecuted(path: String)
    /// The calibration closure failed on a sample.
    case calibrationFailed(sample: Int, reason: String)
    /// A compensation policy naming execution indices that do not exist.
    case policyOutOfRange(index: Int, count: Int)
    /// A quantized file that is malformed or made for another model.
    case incompatibleFile(source: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidOption(name, value, reason):
            "invalid --\(name) '\(value)': \(reason)"
        case let .unknownLayer(path, reason):
            "layer '\(path)': \(reason)"
        case let .emptyScope(detail):
            "no conv or linear layer to quantize: \(detail)"
        case let .layerNotExecuted(path):
            "layer '\(path)' is in scope but never ran during calibration"
        case let .calibrationFailed(sample, reason):
            "calibration sample \(sample): \(reason)"
        case let .policyOutOfRange(index, count):
            "compensation layer index \(index) is outside 1...\(count) (execution indices of the quantized layers)"
        case let .incompatibleFile(source, reason):
            "\(source): \(reason)"
        }
    }
}
