// DetectionTransform against torchvision 0.14's GeneralizedRCNNTransform (make_dense_goldens.py).
import Checkpoints
import Foundation
import TensorCore
import Testing
@testable import Detectors

@Suite struct TransformTests {
    struct Case: Decodable {
        var name: String
        var minSize: Int
        var maxSize: Int
        var images: [DenseGolden.Image]
        var imageSizes: [[Int]]
        var boxes: [[Float]]
    }

    struct Cases: Decodable { var cases: [Case] }

    static let mean: [Float] = [0.485, 0.456, 0.406]
    static let std: [Float] = [0.229, 0.224, 0.225]

    /// Normalize, resize (shorter side to min_size unless the longer exceeds max_size) and pad
    /// to multiples of 32: a small pair, a 480×640 COCO-sized image to 800×1088, and a pair
    /// where max_size binds.
    @Test func batchesMatchTorchvision() throws {
        let golden = try DenseGolden(folder: "transform", stem: "transform")
        let cases = try DenseGolden.decode(Cases.self, from: golden.directory.appendingPathComponent("transform_golden.json"))
        #expect(cases.cases.count == 3)
        for testCase in cases.cases {
            let transform = DetectionTransform(minSize: testCase.minSize, maxSize: testCase.maxSize,
                                               imageMean: Self.mean, imageStd: Self.std)
            let images = testCase.images.map { formulaImage(height: $0.height, width: $0.width, seed: $0.seed) }
            let (batch, sizes) = transform(images)
            #expect(sizes.map { [$0.h, $0.w] } == testCase.imageSizes, "\(testCase.name)")
            try golden.expectSampled("\(testCase.name).batch", batch)

            let boxes = Detections(boxes: testCase.boxes.flatMap { $0 }, scores: testCase.boxes.map { _ in 1 },
                                   labels: testCase.boxes.map { _ in 1 })
            for (n, image) in testCase.images.enumerated() {
                let rescaled = transform.rescaled(boxes, from: sizes[n], to: Size2(image.height, image.width))
                let expected = try golden.tensor("\(testCase.name).\(n).rescaled").scalars
                #expect(zip(rescaled.boxes, expected).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($1)) },
                        "\(testCase.name) image \(n): \(rescaled.boxes) vs \(expected)")
            }
        }
    }

    /// The formula inputs are the generator's: its hash, worked out with Python integers.
    @Test func formulaInputsAreTheGeneratorsOwn() {
        #expect(formulaMix(0, 0, 0, 0) == 0)
        // z = 0x9E3779B1; z ^= z >> 29; z = z * 0xBF58476D1CE4E5B9 mod 2^64; z ^= z >> 32
        #expect(formulaMix(1, 0, 0, 0) == 0xB373_8DC3_945A_510E)
    }
}
