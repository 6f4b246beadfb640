// Whole-file reads and atomic writes with POSIX calls, and bounds-checked little-endian loads.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The whole contents of the file at `path`.
func readFileBytes(at path: String) throws -> [UInt8] {
    guard let file = fopen(path, "rb") else {
        throw CheckpointError.unreadableFile(path: path, reason: String(cString: strerror(errno)))
    }
    defer { fclose(file) }
    var status = stat()
    guard fstat(fileno(file), &status) == 0 else {
        throw CheckpointError.unreadableFile(path: path, reason: String(cString: strerror(errno)))
    }
    guard (status.st_mode & S_IFMT) == S_IFREG else {
        throw CheckpointError.unreadableFile(path: path, reason: "not a regular file")
    }
    let size = Int(status.st_size)
    var readError: Int32 = 0
    let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
        var done = 0
        while done < size, let base = buffer.baseAddress {
            let got = fread(base + done, 1, size - done, file)
            if got == 0 { readError = ferror(file) != 0 ? errno : 0; break }
            done += got
        }
        initialized = done
    }
    guard bytes.count == size else {
        let reason = readError != 0 ? String(cString: strerror(readError)) : "file shrank while reading"
        throw CheckpointError.unreadableFile(path: path, reason: reason)
    }
    return bytes
}

/// Writes `chunks` to `path` atomically: into a temporary file in the same directory,
/// flushed to disk, then renamed over `path`. On failure the temporary file is removed.
func writeFileAtomically(_ chunks: [[UInt8]], to path: String) throws {
    let temporary = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    guard let file = fopen(temporary, "wb") else {
        throw CheckpointError.unwritableFile(path: path, reason: String(cString: strerror(errno)))
    }
    var failure: String?
    for chunk in chunks where failure == nil && !chunk.isEmpty {
        let written = chunk.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        if written != chunk.count { failure = String(cString: strerror(errno)) }
    }
    if failure == nil, fflush(file) != 0 || fsync(fileno(file)) != 0 {
        failure = String(cString: strerror(errno))
    }
    if fclose(file) != 0, failure == nil { failure = String(cString: strerror(errno)) }
    if failure == nil, rename(temporary, path) != 0 { failure = String(cString: strerror(errno)) }
    if let failure {
        unlink(temporary)
        throw CheckpointError.unwritableFile(path: path, reason: failure)
    }
}

extension Array where Element == UInt8 {
    /// The little-endian unsigned integer of `width` bytes at `offset`, or nil when the
    /// bytes run past the end. `width` is at most 8.
    func littleEndian(at offset: Int, width: Int) -> UInt64? {
        guard offset >= 0, width <= 8, let end = addChecked(offset, width), end <= count else { return nil }
        var value: UInt64 = 0
        for i in stride(from: width - 1, through: 0, by: -1) {
            value = value << 8 | UInt64(self[offset + i])
        }
        return value
    }
}
