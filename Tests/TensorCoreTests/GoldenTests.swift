// TensorCore's ops against torch 1.13 on the fixtures written by eval/tools/make_tensor_goldens.py.
import Foundation
import Testing
@testable import TensorCore

/// The golden cases: `Fixtures/tensor_goldens.json` indexes float32 tensors in `tensor_goldens.bin`.
struct GoldenCase: CustomTestStringConvertible, Sendable, Decodable {
    struct Parameters: Sendable, Decodable {
        var kernel: [Int]?
        var stride: [Int]?
        var padding: [Int]?
        var dilation: [Int]?
        var ceilMode: Bool?
        var size: [Int]?
        var scaleFactor: Double?
        var recompute: Bool?
        var eps: Float?
        var axis: Int?
        var groups: Int?
        var rounding: String?
    }

    struct Entry: Sendable, Decodable {
        var shape: [Int]
        var offset: Int
    }

    var name: String
    var op: String
    var params: Parameters
    var tensors: [String: Entry]
    var testDescription: String { name }

    private struct Index: Decodable {
        var data: String
        var cases: [GoldenCase]
    }

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// The cases and the data they point into; an unreadable fixture is a test failure.
    static let loaded: (cases: [GoldenCase], data: [Float])? = {
        guard let indexData = try? Data(contentsOf: directory.appendingPathComponent("tensor_goldens.json")),
              let index = try? JSONDecoder().decode(Index.self, from: indexData),
              let raw = try? Data(contentsOf: directory.appendingPathComponent(index.data)) else { return nil }
        let floats = raw.withUnsafeBytes { bytes in
            (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
        return (index.cases, floats)
    }()

    static var all: [GoldenCase] { loaded?.cases ?? [] }

    func tensor(_ key: String) -> Tensor? {
        guard let entry = tensors[key], let data = Self.loaded?.data else { return nil }
        let count = entry.shape.reduce(1, *)
        guard entry.offset >= 0, entry.offset + count <= data.count else { return nil }
        return Tensor(shape: entry.shape, scalars: Array(data[entry.offset..<(entry.offset + count)]))
    }
}

private func pair(_ values: [Int]?) -> Size2? {
    guard let values, values.count == 2 else { return nil }
    return Size2(values[0], values[1])
}

@Suite struct GoldenTests {
    @Test func fixturesLoad() {
        #expect(GoldenCase.loaded != nil, "cannot read \(GoldenCase.directory.path)/tensor_goldens.{json,bin}")
        let ops = Set(GoldenCase.all.map(\.op))
        for op in ["maxPool2d", "adaptiveAvgPool2d", "upsampleNearest", "resizeBilinear", "resizeBilinearScale",
                   "l2Normalize", "hardswish", "hardsigmoid", "conv2d"] {
            #expect(ops.contains(op), "no golden case for \(op)")
        }
    }

    @Test("matches torch", arguments: GoldenCase.all)
    func matchesTorch(_ golden: GoldenCase) throws {
        let input = try #require(golden.tensor("input"))
        let expected = try #require(golden.tensor("output"))
        let p = golden.params
        let actual: Tensor
        var tolerance = Tolerance.golden
        switch golden.op {
        case "maxPool2d":
            actual = maxPool2d(input, kernelSize: try #require(pair(p.kernel)), stride: try #require(pair(p.stride)),
                               padding: try #require(pair(p.padding)), dilation: try #require(pair(p.dilation)),
                               ceilMode: try #require(p.ceilMode))
            tolerance = .exact
        case "adaptiveAvgPool2d":
            // torch takes its mean() path for 1×1, whose summation order may differ.
            actual = adaptiveAvgPool2d(input, outputSize: try #require(pair(p.size)))
        case "upsampleNearest":
            actual = upsampleNearest(input, size: try #require(pair(p.size)))
            tolerance = .exact
        case "resizeBilinear":
            actual = resizeBilinear(input, size: try #require(pair(p.size)))
            tolerance = .exact
        case "resizeBilinearScale":
            actual = resizeBilinear(input, scaleFactor: try #require(p.scaleFactor),
                                    recomputeScaleFactor: try #require(p.recompute))
            tolerance = .exact
        case "l2Normalize":
            actual = l2Normalize(input, scale: try #require(golden.tensor("scale")), eps: try #require(p.eps))
        case "hardswish":
            actual = hardswish(input)
            tolerance = .exact
        case "hardsigmoid":
            actual = hardsigmoid(input)
            tolerance = .exact
        case "sigmoid": actual = sigmoid(input)
        case "relu6":
            actual = relu6(input)
            tolerance = .exact
        case "relu":
            actual = relu(input)
            tolerance = .exact
        case "softmax": actual = softmax(input, axis: try #require(p.axis))
        case "conv2d":
            actual = conv2d(input, weight: try #require(golden.tensor("weight")), bias: golden.tensor("bias"),
                            stride: try #require(pair(p.stride)), padding: try #require(pair(p.padding)),
                            dilation: try #require(pair(p.dilation)), groups: try #require(p.groups))
        case "batchNorm":
            actual = batchNorm(input, weight: try #require(golden.tensor("weight")), bias: try #require(golden.tensor("bias")),
                               runningMean: try #require(golden.tensor("runningMean")),
                               runningVar: try #require(golden.tensor("runningVar")), eps: try #require(p.eps),
                               rounding: p.rounding == "fused" ? .fused : .frozen)
            tolerance = .exact
        case "linear":
            actual = linear(input, weight: try #require(golden.tensor("weight")), bias: golden.tensor("bias"))
        default:
            Issue.record("unknown golden op \(golden.op)")
            return
        }
        expectClose(actual, expected, tolerance, golden.name)
    }
}
