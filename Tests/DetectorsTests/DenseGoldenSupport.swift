// Reading the dense-detector goldens (detectors/tools/make_dense_goldens.py) and rebuilding their formula inputs.
import Checkpoints
import Detectors
import Foundation
import Layers
import TensorCore
import Testing

/// A golden of make_dense_goldens.py: `<stem>_golden.safetensors` (sampled intermediates and
/// whole detections), `<stem>_golden.json` (how the samples were taken, the inputs' formula
/// parameters), and for models `<stem>_config.json` and `<stem>_weights.safetensors`.
struct DenseGolden {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// Intermediates agree when their relative RMS difference `‖a − b‖ / ‖b‖` (over the sampled
    /// values) is at most `relativeTolerance`, every sampled value is within `elementTolerance ·
    /// max(|b|, mean |tensor|)`, and the sums within `relativeTolerance · Σ|b|`. (The random
    /// fixture networks are chaotic enough that torch's own float32 result is 1e-4 from its
    /// float64 one at single elements, so single elements get the wider bound.)
    static let relativeTolerance = 1e-4
    static let elementTolerance = 1e-3
    /// Detections: same labels, boxes within this many pixels, scores within `scoreTolerance`.
    static let boxTolerance: Float = 1e-2
    static let scoreTolerance: Float = 1e-4

    struct Sampled: Decodable {
        var shape: [Int]
        var stride: Int
        var sum: Double
        var absSum: Double
    }

    struct Batch: Decodable {
        var size: [Int]
        var imageSizes: [[Int]]
        var seed: UInt64
    }

    struct Image: Decodable {
        var height: Int
        var width: Int
        var seed: UInt64
    }

    struct Meta: Decodable {
        var sampled: [String: Sampled]
        var batch: Batch?
        var images: [Image]?
    }

    let directory: URL
    let stem: String
    let tensors: StateDict
    let meta: Meta

    init(folder: String, stem: String) throws {
        directory = Self.fixtures.appendingPathComponent(folder)
        self.stem = stem
        tensors = try readSafeTensors(at: directory.appendingPathComponent("\(stem)_golden.safetensors").path)
        meta = try Self.decode(Meta.self, from: directory.appendingPathComponent("\(stem)_golden.json"))
    }

    static func decode<T: Decodable>(_ type: T.Type, from url: URL) throws -> T {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(T.self, from: Data(contentsOf: url))
    }

    /// The model config of this golden (fixture folder).
    func config() throws -> DetectorConfig {
        try Self.decode(DetectorConfig.self, from: directory.appendingPathComponent("\(stem)_config.json"))
    }

    /// Loads this golden's weights into `model`, strictly.
    func load(into model: any Module) throws {
        let path = directory.appendingPathComponent("\(stem)_weights.safetensors").path
        try model.load(from: ParameterLoader(try readSafeTensors(at: path), source: path))
    }

    func tensor(_ name: String) throws -> Tensor {
        let stored = try #require(tensors[name], "golden \(stem) has no tensor '\(name)'")
        return try stored.floatTensor()
    }

    /// The already transformed batch the golden fed the network, and its image sizes.
    func batch() throws -> (batch: Tensor, imageSizes: [Size2]) {
        let batch = try #require(meta.batch, "golden \(stem) has no batch")
        let sizes = batch.imageSizes.map { Size2($0[0], $0[1]) }
        return (formulaBatch(size: Size2(batch.size[0], batch.size[1]), imageSizes: sizes, seed: batch.seed), sizes)
    }

    /// The `[3, H, W]` images the golden fed the whole model.
    func images() throws -> [Tensor] {
        try #require(meta.images, "golden \(stem) has no images").map {
            formulaImage(height: $0.height, width: $0.width, seed: $0.seed)
        }
    }

    /// Expects `actual` to match the golden's sample of `name`: shape, sampled values, sums.
    func expectSampled(_ name: String, _ actual: Tensor, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let info = try #require(meta.sampled[name], "golden \(stem) has no sampled '\(name)'")
        let expected = try tensor(name).scalars
        #expect(actual.shape == info.shape, "\(stem) \(name): shape \(actual.shape), expected \(info.shape)",
                sourceLocation: sourceLocation)
        guard actual.shape == info.shape else { return }
        let values = actual.scalars
        let count = values.count
        let scale = info.absSum / Double(max(count, 1))
        var mismatches = 0, first = "", squaredError = 0.0, squaredNorm = 0.0
        for (position, index) in stride(from: 0, to: count, by: info.stride).enumerated() {
            let (a, b) = (Double(values[index]), Double(expected[position]))
            squaredError += (a - b) * (a - b)
            squaredNorm += b * b
            if !(abs(a - b) <= Self.elementTolerance * max(abs(b), scale)) {
                if mismatches == 0 { first = "flat index \(index): \(a) vs \(b)" }
                mismatches += 1
            }
        }
        #expect(mismatches == 0, "\(stem) \(name): \(mismatches) sampled values differ, first at \(first)",
                sourceLocation: sourceLocation)
        let relativeError = (squaredError / max(squaredNorm, .leastNormalMagnitude)).squareRoot()
        #expect(relativeError <= Self.relativeTolerance, "\(stem) \(name): relative RMS difference \(relativeError)",
                sourceLocation: sourceLocation)
        let sum = values.reduce(0.0) { $0 + Double($1) }
        #expect(abs(sum - info.sum) <= Self.relativeTolerance * info.absSum,
                "\(stem) \(name): sum \(sum), expected \(info.sum)", sourceLocation: sourceLocation)
    }

    /// Expects `actual` to equal the golden detections `prefix.n.{boxes,scores,labels}`: as many,
    /// and each golden detection matched by a distinct one of ours with the same label, box within
    /// `boxTolerance` and score within `scoreTolerance` (in score order, so only detections whose
    /// scores tie within the tolerance may trade places).
    func expectDetections(_ prefix: String, _ actual: [Detections], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let images = (0..<64).filter { tensors.contains("\(prefix).\($0).scores") }.count
        #expect(actual.count == images, "\(stem) \(prefix): \(actual.count) images, expected \(images)",
                sourceLocation: sourceLocation)
        for (n, detections) in actual.enumerated() where n < images {
            let boxes = try tensor("\(prefix).\(n).boxes").scalars
            let scores = try tensor("\(prefix).\(n).scores").scalars
            let labels = try tensor("\(prefix).\(n).labels").scalars.map { Int($0) }
            #expect(detections.count == scores.count,
                    "\(stem) \(prefix) image \(n): \(detections.count) detections, expected \(scores.count)",
                    sourceLocation: sourceLocation)
            var used = [Bool](repeating: false, count: detections.count)
            var unmatched: [String] = []
            for k in scores.indices {
                let match = detections.scores.indices.first { i in
                    guard !used[i], detections.labels[i] == labels[k],
                          abs(detections.scores[i] - scores[k]) <= Self.scoreTolerance else { return false }
                    return (0..<4).allSatisfy { abs(detections.boxes[4 * i + $0] - boxes[4 * k + $0]) <= Self.boxTolerance }
                }
                if let match {
                    used[match] = true
                } else {
                    unmatched.append("#\(k) label \(labels[k]) score \(scores[k]) box \(Array(boxes[(4 * k)..<(4 * k + 4)]))")
                }
            }
            #expect(unmatched.isEmpty, "\(stem) \(prefix) image \(n): \(unmatched.count) golden detections unmatched: \(unmatched.prefix(3))",
                    sourceLocation: sourceLocation)
            let sorted = zip(detections.scores, detections.scores.dropFirst()).allSatisfy { $0 >= $1 }
            #expect(sorted, "\(stem) \(prefix) image \(n): detections not sorted by score", sourceLocation: sourceLocation)
        }
    }
}

// MARK: - Inputs by formula (the same integer arithmetic as make_dense_goldens.py)

/// make_dense_goldens.py's `mix`: a 64-bit hash of four integers, wrapping arithmetic.
func formulaMix(_ a: UInt64, _ b: UInt64, _ c: UInt64, _ d: UInt64) -> UInt64 {
    var z = a &* 0x9E37_79B1 &+ b &* 0x85EB_CA77 &+ c &* 0xC2B2_AE3D &+ d &* 0x27D4_EB2F
    z ^= z >> 29
    z = z &* 0xBF58_476D_1CE4_E5B9
    z ^= z >> 32
    return z
}

/// make_dense_goldens.py's `pattern`: 8×8 blocks (hash % 256) plus detail (hash % 64), in [0, 319].
func formulaPattern(channel: Int, y: Int, x: Int, seed: UInt64) -> Int {
    let (c, yy, xx) = (UInt64(channel), UInt64(y), UInt64(x))
    return Int(formulaMix(xx >> 3, yy >> 3, c, seed) % 256 + formulaMix(xx, yy, c, seed + 1) % 64)
}

/// An already transformed batch `[N, 3, H, W]`: `(pattern − 160) / 64` inside each image's
/// size (image `n` uses seed `seed + 2n`), zero in the padding.
func formulaBatch(size: Size2, imageSizes: [Size2], seed: UInt64) -> Tensor {
    Tensor(shape: [imageSizes.count, 3, size.h, size.w]) { out in
        for i in 0..<out.count { out[i] = 0 }
        for (n, image) in imageSizes.enumerated() {
            for c in 0..<3 {
                for y in 0..<image.h {
                    for x in 0..<image.w {
                        let value = formulaPattern(channel: c, y: y, x: x, seed: seed + 2 * UInt64(n))
                        out[((n * 3 + c) * size.h + y) * size.w + x] = (Float(value) - 160) / 64
                    }
                }
            }
        }
    }
}

/// A `[3, H, W]` image in [0, 1]: `(pattern % 256) / 255`.
func formulaImage(height: Int, width: Int, seed: UInt64) -> Tensor {
    Tensor(shape: [3, height, width]) { out in
        for c in 0..<3 {
            for y in 0..<height {
                for x in 0..<width {
                    out[(c * height + y) * width + x] = Float(formulaPattern(channel: c, y: y, x: x, seed: seed) % 256) / 255
                }
            }
        }
    }
}

/// The shipped `detectors/<name>/config.json`.
func shippedDetectorConfig(_ name: String) throws -> DetectorConfig {
    try DenseGolden.decode(DetectorConfig.self, from: DenseGolden.repositoryRoot
        .appendingPathComponent("detectors").appendingPathComponent(name).appendingPathComponent("config.json"))
}

/// Expects `model`'s parameters to be exactly the keys and shapes of the torchvision builder's
/// state dict recorded in `Fixtures/<folder>/<name>_keys.json` (num_batches_tracked excluded).
func expectTorchvisionKeys(_ model: any Module, folder: String, name: String,
                           sourceLocation: SourceLocation = #_sourceLocation) throws {
    struct Keys: Decodable { var keys: [String: [Int]] }
    let expected = try DenseGolden.decode(Keys.self, from: DenseGolden.fixtures.appendingPathComponent(folder)
        .appendingPathComponent("\(name)_keys.json")).keys
    let ours = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.key, $0.tensor.shape) })
    let missing = expected.keys.filter { ours[$0] == nil }.sorted()
    let extra = ours.keys.filter { expected[$0] == nil }.sorted()
    let mismatched = expected.filter { key, shape in ours[key].map { $0 != shape } ?? false }.keys.sorted()
    #expect(missing.isEmpty && extra.isEmpty && mismatched.isEmpty,
            "\(name): missing \(missing.prefix(5)), extra \(extra.prefix(5)), mis-shaped \(mismatched.prefix(5))",
            sourceLocation: sourceLocation)
    #expect(ours.count == expected.count, "\(name): \(ours.count) parameters, torchvision \(expected.count)",
            sourceLocation: sourceLocation)
}
