// Reads torch.save checkpoints: the zip format (torch >= 1.6) and the legacy pickle stream (torch < 1.6).

/// Where a storage's elements lie in the file: the root storage's data range.
private struct StorageData {
    var type: TorchStorageType
    var byteRange: Range<Int>
    var elementCount: Int { byteRange.count / type.elementSize }
}

/// The torch zip layout: `<archive>/data.pkl`, `<archive>/data/<key>`, `<archive>/version`,
/// and (torch >= 2.1) `<archive>/byteorder`.
func loadTorchZipCheckpoint(path: String, bytes: [UInt8]) throws -> StateDict {
    let archive = try ZipArchive(path: path, bytes: bytes)
    guard let pickleEntry = archive.entries.first(where: { $0.name == "data.pkl" || $0.name.hasSuffix("/data.pkl") }) else {
        throw CheckpointError.missingEntry(path: path, entry: "<archive>/data.pkl")
    }
    let prefix = String(pickleEntry.name.dropLast("data.pkl".count))
    if archive.entry(named: prefix + "byteorder") != nil {
        let order = String(decoding: try archive.data(of: prefix + "byteorder"), as: UTF8.self)
        guard order.trimmingWhitespace() == "little" else {
            throw CheckpointError.malformedZip(path: path, field: "entry '\(prefix)byteorder'",
                                               problem: "byte order '\(order)' is not supported (only little)")
        }
    }

    var storages: [String: StorageData] = [:]
    let pickleRange = try archive.dataRange(of: pickleEntry.name)
    let arena = PickleArena()
    defer { arena.tearDown() }
    var unpickler = Unpickler(path: path, part: pickleEntry.name, bytes: bytes, start: pickleRange.lowerBound,
                              end: pickleRange.upperBound, arena: arena) { id in
        // ('storage', storage_type, key, location, numel)
        guard case let .tuple(fields) = id, fields.count == 5, case .string("storage") = fields[0],
              case let .global(.storageType(type)) = fields[1], case let .string(key) = fields[2],
              case let .int(count) = fields[4], count >= 0 else {
            throw PersistentIDProblem(problem: "persistent id is not ('storage', type, key, location, numel)")
        }
        if let existing = storages[key] {
            guard existing.type == type else {
                throw PersistentIDProblem(problem: "storage '\(key)' is both \(existing.type.name) and \(type.name)")
            }
        } else {
            let entryName = prefix + "data/" + key
            let range = try archive.dataRange(of: entryName)
            guard let expected = multiplyChecked(count, type.elementSize), expected == range.count else {
                throw CheckpointError.malformedZip(path: path, field: "entry '\(entryName)'",
                                                   problem: "holds \(range.count) bytes, \(type.name) of \(count) elements needs \(count * type.elementSize)")
            }
            storages[key] = StorageData(type: type, byteRange: range)
        }
        return .storage(StorageReference(type: type, key: key, elementOffset: 0, elementCount: count))
    }
    let root = try unpickler.load()
    return try stateDict(from: root, storages: storages, path: path, bytes: bytes)
}

/// The legacy stream: magic number, protocol version and sys_info pickles, the main pickle
/// (persistent ids `('storage', type, root_key, location, numel, view_metadata)`), a pickled
/// list of storage keys, then per storage an 8-byte little-endian element count and the raw data.
func loadLegacyTorchCheckpoint(path: String, bytes: [UInt8]) throws -> StateDict {
    var position = 0
    let arena = PickleArena()
    defer { arena.tearDown() }
    func nextPickle(_ part: String, persistentLoad: @escaping (PickleValue) throws -> PickleValue) throws -> PickleValue {
        var unpickler = Unpickler(path: path, part: part, bytes: bytes, start: position, arena: arena,
                                  persistentLoad: persistentLoad)
        let value = try unpickler.load()
        position = unpickler.position
        return value
    }
    let noPersistentIds: (String) -> (PickleValue) throws -> PickleValue = { part in
        { _ in throw PersistentIDProblem(problem: "unexpected persistent id in the \(part) pickle") }
    }

    // 0x1950a86a20f9469cfc6c, little-endian.
    let magic: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]
    guard case let .bigInt(found) = try nextPickle("magic number", persistentLoad: noPersistentIds("magic number")),
          found == magic else {
        throw CheckpointError.malformedPickle(path: path, part: "magic number", offset: 0,
                                              problem: "not the torch magic number (corrupt or not a torch checkpoint)")
    }
    guard case .int(1001) = try nextPickle("protocol version", persistentLoad: noPersistentIds("protocol version")) else {
        throw CheckpointError.malformedPickle(path: path, part: "protocol version", offset: position,
                                              problem: "unsupported legacy protocol version (expected 1001)")
    }
    let systemInfoStart = position
    let systemInfo = try nextPickle("sys_info", persistentLoad: noPersistentIds("sys_info"))
    if case let .dict(info) = systemInfo, case .bool(false)? = info["little_endian"] {
        throw CheckpointError.malformedPickle(path: path, part: "sys_info", offset: systemInfoStart,
                                              problem: "big-endian checkpoints are not supported")
    }

    // Storage types by root key, learned from the main pickle's persistent ids.
    var rootTypes: [String: TorchStorageType] = [:]
    let root = try nextPickle("main pickle") { id in
        guard case let .tuple(fields) = id, fields.count == 6, case let .string(kind) = fields[0] else {
            throw PersistentIDProblem(problem: "persistent id is not a ('storage', ...) tuple")
        }
        guard kind == "storage" else {
            throw PersistentIDProblem(problem: "persistent id of kind '\(kind)' is not supported (pickled modules are not read)")
        }
        guard case let .global(.storageType(type)) = fields[1], case let .string(rootKey) = fields[2],
              case let .int(count) = fields[4], count >= 0 else {
            throw PersistentIDProblem(problem: "persistent id is not ('storage', type, root_key, location, numel, view_metadata)")
        }
        if let known = rootTypes[rootKey], known != type {
            throw PersistentIDProblem(problem: "storage '\(rootKey)' is both \(known.name) and \(type.name)")
        }
        rootTypes[rootKey] = type
        // view_metadata: None, or (view_key, offset, view_size) in elements of the root storage.
        switch fields[5] {
        case .none:
            return .storage(StorageReference(type: type, key: rootKey, elementOffset: 0, elementCount: count))
        case let .tuple(view):
            guard view.count == 3, case let .int(offset) = view[1], case let .int(size) = view[2], offset >= 0, size >= 0 else {
                throw PersistentIDProblem(problem: "bad storage view metadata for '\(rootKey)'")
            }
            return .storage(StorageReference(type: type, key: rootKey, elementOffset: offset, elementCount: size))
        default:
            throw PersistentIDProblem(problem: "bad storage view metadata for '\(rootKey)'")
        }
    }

    let keysStart = position
    guard case let .list(keyList) = try nextPickle("storage key list", persistentLoad: noPersistentIds("storage key list")) else {
        throw CheckpointError.malformedPickle(path: path, part: "storage key list", offset: keysStart, problem: "not a list")
    }
    var storages: [String: StorageData] = [:]
    for item in keyList.items {
        guard case let .string(key) = item else {
            throw CheckpointError.malformedPickle(path: path, part: "storage key list", offset: keysStart, problem: "key is a \(item.typeName)")
        }
        guard let type = rootTypes[key] else {
            throw CheckpointError.malformedPickle(path: path, part: "storage key list", offset: keysStart,
                                                  problem: "storage '\(key)' is not referenced by the main pickle")
        }
        guard let rawCount = bytes.littleEndian(at: position, width: 8), rawCount <= UInt64(Int.max),
              let byteCount = multiplyChecked(Int(rawCount), type.elementSize),
              let end = addChecked(position + 8, byteCount), end <= bytes.count else {
            throw CheckpointError.malformedPickle(path: path, part: "storage data", offset: position,
                                                  problem: "storage '\(key)' runs past the end of the \(bytes.count)-byte file (truncated?)")
        }
        storages[key] = StorageData(type: type, byteRange: (position + 8)..<end)
        position = end
    }
    return try stateDict(from: root, storages: storages, path: path, bytes: bytes)
}

// MARK: From the unpickled object to a StateDict

/// Unwraps `{"state_dict": ...}` / `{"model": ...}` and materialises every tensor.
private func stateDict(from root: PickleValue, storages: [String: StorageData],
                       path: String, bytes: [UInt8]) throws -> StateDict {
    guard case var .dict(dict) = root else {
        throw CheckpointError.notAStateDict(path: path, key: "<root>", problem: "the checkpoint holds a \(root.typeName), not a dict")
    }
    for wrapper in ["state_dict", "model"] {
        if case let .dict(inner)? = dict[wrapper] {
            dict = inner
            break
        }
    }
    var result = StateDict()
    for (keyValue, value) in dict.entries {
        guard case let .string(key) = keyValue else {
            throw CheckpointError.notAStateDict(path: path, key: "\(keyValue)", problem: "key is a \(keyValue.typeName), not a str")
        }
        guard case let .tensor(reference) = value else {
            throw CheckpointError.notAStateDict(path: path, key: key, problem: "value is a \(value.typeName), not a tensor")
        }
        result[key] = try materialise(reference, key: key, storages: storages, path: path, bytes: bytes)
    }
    return result
}

/// Copies a strided view of a storage into contiguous row-major bytes; bounds-checks the
/// view against the storage and rejects negative strides.
private func materialise(_ tensor: TensorReference, key: String, storages: [String: StorageData],
                         path: String, bytes: [UInt8]) throws -> StoredTensor {
    let storage = tensor.storage
    guard let dtype = storage.type.dtype else {
        throw CheckpointError.unsupportedDType(path: path, key: key, dtype: storage.type.name)
    }
    guard let data = storages[storage.key] else {
        throw CheckpointError.invalidTensor(path: path, key: key, problem: "storage '\(storage.key)' has no data")
    }
    func invalid(_ problem: String) -> CheckpointError { .invalidTensor(path: path, key: key, problem: problem) }

    let size = tensor.size, stride = tensor.stride
    guard size.count == stride.count else { throw invalid("size \(size) and stride \(stride) differ in rank") }
    guard size.allSatisfy({ $0 >= 0 }) else { throw invalid("negative size \(size)") }
    guard stride.allSatisfy({ $0 >= 0 }) else { throw invalid("negative stride \(stride) is not supported") }
    guard tensor.storageOffset >= 0 else { throw invalid("negative storage offset \(tensor.storageOffset)") }
    guard let count = checkedProduct(size) else { throw invalid("size \(size) overflows") }

    // The view's storage (a legacy storage view may start inside the root storage).
    guard let viewEnd = addChecked(storage.elementOffset, storage.elementCount), viewEnd <= data.elementCount else {
        throw invalid("storage view [\(storage.elementOffset), +\(storage.elementCount)) exceeds the \(data.elementCount)-element storage '\(storage.key)'")
    }
    let elementSize = dtype.byteSize
    if count == 0 { return StoredTensor(dtype: dtype, shape: size, bytes: []) }

    var lastElement = tensor.storageOffset
    for (extent, step) in zip(size, stride) {
        guard let reach = multiplyChecked(extent - 1, step), let next = addChecked(lastElement, reach) else {
            throw invalid("size \(size) with stride \(stride) overflows")
        }
        lastElement = next
    }
    guard lastElement < storage.elementCount else {
        throw invalid("size \(size), stride \(stride) and offset \(tensor.storageOffset) reach element \(lastElement) of a \(storage.elementCount)-element storage")
    }

    // A stride-0 (expanded) view can describe far more elements than the file holds.
    guard let byteCount = multiplyChecked(count, elementSize), byteCount <= max(1 << 20, 16 * bytes.count) else {
        throw invalid("size \(size) with stride \(stride) would materialise more than 16 times the file's size")
    }
    let base = data.byteRange.lowerBound + (storage.elementOffset + tensor.storageOffset) * elementSize
    let contiguousStrides = rowMajorStrides(size)
    let isContiguous = zip(zip(size, stride), contiguousStrides).allSatisfy { pair, expected in
        pair.0 == 1 || pair.1 == expected
    }
    if isContiguous {
        return StoredTensor(dtype: dtype, shape: size, bytes: Array(bytes[base..<(base + byteCount)]))
    }

    // Non-contiguous (transposed, sliced, expanded): gather element by element.
    var output = [UInt8](repeating: 0, count: byteCount)
    var index = [Int](repeating: 0, count: size.count)
    var source = 0
    bytes.withUnsafeBytes { input in
        output.withUnsafeMutableBytes { destination in
            for element in 0..<count {
                let from = base + source * elementSize
                for byte in 0..<elementSize { destination[element * elementSize + byte] = input[from + byte] }
                // Advance the row-major multi-index (odometer) and the source offset with it.
                var axis = size.count - 1
                while axis >= 0 {
                    index[axis] += 1
                    source += stride[axis]
                    if index[axis] < size[axis] { break }
                    source -= stride[axis] * size[axis]
                    index[axis] = 0
                    axis -= 1
                }
            }
        }
    }
    return StoredTensor(dtype: dtype, shape: size, bytes: output)
}

/// Row-major strides of `shape`, in elements.
func rowMajorStrides(_ shape: [Int]) -> [Int] {
    var result = [Int](repeating: 1, count: shape.count)
    var running = 1
    for axis in shape.indices.reversed() {
        result[axis] = running
        running *= shape[axis]
    }
    return result
}

extension String {
    /// The string without leading and trailing spaces, tabs and newlines.
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
