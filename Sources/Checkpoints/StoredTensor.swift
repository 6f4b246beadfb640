// A tensor as a checkpoint stores it: dtype, shape and raw little-endian bytes.

import TensorCore

#if _endian(big)
#error("Checkpoints reads and writes little-endian bytes by reinterpreting memory; big-endian hosts are not supported")
#endif

/// A tensor as it is stored in a checkpoint: a ``DType``, a row-major `shape` and the
/// contiguous little-endian element bytes (`shape` product × `dtype.byteSize` bytes).
///
/// Float tensors become a Float32 ``Tensor`` with ``floatTensor()``; integer tensors (int8
/// weights, `num_batches_tracked`) are read back with the typed accessors.
public struct StoredTensor: Sendable, Equatable {
    /// The element type of `bytes`.
    public var dtype: DType
    /// The extent of each axis (`[]` for a scalar).
    public var shape: [Int]
    /// Contiguous row-major elements, little-endian.
    public var bytes: [UInt8]

    /// A stored tensor from raw bytes; `bytes.count` should be `shape` product × `dtype.byteSize`
    /// (checked when the tensor is read or written).
    public init(dtype: DType, shape: [Int], bytes: [UInt8]) {
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    /// Encodes a Float32 tensor as `dtype`, which must be a floating-point type.
    ///
    /// float16 and bfloat16 round to nearest even, as torch's `.half()` and `.bfloat16()`
    /// do (bfloat16 NaN becomes the quiet NaN 0x7FC0, as in torch).
    public init(_ tensor: Tensor, dtype: DType = .float32) {
        precondition(dtype.isFloatingPoint, "StoredTensor(Tensor): dtype \(dtype.rawValue) is not a float type")
        self.init(dtype: dtype, shape: tensor.shape, bytes: encodeFloats(tensor.scalars, as: dtype))
    }

    /// Number of elements (product of `shape`).
    public var elementCount: Int { shape.reduce(1, *) }

    /// The values as a Float32 tensor of the same shape: floats are cast (F64 rounds to
    /// nearest, F16 and BF16 are exact), integers and bools convert to their value.
    /// Throws when `bytes.count` does not match the shape and dtype.
    public func floatTensor() throws -> Tensor {
        let count = try checkedElementCount()
        let values = decodeFloats(bytes, dtype: dtype, count: count)
        return Tensor(shape: shape, scalars: values)
    }

    /// The same tensor with its values in another float dtype (via Float32 when narrowing,
    /// as torch casts F64 to F16 through float). Both dtypes must be floating-point.
    public func converted(to target: DType) throws -> StoredTensor {
        if target == dtype { return self }
        guard dtype.isFloatingPoint, target.isFloatingPoint else {
            throw CheckpointError.unsupportedConversion(from: dtype, to: target)
        }
        let count = try checkedElementCount()
        let values = decodeFloats(bytes, dtype: dtype, count: count)
        return StoredTensor(dtype: target, shape: shape, bytes: encodeFloats(values, as: target))
    }

    // MARK: Integer tensors

    /// An int8 tensor (quantized weights) of `shape`; `values.count` must equal its product.
    public static func int8(_ values: [Int8], shape: [Int]) -> StoredTensor {
        integer(values, dtype: .int8, shape: shape)
    }

    /// An int32 tensor of `shape`; `values.count` must equal its product.
    public static func int32(_ values: [Int32], shape: [Int]) -> StoredTensor {
        integer(values, dtype: .int32, shape: shape)
    }

    /// An int64 tensor of `shape`; `values.count` must equal its product.
    public static func int64(_ values: [Int64], shape: [Int]) -> StoredTensor {
        integer(values, dtype: .int64, shape: shape)
    }

    /// A uint8 tensor of `shape`; `values.count` must equal its product.
    public static func uint8(_ values: [UInt8], shape: [Int]) -> StoredTensor {
        integer(values, dtype: .uint8, shape: shape)
    }

    /// The values of an int8 tensor, row-major; throws for any other dtype.
    public func int8Values() throws -> [Int8] { try integerValues(.int8) }
    /// The values of an int32 tensor, row-major; throws for any other dtype.
    public func int32Values() throws -> [Int32] { try integerValues(.int32) }
    /// The values of an int64 tensor, row-major; throws for any other dtype.
    public func int64Values() throws -> [Int64] { try integerValues(.int64) }
    /// The values of a uint8 or bool tensor, row-major; throws for any other dtype.
    public func uint8Values() throws -> [UInt8] {
        if dtype == .bool {
            _ = try checkedElementCount()
            return bytes
        }
        return try integerValues(.uint8)
    }

    private static func integer<T: FixedWidthInteger>(_ values: [T], dtype: DType, shape: [Int]) -> StoredTensor {
        precondition(shape.allSatisfy { $0 >= 0 } && shape.reduce(1, *) == values.count,
                     "StoredTensor.\(dtype): shape \(shape) needs \(shape.reduce(1, *)) values, got \(values.count)")
        let bytes = values.withUnsafeBytes { [UInt8]($0) }
        return StoredTensor(dtype: dtype, shape: shape, bytes: bytes)
    }

    private func integerValues<T: FixedWidthInteger>(_ expected: DType) throws -> [T] {
        guard dtype == expected else { throw CheckpointError.dtypeMismatch(expected: expected, actual: dtype) }
        let count = try checkedElementCount()
        return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            bytes.withUnsafeBytes { source in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: source)
            }
            initialized = count
        }
    }

    /// The element count, after checking shape and byte count agree.
    func checkedElementCount() throws -> Int {
        guard let count = checkedProduct(shape),
              let byteCount = multiplyChecked(count, dtype.byteSize), byteCount == bytes.count
        else {
            throw CheckpointError.inconsistentTensor(dtype: dtype, shape: shape, byteCount: bytes.count)
        }
        return count
    }
}

// MARK: Element conversion

/// The product of `extents`, or nil when one is negative or the product overflows.
func checkedProduct(_ extents: [Int]) -> Int? {
    var product = 1
    for extent in extents {
        guard extent >= 0, let next = multiplyChecked(product, extent) else { return nil }
        product = next
    }
    return product
}

/// `a * b`, or nil on overflow.
func multiplyChecked(_ a: Int, _ b: Int) -> Int? {
    let (result, overflow) = a.multipliedReportingOverflow(by: b)
    return overflow ? nil : result
}

/// `a + b`, or nil on overflow.
func addChecked(_ a: Int, _ b: Int) -> Int? {
    let (result, overflow) = a.addingReportingOverflow(b)
    return overflow ? nil : result
}

/// Decodes `count` little-endian elements of `dtype` to Float32.
func decodeFloats(_ bytes: [UInt8], dtype: DType, count: Int) -> [Float] {
    precondition(bytes.count == count * dtype.byteSize, "decodeFloats: \(bytes.count) bytes for \(count) \(dtype.rawValue)")
    return [Float](unsafeUninitializedCapacity: count) { output, initialized in
        bytes.withUnsafeBytes { raw in
            switch dtype {
            case .float32:
                UnsafeMutableRawBufferPointer(output).copyMemory(from: raw)
            case .float16:
                let input = raw.bindMemory(to: UInt16.self)
                for i in 0..<count { output[i] = Float(Float16(bitPattern: input[i])) }
            case .bfloat16:
                let input = raw.bindMemory(to: UInt16.self)
                for i in 0..<count { output[i] = Float(bitPattern: UInt32(input[i]) << 16) }
            case .float64:
                let input = raw.bindMemory(to: Double.self)
                for i in 0..<count { output[i] = Float(input[i]) }
            case .int64:
                let input = raw.bindMemory(to: Int64.self)
                for i in 0..<count { output[i] = Float(input[i]) }
            case .int32:
                let input = raw.bindMemory(to: Int32.self)
                for i in 0..<count { output[i] = Float(input[i]) }
            case .int8:
                let input = raw.bindMemory(to: Int8.self)
                for i in 0..<count { output[i] = Float(input[i]) }
            case .uint8, .bool:
                for i in 0..<count { output[i] = Float(raw[i]) }
            }
        }
        initialized = count
    }
}

/// Encodes Float32 values as little-endian `dtype` elements (a floating-point dtype).
func encodeFloats(_ values: [Float], as dtype: DType) -> [UInt8] {
    let count = values.count
    let byteCount = count * dtype.byteSize
    return [UInt8](unsafeUninitializedCapacity: byteCount) { output, initialized in
        values.withUnsafeBufferPointer { input in
            let raw = UnsafeMutableRawBufferPointer(output)
            switch dtype {
            case .float32:
                raw.copyMemory(from: UnsafeRawBufferPointer(input))
            case .float16:
                let half = raw.bindMemory(to: UInt16.self)
                for i in 0..<count { half[i] = Float16(input[i]).bitPattern }
            case .bfloat16:
                let half = raw.bindMemory(to: UInt16.self)
                for i in 0..<count { half[i] = bfloat16Bits(input[i]) }
            case .float64:
                let wide = raw.bindMemory(to: Double.self)
                for i in 0..<count { wide[i] = Double(input[i]) }
            case .int64, .int32, .int8, .uint8, .bool:
                preconditionFailure("encodeFloats: \(dtype.rawValue) is not a float type")
            }
        }
        initialized = byteCount
    }
}

/// The bfloat16 bits of `value`, rounded to nearest even; NaN becomes 0x7FC0 (torch's
/// `round_to_nearest_even`).
@inline(__always)
func bfloat16Bits(_ value: Float) -> UInt16 {
    if value.isNaN { return 0x7FC0 }
    let bits = value.bitPattern
    let roundingBias = 0x7FFF + ((bits >> 16) & 1)
    return UInt16(truncatingIfNeeded: (bits &+ roundingBias) >> 16)
}
