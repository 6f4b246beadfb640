// Typed errors for box-machinery configurations that come from model configs.

/// A configuration error in BoxOps; the message names the offending field.
public enum BoxOpsError: Error, Equatable, CustomStringConvertible {
    /// Two per-level lists that must have one entry per feature level disagree in length.
    case levelCountMismatch(field: String, expected: Int, actual: Int)
    /// A field holds a value outside its valid range.
    case invalidValue(field: String, reason: String)

    public var description: String {
        switch self {
        case let .levelCountMismatch(field, expected, actual):
            return "\(field): expected \(expected) entries (one per feature level), got \(actual)"
        case let .invalidValue(field, reason):
            return "\(field): \(reason)"
        }
    }
}
