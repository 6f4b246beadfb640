// Test fixtures: datasets/codec-vectors (made by make_vectors.py with PIL 9.4 and
// torchvision 0.14) and the optional photos in ../shared/data/photos.
import Foundation
@testable import ImageIO

/// Tolerances, declared once for every ImageIO test.
enum Tolerance {
    /// Largest per-channel difference allowed between our JPEG decode and PIL's. Both use
    /// libjpeg-turbo, but another version or SIMD path may round a sample differently.
    /// Lossless formats (PNG) are compared exactly.
    static let jpegPixel = 2
    /// Float32 tolerance for ToTensor + Normalize of identical pixels (the same IEEE
    /// operations in the same order as torch: exact in practice).
    static let tensorExact: Float = 1e-6
    /// Float32 tolerance for the ImageNet tensor of a JPEG: `jpegPixel` levels divided by
    /// the smallest ImageNet std.
    static let jpegTensor: Float = Float(jpegPixel) / 255 / 0.224 + 1e-5
    /// Per-channel mean of a decoded JPEG photo vs PIL's, in 0...255 levels.
    static let jpegMean = 0.05
}

enum Fixtures {
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let codecVectors = repositoryRoot.appendingPathComponent("datasets/codec-vectors")
    static let photos = repositoryRoot.appendingPathComponent("../shared/data/photos").standardizedFileURL
    static var photosAvailable: Bool { FileManager.default.fileExists(atPath: photos.path) }

    /// The path of a vector file.
    static func vector(_ name: String) -> String {
        codecVectors.appendingPathComponent("vectors").appendingPathComponent(name).path
    }

    static func expected() throws -> ExpectedVectors {
        let data = try Data(contentsOf: codecVectors.appendingPathComponent("expected.json"))
        return try JSONDecoder().decode(ExpectedVectors.self, from: data)
    }

    static func photoGoldens() throws -> PhotoGoldens {
        let data = try Data(contentsOf: codecVectors.appendingPathComponent("photos.json"))
        return try JSONDecoder().decode(PhotoGoldens.self, from: data)
    }
}

func bytes(base64: String) -> [UInt8] {
    guard let data = Data(base64Encoded: base64) else { return [] }
    return [UInt8](data)
}

func floats(base64: String) -> [Float] {
    let raw = bytes(base64: base64)
    return stride(from: 0, to: raw.count - 3, by: 4).map { index in
        Float(bitPattern: UInt32(raw[index]) | UInt32(raw[index + 1]) << 8
            | UInt32(raw[index + 2]) << 16 | UInt32(raw[index + 3]) << 24)
    }
}

func maximumDifference(_ a: [UInt8], _ b: [UInt8]) -> Int {
    zip(a, b).map { abs(Int($0) - Int($1)) }.max() ?? 0
}

func maximumDifference(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

struct ExpectedVectors: Decodable {
    struct Decode: Decodable {
        var file: String
        var codec: String
        var width: Int
        var height: Int
        var rgb_base64: String
    }
    struct Failure: Decodable {
        var file: String
        var kind: String
        var message_contains: String
    }
    struct Resize: Decodable {
        var source: String
        var width: Int
        var height: Int
        var rgb_base64: String
    }
    struct Preprocess: Decodable {
        var source: String
        var resize: Int
        var crop: Int
        var float32_base64: String
    }
    var imagenet_mean: [Float]
    var imagenet_std: [Float]
    var decodes: [Decode]
    var failures: [Failure]
    var resizes: [Resize]
    var crops: [Resize]
    var preprocess: [Preprocess]
    var preprocess_samples: [TensorSamples]
}

/// Sampled values of a `[3, crop, crop]` torchvision tensor.
struct TensorSamples: Decodable {
    var source: String
    var resize: Int
    var crop: Int
    var shape: [Int]
    var channel_means: [Double]
    var indices: [Int]
    var values_float32_base64: String
}

struct PhotoGoldens: Decodable {
    struct Photo: Decodable {
        var file: String
        var width: Int
        var height: Int
        var channel_means: [Double]
        var grid_16x16_rgb_base64: String
        var preprocess: TensorSamples
    }
    var photos: [Photo]
}

/// Compares a `[3, H, W]` tensor with PIL/torchvision samples; returns the largest
/// difference over the sampled values and over the channel means.
func compare(_ tensor: [Float], with samples: TensorSamples) -> (values: Float, means: Double) {
    let expected = floats(base64: samples.values_float32_base64)
    let actual = samples.indices.map { tensor[$0] }
    let plane = tensor.count / 3
    var meanDifference = 0.0
    for channel in 0..<3 {
        let mean = tensor[channel * plane..<(channel + 1) * plane].reduce(0.0) { $0 + Double($1) } / Double(plane)
        meanDifference = max(meanDifference, abs(mean - samples.channel_means[channel]))
    }
    return (maximumDifference(actual, expected), meanDifference)
}
