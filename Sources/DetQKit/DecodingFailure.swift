// What a JSON file that did not decode got wrong, named by its field path.
import Foundation

/// A `Decodable` failure as one phrase naming the field (`missing field 'head.num_convs'`,
/// `field '[3].bbox': bbox must be …`); other errors as they describe themselves. Callers
/// prefix the file.
func describeDecodingFailure(_ error: any Error) -> String {
    func path(_ keys: [any CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
    switch error {
    case let DecodingError.keyNotFound(key, context):
        return "missing field '\(path(context.codingPath + [key]))'"
    case let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context):
        return "field '\(path(context.codingPath))': \(context.debugDescription)"
    case let DecodingError.dataCorrupted(context):
        return context.codingPath.isEmpty ? context.debugDescription
            : "field '\(path(context.codingPath))': \(context.debugDescription)"
    default:
        return "\(error)"
    }
}
