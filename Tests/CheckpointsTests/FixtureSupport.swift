// Locates the committed fixtures and decodes the expected values that torch wrote for them.

import Foundation
import Testing
@testable import Checkpoints

/// The directory of this test target's fixtures (made by detectors/tools/make_checkpoint_fixtures.py).
let fixturesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

/// The repository root, two levels above this file's folder.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

/// The real legacy mobilenet_v2 checkpoint in the shared data folder (may be absent).
let mobilenetPath = repositoryRoot.deletingLastPathComponent()
    .appendingPathComponent("shared/data/weights/mobilenet_v2-b0353104.pth").path

func fixture(_ name: String) -> String {
    fixturesDirectory.appendingPathComponent(name).path
}

/// One tensor as torch describes it: dtype name, shape, values after `.float()` (or as
/// integers), and the contiguous little-endian bytes in hex.
struct ExpectedTensor: Decodable {
    var dtype: String
    var shape: [Int]
    var values: [Double]
    var hex: String
}

struct ExpectedEncoding: Decodable {
    var float32_bits: [UInt32]
    var float16_bits: [UInt16]
    var bfloat16_bits: [UInt16]
}

struct ExpectedValues: Decodable {
    var key_order: [String]
    var tensors: [String: ExpectedTensor]
    var legacy_storage_view: ExpectedTensor
    var metadata_escapes: [String: String]
    var as_float16_hex: [String: String]
    var encode: ExpectedEncoding
}

func loadExpected() throws -> ExpectedValues {
    let data = try Data(contentsOf: fixturesDirectory.appendingPathComponent("expected.json"))
    return try JSONDecoder().decode(ExpectedValues.self, from: data)
}

func hexString(_ bytes: [UInt8]) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}

/// A fresh empty directory for files a test writes.
func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("detq-checkpoints-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Checks `tensor` against torch's description: dtype, shape, raw bytes and Float32 values.
func expectMatches(_ tensor: StoredTensor?, _ expected: ExpectedTensor, key: String,
                   sourceLocation: SourceLocation = #_sourceLocation) throws {
    let tensor = try #require(tensor, "missing key \(key)", sourceLocation: sourceLocation)
    #expect(tensor.dtype.rawValue == expected.dtype, "dtype of \(key)", sourceLocation: sourceLocation)
    #expect(tensor.shape == expected.shape, "shape of \(key)", sourceLocation: sourceLocation)
    #expect(hexString(tensor.bytes) == expected.hex, "bytes of \(key)", sourceLocation: sourceLocation)
    let values = try tensor.floatTensor()
    #expect(values.shape == expected.shape, sourceLocation: sourceLocation)
    #expect(values.scalars == expected.values.map { Float($0) }, "values of \(key)", sourceLocation: sourceLocation)
}

/// The description of the CheckpointError `body` throws (records an issue when it does not throw one).
func checkpointErrorDescription(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> String {
    do {
        try body()
        Issue.record("expected a CheckpointError, nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as CheckpointError {
        return error.description
    } catch {
        Issue.record("expected a CheckpointError, got \(error)", sourceLocation: sourceLocation)
    }
    return ""
}
