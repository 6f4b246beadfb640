// Reads JPEG and PNG bytes into RGBImage through the CImageCodecs shim (libjpeg, libpng).
import CImageCodecs

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The container formats ImageIO decodes, recognised by their first bytes.
enum ImageFormat {
    case jpeg
    case png

    /// The format whose signature `data` starts with, or nil. JPEG: `FF D8 FF`; PNG: the
    /// eight-byte signature `89 'P' 'N' 'G' 0D 0A 1A 0A`.
    init?(sniffing data: [UInt8]) {
        if data.count >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF {
            self = .jpeg
        } else if data.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            self = .png
        } else {
            return nil
        }
    }

    var codecName: String {
        switch self {
        case .jpeg: return "JPEG"
        case .png: return "PNG"
        }
    }
}

/// Reads and decodes the image file at `path` (JPEG or PNG, chosen by its magic bytes, not
/// its extension) to 8-bit RGB, as PIL's `Image.open(path).convert("RGB")` does.
///
/// Refuses an image whose header announces more than `maxPixels` pixels before allocating
/// memory for it. Throws ``ImageIOError`` naming `path`.
public func loadImage(at path: String, maxPixels: Int = RGBImage.defaultMaxPixels) throws -> RGBImage {
    let data = try readFileBytes(at: path)
    return try decodeImage(data, source: path, maxPixels: maxPixels)
}

/// Decodes an in-memory JPEG or PNG (chosen by magic bytes) to 8-bit RGB.
///
/// - JPEG: baseline, progressive, arithmetic, restart markers; grayscale is replicated to
///   RGB; CMYK and YCCK are read as Adobe (inverted) CMYK and converted as PIL does (see
///   `image_codecs_jpeg.c`). libjpeg's corrupt-data warnings and a truncated file are errors.
/// - PNG: every colour type and bit depth, Adam7; alpha is dropped, not composited
///   (PIL's `convert("RGB")`); palettes are looked up with tRNS ignored; 16-bit samples keep
///   their high byte, except 16-bit gray, which PIL clamps to 0...255. A CRC error in any
///   chunk, a truncated file and a missing IEND are errors.
///
/// `source` names the data in errors (usually its file path). Throws ``ImageIOError``.
public func decodeImage(_ data: [UInt8], source: String, maxPixels: Int) throws -> RGBImage {
    guard let format = ImageFormat(sniffing: data) else {
        throw ImageIOError.unknownFormat(path: source, firstBytes: Array(data.prefix(8)))
    }
    var decoded = image_codecs_rgb(width: 0, height: 0, pixels: nil)
    var message = [CChar](repeating: 0, count: 512)
    let limit = Int64(max(maxPixels, 0))
    let status = data.withUnsafeBufferPointer { bytes in
        message.withUnsafeMutableBufferPointer { text in
            switch format {
            case .jpeg:
                return image_codecs_decode_jpeg(bytes.baseAddress, bytes.count, limit, &decoded,
                                                text.baseAddress, text.count)
            case .png:
                return image_codecs_decode_png(bytes.baseAddress, bytes.count, limit, &decoded,
                                               text.baseAddress, text.count)
            }
        }
    }
    let codecMessage = string(fromNulTerminated: message)
    switch Int(status) {
    case Int(IMAGE_CODECS_OK):
        break
    case Int(IMAGE_CODECS_TOO_MANY_PIXELS):
        throw ImageIOError.tooManyPixels(path: source, width: Int(decoded.width),
                                         height: Int(decoded.height), limit: maxPixels)
    case Int(IMAGE_CODECS_OUT_OF_MEMORY):
        throw ImageIOError.outOfMemory(path: source, codec: format.codecName, message: codecMessage)
    default:
        throw ImageIOError.corruptImage(path: source, codec: format.codecName, message: codecMessage)
    }
    guard let pixels = decoded.pixels else {
        throw ImageIOError.corruptImage(path: source, codec: format.codecName, message: "decoder returned no pixels")
    }
    defer { image_codecs_free(pixels) }
    let width = Int(decoded.width)
    let height = Int(decoded.height)
    let bytes = [UInt8](UnsafeBufferPointer(start: pixels, count: width * height * 3))
    return RGBImage(width: width, height: height, pixels: bytes)
}

/// The UTF-8 text before the first NUL of a C string buffer.
func string(fromNulTerminated buffer: [CChar]) -> String {
    let end = buffer.firstIndex(of: 0) ?? buffer.count
    return String(decoding: buffer[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// The system's words for the current `errno`.
func systemErrorMessage() -> String {
    String(cString: strerror(errno))
}

/// The whole content of the file at `path`. Throws ``ImageIOError/unreadableFile(path:reason:)``.
func readFileBytes(at path: String) throws -> [UInt8] {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else {
        throw ImageIOError.unreadableFile(path: path, reason: systemErrorMessage())
    }
    defer { close(descriptor) }
    var bytes: [UInt8] = []
    var information = stat()
    if fstat(descriptor, &information) == 0 && information.st_size > 0 {
        bytes.reserveCapacity(Int(information.st_size))
    }
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let count = chunk.withUnsafeMutableBytes { buffer in
            read(descriptor, buffer.baseAddress, buffer.count)
        }
        if count < 0 {
            if errno == EINTR { continue }
            throw ImageIOError.unreadableFile(path: path, reason: systemErrorMessage())
        }
        if count == 0 { break }
        bytes.append(contentsOf: chunk[0..<count])
    }
    return bytes
}
