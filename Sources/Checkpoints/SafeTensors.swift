// Reads and writes the safetensors format (8-byte header length, JSON header, packed data), as the Rust crate does.

/// The largest header the reference implementation accepts.
private let maximumHeaderLength = 100_000_000

/// Reads a `.safetensors` file.
///
/// Layout: a little-endian u64 header length `n`; `n` bytes of UTF-8 JSON mapping each key
/// to `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets relative to the data
/// section) plus an optional `"__metadata__"` string map; then the data section. As the
/// reference implementation requires, the offsets must tile the data section exactly (no
/// overlap, no gap, nothing left over) and each byte count must match dtype and shape.
/// Keys come back in data-offset order.
public func readSafeTensors(at path: String) throws -> StateDict {
    try parseSafeTensors(path: path, bytes: try readFileBytes(at: path))
}

func parseSafeTensors(path: String, bytes: [UInt8]) throws -> StateDict {
    func malformed(_ field: String, _ problem: String) -> CheckpointError {
        .malformedSafeTensors(path: path, field: field, problem: problem)
    }
    guard let rawLength = bytes.littleEndian(at: 0, width: 8) else {
        throw malformed("header length", "the \(bytes.count)-byte file is shorter than the 8-byte header length")
    }
    guard rawLength <= UInt64(maximumHeaderLength) else {
        throw malformed("header length", "\(rawLength) bytes exceeds the \(maximumHeaderLength)-byte limit")
    }
    let headerLength = Int(rawLength)
    guard 8 + headerLength <= bytes.count else {
        throw malformed("header length", "\(headerLength)-byte header runs past the end of the \(bytes.count)-byte file")
    }
    let dataStart = 8 + headerLength
    let dataLength = bytes.count - dataStart

    let header: JSONValue
    do {
        header = try JSONParser.parse(Array(bytes[8..<dataStart]))
    } catch let error as JSONSyntaxError {
        throw malformed("header", "invalid JSON at header byte \(error.offset): \(error.problem)")
    }
    guard case let .object(members) = header else { throw malformed("header", "is a JSON \(header.typeName), not an object") }

    struct Entry {
        var key: String
        var dtype: DType
        var shape: [Int]
        var begin: Int
        var end: Int
        var headerIndex: Int
    }
    var metadata: [String: String] = [:]
    var entries: [Entry] = []
    var seen = Set<String>()
    for (headerIndex, (key, value)) in members.enumerated() {
        guard seen.insert(key).inserted else { throw malformed("'\(key)'", "key appears twice in the header") }
        if key == "__metadata__" {
            guard case let .object(pairs) = value else { throw malformed("__metadata__", "is a JSON \(value.typeName), not an object") }
            for (name, item) in pairs {
                guard case let .string(text) = item else { throw malformed("__metadata__.\(name)", "is a JSON \(item.typeName), not a string") }
                metadata[name] = text
            }
            continue
        }
        guard case let .object(fields) = value else { throw malformed("'\(key)'", "is a JSON \(value.typeName), not an object") }
        func field(_ name: String) throws -> JSONValue {
            guard let found = fields.first(where: { $0.key == name }) else { throw malformed("'\(key)'.\(name)", "is missing") }
            return found.value
        }
        func integers(_ name: String) throws -> [Int] {
            guard case let .array(items) = try field(name) else { throw malformed("'\(key)'.\(name)", "is not an array") }
            return try items.map {
                guard case let .integer(number) = $0, number >= 0 else {
                    throw malformed("'\(key)'.\(name)", "holds something other than a non-negative integer")
                }
                return number
            }
        }
        guard case let .string(dtypeName) = try field("dtype") else { throw malformed("'\(key)'.dtype", "is not a string") }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw CheckpointError.unsupportedDType(path: path, key: key, dtype: dtypeName)
        }
        let shape = try integers("shape")
        let offsets = try integers("data_offsets")
        guard offsets.count == 2 else { throw malformed("'\(key)'.data_offsets", "has \(offsets.count) values, not 2") }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin <= end else { throw malformed("'\(key)'.data_offsets", "begin \(begin) is after end \(end)") }
        guard end <= dataLength else {
            throw malformed("'\(key)'.data_offsets", "[\(begin), \(end)] points past the end of the \(dataLength)-byte data section (file of \(bytes.count) bytes)")
        }
        guard let count = checkedProduct(shape), let byteCount = multiplyChecked(count, dtype.byteSize) else {
            throw malformed("'\(key)'.shape", "\(shape) overflows")
        }
        guard byteCount == end - begin else {
            throw malformed("'\(key)'.data_offsets", "[\(begin), \(end)] spans \(end - begin) bytes but \(dtypeName) \(shape) needs \(byteCount)")
        }
        entries.append(Entry(key: key, dtype: dtype, shape: shape, begin: begin, end: end, headerIndex: headerIndex))
    }

    entries.sort { ($0.begin, $0.end, $0.headerIndex) < ($1.begin, $1.end, $1.headerIndex) }
    var covered = 0
    for entry in entries {
        guard entry.begin == covered else {
            let problem = entry.begin < covered ? "overlaps the tensor before it (which ends at byte \(covered))"
                                                : "leaves a gap after byte \(covered)"
            throw malformed("'\(entry.key)'.data_offsets", "[\(entry.begin), \(entry.end)] \(problem)")
        }
        covered = entry.end
    }
    guard covered == dataLength else {
        throw malformed("data section", "tensors cover \(covered) of its \(dataLength) bytes")
    }

    var result = StateDict(metadata: metadata)
    for entry in entries {
        let range = (dataStart + entry.begin)..<(dataStart + entry.end)
        result[entry.key] = StoredTensor(dtype: entry.dtype, shape: entry.shape, bytes: Array(bytes[range]))
    }
    return result
}

/// Writes `dict` as a `.safetensors` file, atomically (temporary file, then rename).
///
/// The layout is the Python library's: tensors ordered by dtype (widest first, the Rust
/// crate's order) then by key bytes; the JSON header lists `__metadata__` first (keys
/// sorted; omitted when empty), then the tensors in data order, compact, padded with spaces
/// to a multiple of 8 bytes. Throws when a tensor's byte count disagrees with its shape.
public func writeSafeTensors(_ dict: StateDict, to path: String) throws {
    var ordered: [(key: String, tensor: StoredTensor)] = []
    for key in dict.keys {
        guard let tensor = dict[key] else { continue }
        guard key != "__metadata__" else {
            throw CheckpointError.invalidTensor(path: path, key: key, problem: "the key is reserved by safetensors")
        }
        guard let count = checkedProduct(tensor.shape), count * tensor.dtype.byteSize == tensor.bytes.count else {
            throw CheckpointError.invalidTensor(path: path, key: key,
                                                problem: "shape \(tensor.shape) of \(tensor.dtype.rawValue) does not match its \(tensor.bytes.count) bytes")
        }
        ordered.append((key, tensor))
    }
    ordered.sort { left, right in
        if left.tensor.dtype.safeTensorsOrder != right.tensor.dtype.safeTensorsOrder {
            return left.tensor.dtype.safeTensorsOrder > right.tensor.dtype.safeTensorsOrder
        }
        return left.key.utf8.lexicographicallyPrecedes(right.key.utf8)
    }

    var header: [UInt8] = [UInt8(ascii: "{")]
    var needsComma = false
    if !dict.metadata.isEmpty {
        appendJSONString("__metadata__", to: &header)
        header.append(UInt8(ascii: ":"))
        header.append(UInt8(ascii: "{"))
        let names = dict.metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        for (index, name) in names.enumerated() {
            if index > 0 { header.append(UInt8(ascii: ",")) }
            appendJSONString(name, to: &header)
            header.append(UInt8(ascii: ":"))
            appendJSONString(dict.metadata[name] ?? "", to: &header)
        }
        header.append(UInt8(ascii: "}"))
        needsComma = true
    }
    var offset = 0
    for (key, tensor) in ordered {
        if needsComma { header.append(UInt8(ascii: ",")) }
        needsComma = true
        appendJSONString(key, to: &header)
        let shape = tensor.shape.map(String.init).joined(separator: ",")
        let end = offset + tensor.bytes.count
        header += Array(":{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}".utf8)
        offset = end
    }
    header.append(UInt8(ascii: "}"))
    // Pad so the data section starts 8-byte aligned.
    while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }

    var length = [UInt8](repeating: 0, count: 8)
    for index in 0..<8 { length[index] = UInt8(truncatingIfNeeded: UInt64(header.count) >> (8 * UInt64(index))) }
    try writeFileAtomically([length, header] + ordered.map(\.tensor.bytes), to: path)
}
