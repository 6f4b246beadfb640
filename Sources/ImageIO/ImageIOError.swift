// The typed errors of image decoding, encoding and file I/O.

/// Why an image could not be read, decoded, encoded or written. Every case names the file
/// (or the `source` given to ``decodeImage(_:source:maxPixels:)``) and, for codec
/// failures, carries the codec's own message (libjpeg's or libpng's words).
public enum ImageIOError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file could not be opened or read (`reason` is the system's `strerror`).
    case unreadableFile(path: String, reason: String)
    /// The bytes start with neither the JPEG (`FF D8 FF`) nor the PNG signature.
    case unknownFormat(path: String, firstBytes: [UInt8])
    /// libjpeg or libpng refused the data: corrupt, truncated, a CRC error, a warning about
    /// damaged entropy data. `codec` is "JPEG" or "PNG".
    case corruptImage(path: String, codec: String, message: String)
    /// The header announces `width * height` pixels, more than `limit`; nothing was allocated.
    case tooManyPixels(path: String, width: Int, height: Int, limit: Int)
    /// The codec ran out of memory.
    case outOfMemory(path: String, codec: String, message: String)
    /// PNG encoding failed (an empty image, libpng's error).
    case encodingFailed(path: String, message: String)
    /// The file (or its temporary sibling) could not be written or renamed into place.
    case unwritableFile(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadableFile(path, reason):
            return "\(path): cannot read: \(reason)"
        case let .unknownFormat(path, firstBytes):
            if firstBytes.isEmpty { return "\(path): not an image: the file is empty" }
            let hex = firstBytes.map { byte in
                let digits = String(byte, radix: 16)
                return digits.count == 1 ? "0" + digits : digits
            }.joined(separator: " ")
            return "\(path): not a JPEG or PNG image (starts with \(hex))"
        case let .corruptImage(path, codec, message):
            return "\(path): cannot decode \(codec): \(message)"
        case let .tooManyPixels(path, width, height, limit):
            return "\(path): image is \(width)x\(height) = \(width * height) pixels, over the limit of \(limit) (a decompression bomb?)"
        case let .outOfMemory(path, codec, message):
            return "\(path): out of memory decoding \(codec): \(message)"
        case let .encodingFailed(path, message):
            return "\(path): cannot encode PNG: \(message)"
        case let .unwritableFile(path, reason):
            return "\(path): cannot write: \(reason)"
        }
    }
}
