// Tests of AnchorGenerator: hand-computed grids and torchvision goldens.
import Testing
import TensorCore
@testable import BoxOps

@Suite("AnchorGenerator")
struct AnchorGeneratorTests {
    @Test("one size, three ratios on a 2x2 grid, by hand")
    func tinyGrid() throws {
        let generator = try AnchorGenerator(sizes: [[32]], aspectRatios: [[0.5, 1, 2]])
        // ratio 0.5: h = sqrt(0.5) * 32 = 22.63, w = 32 / sqrt(0.5) = 45.25; halves 11.31, 22.63
        // round to 11 and 23. ratio 1: halves 16. ratio 2: the transpose of ratio 0.5.
        #expect(generator.cellAnchors[0].scalars == [-23, -11, 23, 11, -16, -16, 16, 16, -11, -23, 11, 23])
        #expect(generator.anchorsPerLocation == [3])
        // 16 x 16 image over a 2 x 2 map: stride 8. Order: (y0,x0), (y0,x1), (y1,x0), (y1,x1),
        // three anchors each.
        let anchors = try generator.anchors(imageSize: Size2(16, 16), featureSizes: [Size2(2, 2)])
        #expect(anchors.shape == [12, 4])
        let expected: [[Float]] = [
            [-23, -11, 23, 11], [-16, -16, 16, 16], [-11, -23, 11, 23],       // shift (0, 0)
            [-15, -11, 31, 11], [-8, -16, 24, 16], [-3, -23, 19, 23],         // shift x 8
            [-23, -3, 23, 19], [-16, -8, 16, 24], [-11, -15, 11, 31],         // shift y 8
            [-15, -3, 31, 19], [-8, -8, 24, 24], [-3, -15, 19, 31],           // shift (8, 8)
        ]
        #expect(anchors.scalars == expected.flatMap { $0 })
    }

    @Test("half extents round half to even, as torch.round")
    func roundingHalfToEven() throws {
        // 5 / 2 = 2.5 -> 2, 7 / 2 = 3.5 -> 4, 101 / 2 = 50.5 -> 50 (RetinaNet's int(64 * 2^(2/3))).
        let generator = try AnchorGenerator(sizes: [[5, 7, 101]], aspectRatios: [[1]])
        #expect(generator.cellAnchors[0].scalars == [-2, -2, 2, 2, -4, -4, 4, 4, -50, -50, 50, 50])
    }

    @Test("strides are integer divisions of image by feature size")
    func integerStrides() throws {
        let generator = try AnchorGenerator(sizes: [[8]], aspectRatios: [[1]])
        // 30 / 4 = 7 rows apart, 50 / 6 = 8 columns apart; the last location is (y 3, x 5).
        let anchors = try generator.anchors(imageSize: Size2(30, 50), featureSizes: [Size2(4, 6)])
        #expect(anchors.shape == [24, 4])
        // Shift (x 5 * 8, y 3 * 7) = (40, 21) plus the cell anchor (-4, -4, 4, 4).
        let last: [Float] = [36, 17, 44, 25]
        #expect(Array(anchors.scalars[(23 * 4)...]) == last)
        // Second level stacks after the first.
        let two = try AnchorGenerator(sizes: [[8], [16]], aspectRatios: [[1], [1]])
        let both = try two.anchors(imageSize: Size2(30, 50), featureSizes: [Size2(4, 6), Size2(1, 1)])
        #expect(both.shape == [25, 4])
        #expect(Array(both.scalars[(24 * 4)...]) == [-8, -8, 8, 8])
    }

    @Test("mismatched level counts throw and name the field")
    func levelMismatch() throws {
        #expect(throws: BoxOpsError.levelCountMismatch(field: "aspect_ratios", expected: 2, actual: 1)) {
            try AnchorGenerator(sizes: [[32], [64]], aspectRatios: [[1]])
        }
        let generator = try AnchorGenerator(sizes: [[32], [64]], aspectRatios: [[1], [1]])
        #expect(throws: BoxOpsError.self) {
            try generator.anchors(imageSize: Size2(64, 64), featureSizes: [Size2(8, 8)])
        }
        #expect(throws: BoxOpsError.self) {
            try generator.anchors(imageSize: Size2(64, 64), featureSizes: [Size2(8, 8), Size2(0, 4)])
        }
    }

    struct Golden: Decodable {
        struct Case: Decodable {
            let name: String
            let sizes: [[Double]]
            let aspect_ratios: [[Double]]
            let image_size: [Int]
            let feature_sizes: [[Int]]
            let cell_anchors: [[Float]]
            let count: Int
            let anchors: [Float]
        }
        let cases: [Case]
    }

    @Test("matches torchvision on RetinaNet, Faster R-CNN (FPN, MobileNet) and FCOS configs")
    func torchvisionGoldens() throws {
        let golden = try Fixture.load("anchors.json", as: Golden.self)
        #expect(golden.cases.count == 4)
        for item in golden.cases {
            let generator = try AnchorGenerator(sizes: item.sizes, aspectRatios: item.aspect_ratios)
            for (level, cell) in generator.cellAnchors.enumerated() {
                #expect(cell.scalars == item.cell_anchors[level], "\(item.name) cell anchors of level \(level)")
            }
            let anchors = try generator.anchors(imageSize: Size2(item.image_size[0], item.image_size[1]),
                                                featureSizes: item.feature_sizes.map { Size2($0[0], $0[1]) })
            #expect(anchors.shape == [item.count, 4])
            // Integral values: exact.
            #expect(anchors.scalars == item.anchors, "\(item.name) anchors")
        }
    }
}
