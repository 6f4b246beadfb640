// Tests safetensors reading, validation, byte-exact writing and checkpoint conversion.

import Foundation
import Testing
import TensorCore
@testable import Checkpoints

@Suite("safetensors")
struct SafeTensorsTests {
    @Test("the safetensors fixture loads with torch's dtypes, shapes, values and metadata")
    func readsFixture() throws {
        let expected = try loadExpected()
        for dict in [try readSafeTensors(at: fixture("tiny.safetensors")), try loadCheckpoint(at: fixture("tiny.safetensors"))] {
            #expect(Set(dict.keys) == Set(expected.key_order))
            #expect(dict.count == expected.key_order.count)
            #expect(dict.metadata == ["format": "pt"])
            for key in expected.key_order {
                try expectMatches(dict[key], try #require(expected.tensors[key]), key: key)
            }
        }
    }

    @Test("reading then writing reproduces the safetensors library's bytes exactly",
          arguments: ["tiny.safetensors", "metadata_escapes.safetensors"])
    func writesLibraryLayout(name: String) throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("out.safetensors").path
        try writeSafeTensors(try readSafeTensors(at: fixture(name)), to: output)
        let written = try Data(contentsOf: URL(fileURLWithPath: output))
        let reference = try Data(contentsOf: URL(fileURLWithPath: fixture(name)))
        #expect(written == reference)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["out.safetensors"])
    }

    @Test("metadata with quotes, backslashes, control characters and non-ASCII survives")
    func metadataEscapes() throws {
        let expected = try loadExpected()
        let dict = try readSafeTensors(at: fixture("metadata_escapes.safetensors"))
        #expect(dict.metadata == expected.metadata_escapes)
        #expect(try dict["a.bias"]?.int64Values() == [3])
    }

    @Test("write then read round-trips every dtype and multi-key metadata")
    func roundTrip() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("round.safetensors").path
        var dict = StateDict(metadata: ["recipe": "{\"method\": \"arcq\", \"bits\": [4, 8]}", "format": "pt", "é": "ü\n"])
        dict["weight.f32"] = StoredTensor(Tensor(shape: [2, 2], scalars: [1, -2, 3.5, 0.25]))
        dict["weight.f16"] = StoredTensor(Tensor(shape: [3], scalars: [1, 0.5, -4]), dtype: .float16)
        dict["weight.bf16"] = StoredTensor(Tensor(shape: [1, 2], scalars: [2, -0.125]), dtype: .bfloat16)
        dict["weight.f64"] = StoredTensor(Tensor(shape: [], scalars: [0.1]), dtype: .float64)
        dict["codes"] = .int8([-128, 0, 5, 127], shape: [2, 2])
        dict["zero_points"] = .int32([-7, 1 << 30], shape: [2])
        dict["steps"] = .int64([Int64.max], shape: [1])
        dict["bytes"] = .uint8([0, 255], shape: [2])
        dict["flags"] = StoredTensor(dtype: .bool, shape: [3], bytes: [1, 0, 1])
        dict["nothing"] = StoredTensor(Tensor(zeros: [0, 4]))
        try writeSafeTensors(dict, to: path)
        let read = try readSafeTensors(at: path)
        #expect(read.metadata == dict.metadata)
        #expect(Set(read.keys) == Set(dict.keys))
        for key in dict.keys { #expect(read[key] == dict[key], "\(key)") }
        #expect(try read["codes"]?.int8Values() == [-128, 0, 5, 127])
        #expect(try read["zero_points"]?.int32Values() == [-7, 1 << 30])
        #expect(try read["weight.f16"]?.floatTensor().scalars == [1, 0.5, -4])
        #expect(try read["weight.bf16"]?.floatTensor().scalars == [2, -0.125])
    }

    @Test("bad safetensors files throw an error naming the file and field",
          arguments: [
              ("past_end.safetensors", "safetensors 'w'.data_offsets: [0, 64] points past the end of the 16-byte data section"),
              ("overlapping.safetensors", "safetensors 'b'.data_offsets: [4, 12] overlaps the tensor before it"),
          ])
    func rejectsBadFixture(name: String, problem: String) {
        let path = fixture(name)
        let message = checkpointErrorDescription { _ = try readSafeTensors(at: path) }
        #expect(message.hasPrefix("checkpoint \(path): "), "\(message)")
        #expect(message.contains(problem), "\(message)")
    }

    @Test("headers are validated: length, JSON, dtype, byte counts, gaps, leftovers")
    func rejectsBadHeaders() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        func file(header: String, data: [UInt8], declaredLength: UInt64? = nil) throws -> String {
            let headerBytes = Array(header.utf8)
            var length = declaredLength ?? UInt64(headerBytes.count)
            let lengthBytes = withUnsafeBytes(of: &length) { [UInt8]($0) }
            let url = directory.appendingPathComponent("case-\(UUID().uuidString).safetensors")
            try Data(lengthBytes + headerBytes + data).write(to: url)
            return url.path
        }
        let cases: [(String, String)] = [
            (try file(header: "{}", data: [], declaredLength: 1000), "header length: 1000-byte header runs past the end"),
            (try file(header: "{\"a\":", data: []), "header: invalid JSON"),
            (try file(header: "[1]", data: []), "header: is a JSON array, not an object"),
            (try file(header: #"{"a":{"dtype":"I16","shape":[1],"data_offsets":[0,2]}}"#, data: [0, 0]),
             "tensor 'a': unsupported dtype I16"),
            (try file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
             "'a'.data_offsets: [0, 4] spans 4 bytes but F32 [2] needs 8"),
            (try file(header: #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#, data: [0, 0]),
             "'a'.data_offsets: [1, 2] leaves a gap after byte 0"),
            (try file(header: #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, data: [0, 0]),
             "data section: tensors cover 1 of its 2 bytes"),
            (try file(header: #"{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}"#, data: [0]),
             "'a'.shape: holds something other than a non-negative integer"),
            (try file(header: #"{"a":{"dtype":"U8","shape":[1]}}"#, data: [0]), "'a'.data_offsets: is missing"),
            (try file(header: #"{"__metadata__":{"n":1}}"#, data: []), "__metadata__.n: is a JSON number, not a string"),
            (try file(header: #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#,
                      data: [0]), "'a': key appears twice"),
        ]
        for (path, problem) in cases {
            let message = checkpointErrorDescription { _ = try readSafeTensors(at: path) }
            #expect(message.hasPrefix("checkpoint \(path): "), "\(message)")
            #expect(message.contains(problem), "\(message)")
        }
    }

    @Test("a tensor whose bytes disagree with its shape is not written, and nothing is left behind")
    func refusesInconsistentTensor() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("bad.safetensors").path
        var dict = StateDict()
        dict["w"] = StoredTensor(dtype: .float32, shape: [2], bytes: [0, 0, 0])
        #expect(checkpointErrorDescription { try writeSafeTensors(dict, to: path) }.contains("tensor 'w'"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    @Test("convert: a zip checkpoint becomes the same safetensors file the Python library writes")
    func convertsLikeTheLibrary() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for source in ["tiny_zip.pth", "tiny_legacy.pth"] {
            let output = directory.appendingPathComponent("\(source).safetensors").path
            try convertCheckpoint(from: fixture(source), to: output)
            let written = try Data(contentsOf: URL(fileURLWithPath: output))
            #expect(written == (try Data(contentsOf: URL(fileURLWithPath: fixture("tiny.safetensors")))), "\(source)")
        }
    }

    @Test("convert with a dtype casts float tensors as torch's .half() does and keeps integers")
    func convertsToFloat16() throws {
        let expected = try loadExpected()
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("half.safetensors").path
        try convertCheckpoint(from: fixture("tiny_zip.pth"), to: output, dtype: .float16)
        let dict = try readSafeTensors(at: output)
        #expect(dict.count == expected.key_order.count)
        for key in expected.key_order {
            let tensor = try #require(dict[key])
            let original = try #require(expected.tensors[key])
            if let halfHex = expected.as_float16_hex[key] {
                #expect(tensor.dtype == .float16, "\(key)")
                #expect(hexString(tensor.bytes) == halfHex, "\(key)")
            } else {
                #expect(tensor.dtype.rawValue == original.dtype, "\(key)")
                #expect(hexString(tensor.bytes) == original.hex, "\(key)")
            }
        }
        #expect(throws: CheckpointError.unsupportedConversion(from: .float32, to: .int8)) {
            try convertCheckpoint(from: fixture("tiny_zip.pth"), to: output, dtype: .int8)
        }
    }
}
