// Tests dtype encoding against torch's rounding, integer accessors and StateDict semantics.

import Testing
import TensorCore
@testable import Checkpoints

@Suite("stored tensors")
struct StoredTensorTests {
    @Test("float32 -> float16 and bfloat16 round exactly as torch does (ties, overflow, subnormals, NaN)")
    func encodesLikeTorch() throws {
        let encode = try loadExpected().encode
        let values = encode.float32_bits.map { Float(bitPattern: $0) }
        let tensor = Tensor(shape: [values.count], scalars: values)
        let half = StoredTensor(tensor, dtype: .float16)
        let brain = StoredTensor(tensor, dtype: .bfloat16)
        let halfBits = half.bytes.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }
        let brainBits = brain.bytes.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }
        #expect(halfBits == encode.float16_bits)
        for (index, value) in values.enumerated() {
            if value.isNaN {
                // torch's scalar path gives 0x7FC0 and its AVX path 0xFFFF: any NaN is accepted.
                #expect(brainBits[index] & 0x7F80 == 0x7F80 && brainBits[index] & 0x7F != 0)
            } else {
                #expect(brainBits[index] == encode.bfloat16_bits[index], "bfloat16 of \(value)")
            }
        }
    }

    @Test("float16 and bfloat16 decode back to the values torch's .float() gives")
    func decodesLikeTorch() throws {
        let encode = try loadExpected().encode
        let count = encode.float16_bits.count
        let half = StoredTensor(dtype: .float16, shape: [count],
                                bytes: encode.float16_bits.withUnsafeBytes { [UInt8]($0) })
        let brainBits = encode.bfloat16_bits.enumerated().map { index, bits in
            Float(bitPattern: encode.float32_bits[index]).isNaN ? 0x7FC0 : bits
        }
        let brain = StoredTensor(dtype: .bfloat16, shape: [count], bytes: brainBits.withUnsafeBytes { [UInt8]($0) })
        // Re-encoding a decoded value is exact, so decode(encode(x)) must give the same bits again.
        let halfValues = try half.floatTensor()
        let brainValues = try brain.floatTensor()
        #expect(StoredTensor(halfValues, dtype: .float16).bytes == half.bytes)
        #expect(StoredTensor(brainValues, dtype: .bfloat16).bytes == brain.bytes)
        #expect(Array(halfValues.scalars.prefix(6)) == [0, -0.0, 1, 1, 1.001953125, 65504])
    }

    @Test("integer tensors keep their values and refuse the wrong accessor")
    func integerAccessors() throws {
        let codes = StoredTensor.int8([-128, -1, 0, 127], shape: [2, 2])
        #expect(codes.dtype == .int8 && codes.bytes == [0x80, 0xFF, 0x00, 0x7F])
        #expect(try codes.int8Values() == [-128, -1, 0, 127])
        #expect(try codes.floatTensor().scalars == [-128, -1, 0, 127])
        #expect(throws: CheckpointError.dtypeMismatch(expected: .int32, actual: .int8)) { try codes.int32Values() }
        let wide = StoredTensor.int32([-2, 70000], shape: [2])
        #expect(wide.bytes == [0xFE, 0xFF, 0xFF, 0xFF, 0x70, 0x11, 0x01, 0x00])
        #expect(try wide.int32Values() == [-2, 70000])
        #expect(throws: CheckpointError.self) {
            try StoredTensor(dtype: .float32, shape: [3], bytes: [0, 0, 0, 0]).floatTensor()
        }
    }

    @Test("conversions between float dtypes go through Float32; integer conversions are refused")
    func conversions() throws {
        let double = StoredTensor(Tensor(shape: [2], scalars: [0.1, -3]), dtype: .float64)
        #expect(double.bytes.count == 16)
        #expect(try double.converted(to: .float32).floatTensor().scalars == [0.1, -3])
        #expect(try double.converted(to: .float16).bytes == [0x66, 0x2E, 0x00, 0xC2])
        #expect(throws: CheckpointError.unsupportedConversion(from: .int8, to: .float32)) {
            try StoredTensor.int8([1], shape: [1]).converted(to: .float32)
        }
    }

    @Test("StateDict keeps insertion order, replaces in place and removes with nil")
    func stateDictOrder() {
        var dict = StateDict()
        dict["b"] = .int8([1], shape: [1])
        dict["a"] = .int8([2], shape: [1])
        dict["b"] = .int8([3], shape: [1])
        #expect(dict.keys == ["b", "a"])
        #expect(dict["b"] == .int8([3], shape: [1]))
        dict["b"] = nil
        #expect(dict.keys == ["a"] && dict.count == 1 && !dict.contains("b"))
    }
}
