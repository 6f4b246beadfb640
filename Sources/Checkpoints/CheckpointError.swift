// The errors checkpoint reading and writing throw; each names the file and the key or field.

/// A checkpoint that cannot be read or written.
///
/// `description` is one line that names the file and the key, entry or field at fault, e.g.
/// `checkpoint model.pth: forbidden global 'os.system'`.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    /// The file could not be opened or read.
    case unreadableFile(path: String, reason: String)
    /// The output file could not be written.
    case unwritableFile(path: String, reason: String)
    /// The file is neither a torch zip archive, a legacy torch pickle nor safetensors.
    case unrecognizedFormat(path: String)
    /// The zip structure is damaged or truncated; `field` names the record or entry.
    case malformedZip(path: String, field: String, problem: String)
    /// A zip entry is compressed; torch.save stores entries uncompressed.
    case compressedEntry(path: String, entry: String, method: Int)
    /// A zip entry the torch layout needs is absent.
    case missingEntry(path: String, entry: String)
    /// A pickle (or the legacy storage data after it) is damaged; `part` names which pickle,
    /// `offset` is the byte offset of the failing opcode in the file.
    case malformedPickle(path: String, part: String, offset: Int, problem: String)
    /// The pickle names a global outside the allow-list (nothing is ever executed).
    case forbiddenGlobal(path: String, name: String)
    /// The pickle uses an opcode the restricted unpickler does not accept.
    case unsupportedOpcode(path: String, part: String, offset: Int, opcode: UInt8)
    /// The unpickled object is not a state dict (or a wrapper around one).
    case notAStateDict(path: String, key: String, problem: String)
    /// A tensor's storage, offset, size or stride is invalid.
    case invalidTensor(path: String, key: String, problem: String)
    /// A tensor's element type is not one detq reads.
    case unsupportedDType(path: String, key: String, dtype: String)
    /// The safetensors header or layout is invalid; `field` names the header field.
    case malformedSafeTensors(path: String, field: String, problem: String)
    /// An in-memory tensor whose byte count does not match its shape and dtype.
    case inconsistentTensor(dtype: DType, shape: [Int], byteCount: Int)
    /// A typed accessor was used on a tensor of another dtype.
    case dtypeMismatch(expected: DType, actual: DType)
    /// A dtype conversion detq does not do (integer <-> float, or to an integer type).
    case unsupportedConversion(from: DType, to: DType)

    public var description: String {
        switch self {
        case let .unreadableFile(path, reason):
            "checkpoint \(path): cannot read: \(reason)"
        case let .unwritableFile(path, reason):
            "checkpoint \(path): cannot write: \(reason)"
        case let .unrecognizedFormat(path):
            "checkpoint \(path): not a torch zip checkpoint, legacy torch checkpoint or safetensors file"
        case let .malformedZip(path, field, problem):
            "checkpoint \(path): zip \(field): \(problem)"
        case let .compressedEntry(path, entry, method):
            "checkpoint \(path): zip entry '\(entry)': compressed entry not supported (method \(method)); torch.save stores entries uncompressed"
        case let .missingEntry(path, entry):
            "checkpoint \(path): zip entry '\(entry)' is missing"
        case let .malformedPickle(path, part, offset, problem):
            "checkpoint \(path): \(part) at byte \(offset): \(problem)"
        case let .forbiddenGlobal(path, name):
            "checkpoint \(path): forbidden global '\(name)'"
        case let .unsupportedOpcode(path, part, offset, opcode):
            "checkpoint \(path): \(part) at byte \(offset): unsupported pickle opcode 0x\(String(opcode, radix: 16))"
        case let .notAStateDict(path, key, problem):
            "checkpoint \(path): key '\(key)': \(problem)"
        case let .invalidTensor(path, key, problem):
            "checkpoint \(path): tensor '\(key)': \(problem)"
        case let .unsupportedDType(path, key, dtype):
            "checkpoint \(path): tensor '\(key)': unsupported dtype \(dtype)"
        case let .malformedSafeTensors(path, field, problem):
            "checkpoint \(path): safetensors \(field): \(problem)"
        case let .inconsistentTensor(dtype, shape, byteCount):
            "tensor of shape \(shape) and dtype \(dtype.rawValue) has \(byteCount) bytes"
        case let .dtypeMismatch(expected, actual):
            "tensor has dtype \(actual.rawValue), expected \(expected.rawValue)"
        case let .unsupportedConversion(from, to):
            "cannot convert a \(from.rawValue) tensor to \(to.rawValue)"
        }
    }
}
