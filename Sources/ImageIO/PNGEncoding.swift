// RGBImage → PNG bytes through the CImageCodecs shim (libpng), and atomic PNG files.
import CImageCodecs

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The image as an 8-bit RGB, non-interlaced PNG (zlib's default compression level).
/// Throws ``ImageIOError/encodingFailed(path:message:)`` for an empty image.
public func encodePNG(_ image: RGBImage) throws -> [UInt8] {
    try encodePNG(image, destination: "<in-memory PNG>")
}

/// Writes the image as a PNG at `path`, atomically: the bytes go to a temporary file in the
/// same folder, which is then renamed over `path`, so a reader never sees half a file.
/// Throws ``ImageIOError`` naming `path`.
public func writePNG(_ image: RGBImage, to path: String) throws {
    let bytes = try encodePNG(image, destination: path)
    try writeFileAtomically(bytes, to: path)
}

func encodePNG(_ image: RGBImage, destination: String) throws -> [UInt8] {
    image.checkLayout("encodePNG")
    guard image.width > 0, image.height > 0, image.width <= Int(Int32.max), image.height <= Int(Int32.max) else {
        throw ImageIOError.encodingFailed(path: destination,
                                          message: "cannot encode a \(image.width)x\(image.height) image")
    }
    var message = [CChar](repeating: 0, count: 512)
    var encoded: UnsafeMutablePointer<UInt8>?
    var size = 0
    let status = image.pixels.withUnsafeBufferPointer { pixels in
        message.withUnsafeMutableBufferPointer { text in
            image_codecs_encode_png(pixels.baseAddress, Int32(image.width), Int32(image.height),
                                    &encoded, &size, text.baseAddress, text.count)
        }
    }
    guard Int(status) == Int(IMAGE_CODECS_OK), let encoded else {
        throw ImageIOError.encodingFailed(path: destination, message: string(fromNulTerminated: message))
    }
    defer { image_codecs_free(encoded) }
    return [UInt8](UnsafeBufferPointer(start: encoded, count: size))
}

/// Writes `bytes` to `<folder>/.<name>.tmp-<pid>-<random>`, flushes it to disk, then renames
/// it to `path`; on any failure the temporary file is removed.
func writeFileAtomically(_ bytes: [UInt8], to path: String) throws {
    let slash = path.lastIndex(of: "/")
    let folder = slash.map { String(path[...$0]) } ?? ""
    let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
    let temporary = "\(folder).\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"

    let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else {
        throw ImageIOError.unwritableFile(path: path, reason: "\(temporary): \(systemErrorMessage())")
    }
    func fail(_ reason: String) -> ImageIOError {
        close(descriptor)
        unlink(temporary)
        return ImageIOError.unwritableFile(path: path, reason: reason)
    }
    let writeError: String? = bytes.withUnsafeBytes { buffer in
        var remaining = buffer[...]
        while !remaining.isEmpty {
            let count = write(descriptor, UnsafeRawBufferPointer(rebasing: remaining).baseAddress, remaining.count)
            if count < 0 {
                if errno == EINTR { continue }
                return systemErrorMessage()
            }
            remaining = remaining.dropFirst(count)
        }
        return nil
    }
    if let writeError { throw fail(writeError) }
    guard fsync(descriptor) == 0 else { throw fail(systemErrorMessage()) }
    guard close(descriptor) == 0 else {
        let reason = systemErrorMessage()
        unlink(temporary)
        throw ImageIOError.unwritableFile(path: path, reason: reason)
    }
    guard rename(temporary, path) == 0 else {
        let reason = systemErrorMessage()
        unlink(temporary)
        throw ImageIOError.unwritableFile(path: path, reason: reason)
    }
}
