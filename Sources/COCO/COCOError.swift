// Errors of the COCO module: bad JSON, missing or mistyped fields, results that do not fit the ground truth.

/// An input problem found while reading an instances or results file, or while writing output.
/// Every case names the file and, where there is one, the field (as a path like
/// `annotations[12].bbox`) so that the message alone locates the problem.
public enum COCOError: Error, Equatable, CustomStringConvertible {
    /// The file could not be read.
    case unreadableFile(path: String, reason: String)
    /// The file could not be written.
    case unwritableFile(path: String, reason: String)
    /// The bytes are not valid JSON; `line` and `column` are 1-based.
    case malformedJSON(file: String, line: Int, column: Int, message: String)
    /// A required field is absent.
    case missingField(file: String, field: String)
    /// A field has the wrong JSON type or an invalid value.
    case invalidField(file: String, field: String, expected: String)
    /// A result refers to an image that the ground truth does not list (pycocotools asserts).
    case unknownImage(file: String, field: String, imageId: Int)

    public var description: String {
        switch self {
        case let .unreadableFile(path, reason):
            return "cannot read \(path): \(reason)"
        case let .unwritableFile(path, reason):
            return "cannot write \(path): \(reason)"
        case let .malformedJSON(file, line, column, message):
            return "\(file): invalid JSON at line \(line), column \(column): \(message)"
        case let .missingField(file, field):
            return "\(file): missing field \(field)"
        case let .invalidField(file, field, expected):
            return "\(file): field \(field) must be \(expected)"
        case let .unknownImage(file, field, imageId):
            return "\(file): \(field) is \(imageId), an image id that is not in the ground truth"
        }
    }
}
