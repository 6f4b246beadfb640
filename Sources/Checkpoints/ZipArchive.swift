// A read-only zip reader (stored entries, zip64) for the archives torch.save writes.

/// The entries of a zip archive held in memory, located through its central directory.
///
/// Supports zip64 (torch.save always writes the zip64 end records) and stored entries;
/// compressed entries are listed but reading them throws ``CheckpointError/compressedEntry(path:entry:method:)``.
/// Every offset and size read from the file is bounds-checked.
struct ZipArchive {
    struct Entry {
        var name: String
        var method: Int
        var flags: Int
        var compressedSize: Int
        var uncompressedSize: Int
        var localHeaderOffset: Int
    }

    let path: String
    let bytes: [UInt8]
    /// Entries in central-directory order.
    private(set) var entries: [Entry] = []
    private var indexByName: [String: Int] = [:]

    private static let endOfCentralDirectory: UInt64 = 0x0605_4b50
    private static let zip64EndLocator: UInt64 = 0x0706_4b50
    private static let zip64End: UInt64 = 0x0606_4b50
    private static let centralHeader: UInt64 = 0x0201_4b50
    private static let localHeader: UInt64 = 0x0403_4b50

    /// Parses the central directory of the archive in `bytes`.
    init(path: String, bytes: [UInt8]) throws {
        self.path = path
        self.bytes = bytes
        let end = try findEndOfCentralDirectory()
        var entryCount = Int(try read(end + 10, 2, "end of central directory"))
        var directorySize = Int(try read(end + 12, 4, "end of central directory"))
        var directoryOffset = Int(try read(end + 16, 4, "end of central directory"))
        let diskNumber = try read(end + 4, 2, "end of central directory")
        guard diskNumber == 0 else { throw malformed("end of central directory", "multi-disk archives are not supported") }

        // torch writes a zip64 end record even for small files; when present it is authoritative.
        if end >= 20, bytes.littleEndian(at: end - 20, width: 4) == Self.zip64EndLocator {
            let recordOffset = try offset(read(end - 12, 8, "zip64 end locator"), "zip64 end locator")
            guard bytes.littleEndian(at: recordOffset, width: 4) == Self.zip64End else {
                throw malformed("zip64 end record", "signature not found at byte \(recordOffset)")
            }
            entryCount = try offset(read(recordOffset + 32, 8, "zip64 end record"), "zip64 end record")
            directorySize = try offset(read(recordOffset + 40, 8, "zip64 end record"), "zip64 end record")
            directoryOffset = try offset(read(recordOffset + 48, 8, "zip64 end record"), "zip64 end record")
        }
        guard let directoryEnd = addChecked(directoryOffset, directorySize), directoryEnd <= bytes.count else {
            throw malformed("central directory", "\(directorySize) bytes at \(directoryOffset) run past the end of the \(bytes.count)-byte file")
        }

        var position = directoryOffset
        for index in 0..<entryCount {
            let field = "central directory entry \(index)"
            guard position + 46 <= directoryEnd,
                  bytes.littleEndian(at: position, width: 4) == Self.centralHeader else {
                throw malformed(field, "bad signature at byte \(position)")
            }
            let flags = Int(try read(position + 8, 2, field))
            let method = Int(try read(position + 10, 2, field))
            var compressed = try read(position + 20, 4, field)
            var uncompressed = try read(position + 24, 4, field)
            let nameLength = Int(try read(position + 28, 2, field))
            let extraLength = Int(try read(position + 30, 2, field))
            let commentLength = Int(try read(position + 32, 2, field))
            var localOffset = try read(position + 42, 4, field)
            let nameStart = position + 46
            let extraStart = nameStart + nameLength
            let next = extraStart + extraLength + commentLength
            guard next <= directoryEnd else { throw malformed(field, "name and extra fields run past the central directory") }
            let name = String(decoding: bytes[nameStart..<extraStart], as: UTF8.self)

            // zip64 extended information: only the fields saturated in the header are present, in this order.
            var extra = extraStart
            while extra + 4 <= extraStart + extraLength {
                let id = try read(extra, 2, field)
                let size = Int(try read(extra + 2, 2, field))
                let body = extra + 4
                guard body + size <= extraStart + extraLength else { throw malformed(field, "extra field runs past its record") }
                if id == 0x0001 {
                    var cursor = body
                    func take() throws -> UInt64 {
                        guard cursor + 8 <= body + size else { throw malformed("entry '\(name)'", "zip64 extra field is too short") }
                        defer { cursor += 8 }
                        return try read(cursor, 8, field)
                    }
                    if uncompressed == 0xFFFF_FFFF { uncompressed = try take() }
                    if compressed == 0xFFFF_FFFF { compressed = try take() }
                    if localOffset == 0xFFFF_FFFF { localOffset = try take() }
                }
                extra = body + size
            }
            if flags & 1 != 0 { throw malformed("entry '\(name)'", "encrypted entries are not supported") }
            let entry = Entry(name: name, method: method, flags: flags,
                              compressedSize: try offset(compressed, "entry '\(name)'"),
                              uncompressedSize: try offset(uncompressed, "entry '\(name)'"),
                              localHeaderOffset: try offset(localOffset, "entry '\(name)'"))
            if indexByName[name] == nil { indexByName[name] = entries.count }
            entries.append(entry)
            position = next
        }
    }

    /// The entry named `name`, if present.
    func entry(named name: String) -> Entry? {
        indexByName[name].map { entries[$0] }
    }

    /// The byte range of a stored entry's data inside `bytes`.
    func dataRange(of name: String) throws -> Range<Int> {
        guard let entry = entry(named: name) else { throw CheckpointError.missingEntry(path: path, entry: name) }
        let field = "entry '\(name)'"
        guard entry.method == 0 else {
            throw CheckpointError.compressedEntry(path: path, entry: name, method: entry.method)
        }
        guard entry.compressedSize == entry.uncompressedSize else {
            throw malformed(field, "stored entry has compressed size \(entry.compressedSize) but size \(entry.uncompressedSize)")
        }
        let header = entry.localHeaderOffset
        guard bytes.littleEndian(at: header, width: 4) == Self.localHeader else {
            throw malformed(field, "local header signature not found at byte \(header)")
        }
        let nameLength = Int(try read(header + 26, 2, field))
        let extraLength = Int(try read(header + 28, 2, field))
        let start = header + 30 + nameLength + extraLength
        guard let end = addChecked(start, entry.compressedSize), end <= bytes.count else {
            throw malformed(field, "\(entry.compressedSize) data bytes at \(start) run past the end of the \(bytes.count)-byte file")
        }
        return start..<end
    }

    /// The bytes of a stored entry.
    func data(of name: String) throws -> [UInt8] {
        Array(bytes[try dataRange(of: name)])
    }

    // MARK: Helpers

    private func findEndOfCentralDirectory() throws -> Int {
        let minimum = 22
        guard bytes.count >= minimum else {
            throw malformed("end of central directory", "file of \(bytes.count) bytes is too short (truncated?)")
        }
        let lowest = max(0, bytes.count - minimum - 0xFFFF)
        var candidate = bytes.count - minimum
        while candidate >= lowest {
            if bytes[candidate] == 0x50, bytes.littleEndian(at: candidate, width: 4) == Self.endOfCentralDirectory,
               let commentLength = bytes.littleEndian(at: candidate + 20, width: 2),
               candidate + minimum + Int(commentLength) == bytes.count {
                return candidate
            }
            candidate -= 1
        }
        throw malformed("end of central directory", "record not found (file truncated or not a zip archive)")
    }

    private func read(_ position: Int, _ width: Int, _ field: String) throws -> UInt64 {
        guard let value = bytes.littleEndian(at: position, width: width) else {
            throw malformed(field, "\(width)-byte field at byte \(position) runs past the end of the \(bytes.count)-byte file")
        }
        return value
    }

    private func offset(_ value: UInt64, _ field: String) throws -> Int {
        guard value <= UInt64(Int.max) else { throw malformed(field, "value \(value) is too large") }
        return Int(value)
    }

    private func malformed(_ field: String, _ problem: String) -> CheckpointError {
        .malformedZip(path: path, field: field, problem: problem)
    }
}
