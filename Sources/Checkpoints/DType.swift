// Element types of stored tensors, named as the safetensors format spells them.

/// The element type of a ``StoredTensor``; raw values are the safetensors dtype strings.
///
/// Every type is stored little-endian. `bool` takes one byte per element (0 or 1), as in
/// both torch and safetensors.
public enum DType: String, Sendable, CaseIterable {
    case float32 = "F32", float16 = "F16", bfloat16 = "BF16", float64 = "F64"
    case int64 = "I64", int32 = "I32", int8 = "I8", uint8 = "U8", bool = "BOOL"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .float64, .int64: 8
        case .float32, .int32: 4
        case .float16, .bfloat16: 2
        case .int8, .uint8, .bool: 1
        }
    }

    /// Whether the type is a floating-point type (F32, F16, BF16, F64).
    public var isFloatingPoint: Bool {
        switch self {
        case .float32, .float16, .bfloat16, .float64: true
        case .int64, .int32, .int8, .uint8, .bool: false
        }
    }

    /// The rank safetensors gives the type when it orders tensors in a file: larger sorts
    /// first (the Rust crate's `Dtype` declaration order, compared in reverse).
    var safeTensorsOrder: Int {
        switch self {
        case .bool: 0
        case .uint8: 4
        case .int8: 5
        case .float16: 13
        case .bfloat16: 14
        case .int32: 15
        case .float32: 17
        case .float64: 19
        case .int64: 20
        }
    }
}

/// A torch storage class as pickles name it (`torch.FloatStorage`): its element size and,
/// when detq can hold it, its ``DType``.
struct TorchStorageType: Sendable, Equatable {
    /// The qualified name, e.g. `torch.FloatStorage`.
    var name: String
    /// The element type, or nil for storages detq does not read (complex, int16, quantized).
    var dtype: DType?
    /// Bytes per element, known even when `dtype` is nil, to skip legacy storage data.
    var elementSize: Int

    /// The storage classes plain state dicts can reference, keyed by qualified name.
    static let known: [String: TorchStorageType] = {
        let table: [(String, DType?, Int)] = [
            ("FloatStorage", .float32, 4), ("HalfStorage", .float16, 2),
            ("BFloat16Storage", .bfloat16, 2), ("DoubleStorage", .float64, 8),
            ("LongStorage", .int64, 8), ("IntStorage", .int32, 4),
            ("CharStorage", .int8, 1), ("ByteStorage", .uint8, 1), ("BoolStorage", .bool, 1),
            ("UntypedStorage", .uint8, 1),
            ("ShortStorage", nil, 2), ("ComplexFloatStorage", nil, 8),
            ("ComplexDoubleStorage", nil, 16), ("QInt8Storage", nil, 1),
            ("QUInt8Storage", nil, 1), ("QInt32Storage", nil, 4),
        ]
        var result: [String: TorchStorageType] = [:]
        for (short, dtype, size) in table {
            result["torch." + short] = TorchStorageType(name: "torch." + short, dtype: dtype, elementSize: size)
        }
        return result
    }()
}
