// A restricted pickle interpreter (protocols 2–5) for torch state dicts: it builds values and never calls anything.

/// A Python list, shared by reference as pickle's memo requires.
final class PickleList {
    var items: [PickleValue]
    init(_ items: [PickleValue] = []) { self.items = items }
}

/// A Python dict (or OrderedDict), shared by reference; insertion order is kept.
final class PickleDict {
    private(set) var entries: [(key: PickleValue, value: PickleValue)] = []
    private var index: [PickleKey: Int] = [:]

    /// Sets `key` to `value`; a repeated hashable key replaces the value in place, as Python does.
    func set(_ key: PickleValue, _ value: PickleValue) {
        if let hashable = PickleKey(key) {
            if let existing = index[hashable] {
                entries[existing].value = value
                return
            }
            index[hashable] = entries.count
        }
        entries.append((key, value))
    }

    func removeAll() {
        entries = []
        index = [:]
    }

    /// The value under the string key `key`.
    subscript(key: String) -> PickleValue? {
        index[.string(key)].map { entries[$0].value }
    }
}

/// Every list and dict one load creates. Values can nest (or even cycle) through them;
/// `tearDown()` empties them all so that releasing a hostile, deeply nested pickle never
/// recurses and cycles are freed.
final class PickleArena {
    private var lists: [PickleList] = []
    private var dicts: [PickleDict] = []

    func list(_ items: [PickleValue] = []) -> PickleList {
        let list = PickleList(items)
        lists.append(list)
        return list
    }

    func dict() -> PickleDict {
        let dict = PickleDict()
        dicts.append(dict)
        return dict
    }

    /// Empties every container, one level at a time; the values must not be used afterwards.
    func tearDown() {
        for list in lists { list.items = [] }
        for dict in dicts { dict.removeAll() }
        lists = []
        dicts = []
    }
}

/// The dict keys the interpreter can hash.
enum PickleKey: Hashable {
    case string(String)
    case int(Int)

    init?(_ value: PickleValue) {
        switch value {
        case let .string(text): self = .string(text)
        case let .int(number): self = .int(number)
        default: return nil
        }
    }
}

/// The only globals a checkpoint pickle may name; anything else is rejected by name.
enum PickleGlobal: Equatable {
    case orderedDict
    case rebuildTensor
    case rebuildTensorV2
    case rebuildParameter
    case rebuildParameterWithState
    case storageType(TorchStorageType)

    init?(module: String, name: String) {
        switch (module, name) {
        case ("collections", "OrderedDict"): self = .orderedDict
        case ("torch._utils", "_rebuild_tensor"): self = .rebuildTensor
        case ("torch._utils", "_rebuild_tensor_v2"): self = .rebuildTensorV2
        case ("torch._utils", "_rebuild_parameter"): self = .rebuildParameter
        case ("torch._utils", "_rebuild_parameter_with_state"): self = .rebuildParameterWithState
        default:
            guard let storage = TorchStorageType.known["\(module).\(name)"] else { return nil }
            self = .storageType(storage)
        }
    }
}

/// Thrown by a persistent-id loader for an id of the wrong form; the unpickler reports it
/// with the file, the pickle part and the byte offset of the BINPERSID opcode.
struct PersistentIDProblem: Error {
    var problem: String
}

/// A storage a tensor views: the format-specific loader resolves `key` to bytes.
struct StorageReference {
    var type: TorchStorageType
    /// The storage's key (zip: `data/<key>`; legacy: root key).
    var key: String
    /// First element of this storage inside the root storage (legacy storage views).
    var elementOffset: Int
    /// Number of elements the pickle declares.
    var elementCount: Int
}

/// A tensor as `_rebuild_tensor_v2` describes it: a strided view of a storage.
struct TensorReference {
    var storage: StorageReference
    var storageOffset: Int
    var size: [Int]
    var stride: [Int]
}

/// A value the restricted unpickler builds.
indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer too wide for `Int`, as little-endian two's-complement bytes.
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    case global(PickleGlobal)
    case storage(StorageReference)
    case tensor(TensorReference)

    /// A short type name for error messages.
    var typeName: String {
        switch self {
        case .none: "None"
        case .bool: "bool"
        case .int, .bigInt: "int"
        case .float: "float"
        case .string: "str"
        case .bytes: "bytes"
        case .tuple: "tuple"
        case .list: "list"
        case .dict: "dict"
        case .global: "global"
        case .storage: "storage"
        case .tensor: "tensor"
        }
    }
}

/// Interprets one pickle in `bytes` starting at `start`, building ``PickleValue``s.
///
/// Only the allow-listed globals of ``PickleGlobal`` are accepted and "calling" them just
/// records the arguments; persistent ids go to `persistentLoad`. `part` names the pickle in
/// errors (`data.pkl`, `main pickle`).
struct Unpickler {
    let path: String
    let part: String
    let bytes: [UInt8]
    let end: Int
    private(set) var position: Int
    private let persistentLoad: (PickleValue) throws -> PickleValue
    private let arena: PickleArena

    /// A stack or memo entry: the value and how deeply tuples nest inside it. Tuples are
    /// values, so their depth is bounded here; lists and dicts are emptied by the arena.
    private struct Slot {
        var value: PickleValue
        var depth = 0
    }
    private static let maximumTupleDepth = 100

    private var stack: [Slot] = []
    private var marks: [Int] = []
    private var memo: [Int: Slot] = [:]
    private var opcodeOffset = 0

    init(path: String, part: String, bytes: [UInt8], start: Int = 0, end: Int? = nil, arena: PickleArena = PickleArena(),
         persistentLoad: @escaping (PickleValue) throws -> PickleValue) {
        self.path = path
        self.part = part
        self.bytes = bytes
        self.position = start
        self.end = min(end ?? bytes.count, bytes.count)
        self.arena = arena
        self.persistentLoad = persistentLoad
    }

    /// Runs until STOP and returns the result; `position` is then just past STOP.
    mutating func load() throws -> PickleValue {
        stack = []
        marks = []
        memo = [:]
        while true {
            opcodeOffset = position
            let opcode = try readByte()
            switch opcode {
            case 0x80: // PROTO
                let version = try readByte()
                guard version <= 5 else { throw malformed("unsupported pickle protocol \(version)") }
            case 0x95: // FRAME: framing is only a read-ahead hint
                _ = try readInteger(8)
            case 0x2E: // STOP
                let result = try pop()
                stack = []
                memo = [:]
                return result

            // Markers and stack manipulation
            case 0x28: marks.append(stack.count) // MARK
            case 0x30: _ = try pop() // POP
            case 0x31: _ = try popMark() // POP_MARK
            case 0x32: stack.append(try topSlot()) // DUP

            // Memo
            case 0x71: try put(Int(try readInteger(1))) // BINPUT
            case 0x72: try put(Int(try readInteger(4))) // LONG_BINPUT
            case 0x94: try put(memo.count) // MEMOIZE
            case 0x70: try put(try readDecimalLine()) // PUT
            case 0x68: try get(Int(try readInteger(1))) // BINGET
            case 0x6A: try get(Int(try readInteger(4))) // LONG_BINGET
            case 0x67: try get(try readDecimalLine()) // GET

            // Constants and numbers
            case 0x4E: push(.none) // NONE
            case 0x88: push(.bool(true)) // NEWTRUE
            case 0x89: push(.bool(false)) // NEWFALSE
            case 0x4A: push(.int(Int(Int32(truncatingIfNeeded: try readInteger(4))))) // BININT
            case 0x4B: push(.int(Int(try readInteger(1)))) // BININT1
            case 0x4D: push(.int(Int(try readInteger(2)))) // BININT2
            case 0x8A: push(try readLong(byteCount: Int(try readInteger(1)))) // LONG1
            case 0x8B: // LONG4
                let count = Int32(truncatingIfNeeded: try readInteger(4))
                guard count >= 0 else { throw malformed("negative LONG4 length") }
                push(try readLong(byteCount: Int(count)))
            case 0x47: // BINFLOAT: big-endian double
                var bits: UInt64 = 0
                for byte in try readBytes(8) { bits = bits << 8 | UInt64(byte) }
                push(.float(Double(bitPattern: bits)))

            // Strings and bytes
            case 0x58: push(.string(try readUTF8(Int(try readInteger(4))))) // BINUNICODE
            case 0x8C: push(.string(try readUTF8(Int(try readInteger(1))))) // SHORT_BINUNICODE
            case 0x8D: push(.string(try readUTF8(try length(try readInteger(8))))) // BINUNICODE8
            case 0x54: // BINSTRING (Python 2 str), decoded as UTF-8 like torch.load's default
                let count = Int32(truncatingIfNeeded: try readInteger(4))
                guard count >= 0 else { throw malformed("negative BINSTRING length") }
                push(.string(try readUTF8(Int(count))))
            case 0x55: push(.string(try readUTF8(Int(try readInteger(1))))) // SHORT_BINSTRING
            case 0x42: push(.bytes(try readBytes(Int(try readInteger(4))))) // BINBYTES
            case 0x43: push(.bytes(try readBytes(Int(try readInteger(1))))) // SHORT_BINBYTES
            case 0x8E, 0x96: push(.bytes(try readBytes(try length(try readInteger(8))))) // BINBYTES8, BYTEARRAY8

            // Containers
            case 0x29: try pushTuple([]) // EMPTY_TUPLE
            case 0x85: try pushTuple([try popSlot()]) // TUPLE1
            case 0x86: // TUPLE2
                let second = try popSlot(), first = try popSlot()
                try pushTuple([first, second])
            case 0x87: // TUPLE3
                let third = try popSlot(), second = try popSlot(), first = try popSlot()
                try pushTuple([first, second, third])
            case 0x74: try pushTuple(try popMarkSlots()) // TUPLE
            case 0x5D: push(.list(arena.list())) // EMPTY_LIST
            case 0x6C: push(.list(arena.list(try popMark()))) // LIST
            case 0x61: // APPEND
                let item = try pop()
                try list(try top()).items.append(item)
            case 0x65: // APPENDS
                let items = try popMark()
                try list(try top()).items.append(contentsOf: items)
            case 0x7D: push(.dict(arena.dict())) // EMPTY_DICT
            case 0x64: // DICT
                let items = try popMark()
                let dict = arena.dict()
                try setItems(items, into: dict)
                push(.dict(dict))
            case 0x73: // SETITEM
                let value = try pop(), key = try pop()
                try dict(try top()).set(key, value)
            case 0x75: // SETITEMS
                let items = try popMark()
                try setItems(items, into: try dict(try top()))

            // Globals, calls and persistent ids
            case 0x63: // GLOBAL
                let module = try readLine(), name = try readLine()
                push(.global(try global(module: module, name: name)))
            case 0x93: // STACK_GLOBAL
                let name = try pop(), module = try pop()
                guard case let .string(moduleName) = module, case let .string(globalName) = name else {
                    throw malformed("STACK_GLOBAL needs two strings")
                }
                push(.global(try global(module: moduleName, name: globalName)))
            case 0x52: // REDUCE
                let arguments = try pop(), callable = try pop()
                push(try call(callable, arguments))
            case 0x81: // NEWOBJ: cls.__new__(cls, *args)
                let arguments = try pop(), cls = try pop()
                guard case .global(.orderedDict) = cls, case .tuple = arguments else {
                    throw malformed("NEWOBJ is only accepted for collections.OrderedDict")
                }
                push(.dict(arena.dict()))
            case 0x62: // BUILD
                let state = try pop()
                try build(try top(), state: state)
            case 0x51: // BINPERSID
                let id = try pop()
                do {
                    push(try persistentLoad(id))
                } catch let error as PersistentIDProblem {
                    throw malformed(error.problem)
                }
            default:
                throw CheckpointError.unsupportedOpcode(path: path, part: part, offset: opcodeOffset, opcode: opcode)
            }
        }
    }

    // MARK: Semantics

    private func global(module: String, name: String) throws -> PickleGlobal {
        guard let global = PickleGlobal(module: module, name: name) else {
            throw CheckpointError.forbiddenGlobal(path: path, name: "\(module).\(name)")
        }
        return global
    }

    /// "Calls" an allow-listed global: only records what torch would rebuild.
    private func call(_ callable: PickleValue, _ arguments: PickleValue) throws -> PickleValue {
        guard case let .global(function) = callable else { throw malformed("REDUCE on a non-callable \(callable.typeName)") }
        guard case let .tuple(args) = arguments else { throw malformed("REDUCE arguments are not a tuple") }
        switch function {
        case .orderedDict:
            let dict = arena.dict()
            if let items = args.first {
                guard case let .list(pairs) = items, args.count == 1 else { throw malformed("OrderedDict() with unexpected arguments") }
                for pair in pairs.items {
                    guard case let .tuple(keyValue) = pair, keyValue.count == 2 else { throw malformed("OrderedDict item is not a pair") }
                    dict.set(keyValue[0], keyValue[1])
                }
            }
            return .dict(dict)
        case .rebuildTensor, .rebuildTensorV2:
            // (storage, storage_offset, size, stride[, requires_grad, backward_hooks[, metadata]])
            let expected = function == .rebuildTensor ? [4] : [6, 7]
            guard expected.contains(args.count) else { throw malformed("tensor rebuild with \(args.count) arguments") }
            guard case let .storage(storage) = args[0] else { throw malformed("tensor rebuild without a storage (found \(args[0].typeName))") }
            guard case let .int(offset) = args[1] else { throw malformed("tensor storage offset is not an int") }
            return .tensor(TensorReference(storage: storage, storageOffset: offset,
                                           size: try intTuple(args[2], "size"), stride: try intTuple(args[3], "stride")))
        case .rebuildParameter, .rebuildParameterWithState:
            guard let data = args.first, case .tensor = data else { throw malformed("parameter rebuild without a tensor") }
            return data
        case let .storageType(type):
            throw malformed("calling storage class \(type.name) is not supported")
        }
    }

    /// BUILD sets object state; for dicts and tensors it is Python attributes (`_metadata`,
    /// hooks) that a state dict's values never need, so it is dropped.
    private func build(_ target: PickleValue, state: PickleValue) throws {
        switch target {
        case .dict, .tensor: return
        default: throw malformed("BUILD on a \(target.typeName) is not supported")
        }
    }

    private func intTuple(_ value: PickleValue, _ field: String) throws -> [Int] {
        let items: [PickleValue]
        switch value {
        case let .tuple(values): items = values
        case let .list(list): items = list.items
        default: throw malformed("tensor \(field) is a \(value.typeName), not a tuple")
        }
        return try items.map {
            guard case let .int(number) = $0 else { throw malformed("tensor \(field) holds a \($0.typeName)") }
            return number
        }
    }

    private func setItems(_ items: [PickleValue], into dict: PickleDict) throws {
        guard items.count % 2 == 0 else { throw malformed("odd number of items for a dict") }
        for index in stride(from: 0, to: items.count, by: 2) { dict.set(items[index], items[index + 1]) }
    }

    private func list(_ value: PickleValue) throws -> PickleList {
        guard case let .list(list) = value else { throw malformed("APPEND to a \(value.typeName)") }
        return list
    }

    private func dict(_ value: PickleValue) throws -> PickleDict {
        guard case let .dict(dict) = value else { throw malformed("SETITEM on a \(value.typeName)") }
        return dict
    }

    // MARK: Stack and memo

    private mutating func push(_ value: PickleValue) {
        stack.append(Slot(value: value))
    }

    private mutating func pushTuple(_ items: [Slot]) throws {
        let depth = 1 + (items.map(\.depth).max() ?? 0)
        guard depth <= Self.maximumTupleDepth else { throw malformed("tuples nest deeper than \(Self.maximumTupleDepth) levels") }
        stack.append(Slot(value: .tuple(items.map(\.value)), depth: depth))
    }

    private mutating func popSlot() throws -> Slot {
        guard stack.count > (marks.last ?? 0), let slot = stack.popLast() else { throw malformed("stack underflow") }
        return slot
    }

    private mutating func pop() throws -> PickleValue {
        try popSlot().value
    }

    private func topSlot() throws -> Slot {
        guard stack.count > (marks.last ?? 0), let slot = stack.last else { throw malformed("stack underflow") }
        return slot
    }

    private func top() throws -> PickleValue {
        try topSlot().value
    }

    private mutating func popMarkSlots() throws -> [Slot] {
        guard let mark = marks.popLast(), mark <= stack.count else { throw malformed("no MARK on the stack") }
        let items = Array(stack[mark...])
        stack.removeSubrange(mark...)
        return items
    }

    private mutating func popMark() throws -> [PickleValue] {
        try popMarkSlots().map(\.value)
    }

    private mutating func put(_ index: Int) throws {
        memo[index] = try topSlot()
    }

    private mutating func get(_ index: Int) throws {
        guard let value = memo[index] else { throw malformed("memo entry \(index) is not defined") }
        stack.append(value)
    }

    // MARK: Reading

    private mutating func readByte() throws -> UInt8 {
        guard position < end else { throw malformed("pickle ends before STOP (truncated?)") }
        defer { position += 1 }
        return bytes[position]
    }

    private mutating func readBytes(_ count: Int) throws -> [UInt8] {
        guard count >= 0, let stop = addChecked(position, count), stop <= end else {
            throw malformed("\(count)-byte argument runs past the end of the pickle")
        }
        defer { position = stop }
        return Array(bytes[position..<stop])
    }

    private mutating func readInteger(_ width: Int) throws -> UInt64 {
        guard position + width <= end, let value = bytes.littleEndian(at: position, width: width) else {
            throw malformed("\(width)-byte argument runs past the end of the pickle")
        }
        position += width
        return value
    }

    private func length(_ value: UInt64) throws -> Int {
        guard value <= UInt64(end) else { throw malformed("length \(value) runs past the end of the pickle") }
        return Int(value)
    }

    private mutating func readUTF8(_ count: Int) throws -> String {
        let raw = try readBytes(count)
        guard let text = String(validating: raw, as: UTF8.self) else { throw malformed("string is not valid UTF-8") }
        return text
    }

    /// Text up to the next newline (GLOBAL module and name; PUT/GET indices).
    private mutating func readLine() throws -> String {
        var cursor = position
        while cursor < end, bytes[cursor] != 0x0A { cursor += 1 }
        guard cursor < end else { throw malformed("unterminated text argument") }
        defer { position = cursor + 1 }
        return String(decoding: bytes[position..<cursor], as: UTF8.self)
    }

    private mutating func readDecimalLine() throws -> Int {
        let text = try readLine()
        guard let value = Int(text), value >= 0 else { throw malformed("bad memo index '\(text)'") }
        return value
    }

    /// LONG1/LONG4: little-endian two's complement of `byteCount` bytes.
    private mutating func readLong(byteCount: Int) throws -> PickleValue {
        let raw = try readBytes(byteCount)
        guard !raw.isEmpty else { return .int(0) }
        guard raw.count <= 8 else { return .bigInt(raw) }
        var value: UInt64 = 0
        for byte in raw.reversed() { value = value << 8 | UInt64(byte) }
        let shift = UInt64(64 - 8 * raw.count)
        // Sign-extend from the top byte read.
        return .int(Int(Int64(bitPattern: value << shift) >> Int64(shift)))
    }

    private func malformed(_ problem: String) -> CheckpointError {
        .malformedPickle(path: path, part: part, offset: opcodeOffset, problem: problem)
    }
}
