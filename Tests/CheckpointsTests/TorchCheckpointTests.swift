// Tests reading torch.save checkpoints (zip, zip64, protocol 4, legacy, wrappers) against torch's values.

import Foundation
import Testing
import TensorCore
@testable import Checkpoints

@Suite("torch checkpoints")
struct TorchCheckpointTests {
    @Test("each torch checkpoint fixture loads with torch's keys, dtypes, shapes and values",
          arguments: ["tiny_zip.pth", "tiny_legacy.pth", "tiny_zip64.pth", "tiny_zip_protocol4.pth",
                      "wrapped_state_dict.pth", "wrapped_model_legacy.pth"])
    func loadsFixture(name: String) throws {
        let expected = try loadExpected()
        let dict = try loadCheckpoint(at: fixture(name))
        #expect(dict.keys == expected.key_order)
        #expect(dict.count == expected.key_order.count)
        #expect(dict.metadata.isEmpty)
        for key in expected.key_order {
            try expectMatches(dict[key], try #require(expected.tensors[key]), key: key)
        }
    }

    @Test("views are materialised: transposed, sliced with an offset, expanded, sharing a storage")
    func materialisesViews() throws {
        let dict = try loadCheckpoint(at: fixture("tiny_zip.pth"))
        // Hand-checked: arange(12).reshape(4, 3).t() and arange(10) - 4.5 sliced [4:8].
        #expect(try dict["transposed"]?.floatTensor().scalars == [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11])
        #expect(try dict["shared.tail"]?.floatTensor().scalars == [-0.5, 0.5, 1.5, 2.5])
        #expect(try dict["expanded"]?.floatTensor().scalars == [1, 2, 3, 1, 2, 3])
        #expect(try dict["bn.num_batches_tracked"]?.int64Values() == [7])
        #expect(dict["bn.num_batches_tracked"]?.shape == [])
    }

    @Test("a legacy storage view (view_metadata) reads the viewed slice of its root storage")
    func legacyStorageView() throws {
        let expected = try loadExpected()
        let dict = try loadCheckpoint(at: fixture("legacy_storage_view.pth"))
        #expect(dict.keys == ["viewed"])
        try expectMatches(dict["viewed"], expected.legacy_storage_view, key: "viewed")
    }

    @Test("bad checkpoints throw an error naming the file and the problem",
          arguments: [
              ("forbidden_global.pth", "forbidden global 'os.system'"),
              ("forbidden_global_legacy.pth", "forbidden global 'subprocess.check_output'"),
              ("truncated_zip.pth", "end of central directory"),
              ("truncated_legacy.pth", "runs past the end"),
              ("compressed.pth", "compressed entry not supported"),
              ("out_of_bounds.pth", "tensor 'w': size [3], stride [1] and offset 2 reach element 4 of a 4-element storage"),
              ("negative_stride.pth", "tensor 'w': negative stride [-1]"),
              ("int16.pth", "tensor 'short': unsupported dtype torch.ShortStorage"),
              ("huge_expanded.pth", "tensor 'w': size [1099511627776] with stride [0] would materialise more than 16 times the file's size"),
          ])
    func rejectsBadCheckpoint(name: String, problem: String) {
        let path = fixture(name)
        let message = checkpointErrorDescription { _ = try loadCheckpoint(at: path) }
        #expect(message.hasPrefix("checkpoint \(path): "), "\(message)")
        #expect(message.contains(problem), "\(message)")
    }

    @Test("a missing file and an unknown format are reported with the path")
    func rejectsMissingAndUnknownFiles() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let missing = directory.appendingPathComponent("absent.pth").path
        #expect(checkpointErrorDescription { _ = try loadCheckpoint(at: missing) }
            .hasPrefix("checkpoint \(missing): cannot read"))
        let text = directory.appendingPathComponent("notes.pth")
        try Data("just some text, not a checkpoint".utf8).write(to: text)
        #expect(checkpointErrorDescription { _ = try loadCheckpoint(at: text.path) }
            == "checkpoint \(text.path): not a torch zip checkpoint, legacy torch checkpoint or safetensors file")
    }

    @Test("every truncation of a zip checkpoint throws instead of crashing")
    func truncationsThrow() throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixture("tiny_zip.pth"))))
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("cut.pth")
        for length in stride(from: 4, to: bytes.count, by: 97) {
            try Data(bytes[0..<length]).write(to: path)
            #expect(throws: CheckpointError.self) { _ = try loadCheckpoint(at: path.path) }
        }
    }

    @Test("random byte corruption of every format either loads or throws a CheckpointError",
          arguments: ["tiny_zip.pth", "tiny_legacy.pth", "tiny_zip_protocol4.pth", "tiny.safetensors"])
    func corruptionThrows(name: String) throws {
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixture(name))))
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent(name)
        var generator = SeededGenerator(seed: 0xC0FFEE)
        for _ in 0..<150 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            try Data(bytes).write(to: path)
            do {
                _ = try loadCheckpoint(at: path.path)
            } catch let error as CheckpointError {
                #expect(error.description.hasPrefix("checkpoint \(path.path)"), "\(error)")
            }
        }
    }

    @Test("the real legacy mobilenet_v2 checkpoint matches torch's keys, shapes and sums",
          .enabled(if: FileManager.default.fileExists(atPath: mobilenetPath),
                   "skipped: ../shared/data/weights/mobilenet_v2-b0353104.pth is absent"))
    func mobilenetV2() throws {
        struct Golden: Decodable {
            struct Entry: Decodable {
                var key: String
                var dtype: String
                var shape: [Int]
                var sum: Double
                var abs_sum: Double
                var first: [Double]
            }
            var count: Int
            var tensors: [Entry]
        }
        let data = try Data(contentsOf: fixturesDirectory.appendingPathComponent("mobilenet_v2_golden.json"))
        let golden = try JSONDecoder().decode(Golden.self, from: data)
        let dict = try loadCheckpoint(at: mobilenetPath)
        #expect(dict.count == golden.count)
        #expect(dict.count == 314)
        #expect(dict.keys == golden.tensors.map(\.key))
        #expect(dict["features.0.0.weight"]?.shape == [32, 3, 3, 3])
        for entry in golden.tensors {
            let tensor = try #require(dict[entry.key])
            #expect(tensor.dtype.rawValue == entry.dtype, "\(entry.key)")
            #expect(tensor.shape == entry.shape, "\(entry.key)")
            let values = try tensor.floatTensor().scalars
            #expect(values.prefix(4).map(Double.init) == entry.first, "\(entry.key)")
            let sum = values.reduce(0.0) { $0 + Double($1) }
            let absSum = values.reduce(0.0) { $0 + abs(Double($1)) }
            // Summation order differs from torch's; relative to the magnitude it is ~1e-12.
            #expect(abs(sum - entry.sum) <= 1e-9 * max(1, entry.abs_sum), "\(entry.key): sum \(sum) vs \(entry.sum)")
            #expect(abs(absSum - entry.abs_sum) <= 1e-9 * max(1, entry.abs_sum), "\(entry.key)")
        }
    }
}
