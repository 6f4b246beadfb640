// Entry points: load any supported checkpoint by its content, and convert one to safetensors.

/// Loads a state dict from a torch checkpoint or a safetensors file, chosen by content:
/// a zip archive (`PK\x03\x04`, torch >= 1.6 `torch.save`), the legacy torch stream
/// (pickle protocol 2 starting with the torch magic number), or safetensors (by the
/// `.safetensors` extension or a plausible header).
///
/// A `{"state_dict": ...}` or `{"model": ...}` wrapper is unwrapped; keys are kept as they
/// are. Tensors keep their stored dtype (F32, F16, BF16, F64, I64, I32, I8, U8, BOOL);
/// strided views are materialised contiguous. The pickle is interpreted with an allow-list
/// of globals and nothing is ever executed.
public func loadCheckpoint(at path: String) throws -> StateDict {
    let bytes = try readFileBytes(at: path)
    if bytes.count >= 4, bytes[0] == 0x50, bytes[1] == 0x4B, (bytes[2], bytes[3]) == (0x03, 0x04) || (bytes[2], bytes[3]) == (0x05, 0x06) {
        return try loadTorchZipCheckpoint(path: path, bytes: bytes)
    }
    if bytes.first == 0x80 {
        return try loadLegacyTorchCheckpoint(path: path, bytes: bytes)
    }
    if path.hasSuffix(".safetensors") || looksLikeSafeTensors(bytes) {
        return try parseSafeTensors(path: path, bytes: bytes)
    }
    throw CheckpointError.unrecognizedFormat(path: path)
}

/// Converts a checkpoint (anything ``loadCheckpoint(at:)`` reads) to a `.safetensors` file
/// with the same keys (torchvision's names).
///
/// Float tensors keep their dtype unless `dtype` (a float type) is given, in which case
/// they are cast to it; integer and bool tensors are always kept. Metadata of a safetensors
/// input is kept, and `format` defaults to `pt` as the Python tools write. The write is atomic.
public func convertCheckpoint(from input: String, to output: String, dtype: DType? = nil) throws {
    var dict = try loadCheckpoint(at: input)
    if let dtype {
        for key in dict.keys {
            guard let tensor = dict[key], tensor.dtype.isFloatingPoint else { continue }
            dict[key] = try tensor.converted(to: dtype)
        }
    }
    if dict.metadata["format"] == nil { dict.metadata["format"] = "pt" }
    try writeSafeTensors(dict, to: output)
}

/// Whether `bytes` start with a header length that fits the file followed by a JSON object.
private func looksLikeSafeTensors(_ bytes: [UInt8]) -> Bool {
    guard bytes.count > 8, let length = bytes.littleEndian(at: 0, width: 8), length >= 2,
          length <= UInt64(bytes.count - 8) else { return false }
    return bytes[8] == UInt8(ascii: "{")
}
