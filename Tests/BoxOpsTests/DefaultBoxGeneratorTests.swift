// Tests of DefaultBoxGenerator: a hand-computed two-level SSD and torchvision goldens.
import Testing
import TensorCore
@testable import BoxOps

@Suite("DefaultBoxGenerator")
struct DefaultBoxGeneratorTests {
    @Test("two-level SSD by hand: scales, pairs, centres, clip and pixel conversion")
    func tinySSD() throws {
        // Two levels from min 0.2 / max 0.9: s = [0.2, 0.2 + 0.7 * 1 / 1, 1.0] = [0.2, 0.9, 1.0]
        // (in Double 0.2 + 0.7 is 0.8999999999999999, as in Python).
        let generator = try DefaultBoxGenerator(aspectRatios: [[2], [3]], minRatio: 0.2, maxRatio: 0.9)
        #expect(zip(generator.scales, [0.2, 0.9, 1.0]).allSatisfy { abs($0 - $1) < 1e-12 } && generator.scales.count == 3)
        #expect(generator.boxesPerLocation == [4, 4])
        // Level 0: (s, s), (s', s') with s' = sqrt(0.2 * 0.9) = 0.424264, then ratio 2:
        // (0.2 * sqrt 2, 0.2 / sqrt 2) = (0.282843, 0.141421) and its transpose.
        expectClose(generator.widthHeightPairs[0].scalars,
                    [0.2, 0.2, 0.424264069, 0.424264069, 0.282842712, 0.141421356, 0.141421356, 0.282842712],
                    "level 0 pairs")
        // Level 1: (0.9, 0.9), s' = sqrt(0.9 * 1.0) = 0.948683, ratio 3: (1.558846, 0.519615) + transpose.
        expectClose(generator.widthHeightPairs[1].scalars,
                    [0.9, 0.9, 0.948683298, 0.948683298, 1.558845727, 0.519615242, 0.519615242, 1.558845727],
                    "level 1 pairs")

        // Image 100 (h) x 200 (w); level 0 is 2 x 4, level 1 is 1 x 1; no steps, so the centres
        // are (i + 0.5) / extent: x in {0.125, 0.375, 0.625, 0.875}, y in {0.25, 0.75}.
        let boxes = try generator.defaultBoxes(imageSize: Size2(100, 200), featureSizes: [Size2(2, 4), Size2(1, 1)])
        #expect(boxes.shape == [2 * 4 * 4 + 4, 4])
        func row(_ index: Int) -> [Float] { Array(boxes.scalars[(index * 4)..<(index * 4 + 4)]) }
        // First box: centre (0.125, 0.25), size 0.2: x (0.025, 0.225) * 200, y (0.15, 0.35) * 100.
        expectClose(row(0), [5, 15, 45, 35], "box 0")
        // Location (y 1, x 2) is location 6; its third pair (0.2828, 0.1414) is box 6 * 4 + 2;
        // centre (0.625, 0.75): x (0.625 -+ 0.141421) * 200, y (0.75 -+ 0.070711) * 100.
        expectClose(row(26), [96.715729, 67.928932, 153.284271, 82.071068], "box 26")
        // Level 1, ratio 3: width 1.5588 is clipped to 1 in relative (cx, cy, w, h) form, so the
        // box spans the whole width; height 0.519615 around 0.5.
        expectClose(row(34), [0, 24.019238, 200, 75.980762], "box 34 (clipped width)")
        expectClose(row(35), [48.038476, 0, 151.961524, 100], "box 35 (clipped height)")

        // Without clip the width stays 1.5588: x = (0.5 -+ 0.779423) * 200.
        let unclipped = try DefaultBoxGenerator(aspectRatios: [[2], [3]], minRatio: 0.2, maxRatio: 0.9, clip: false)
        let raw = try unclipped.defaultBoxes(imageSize: Size2(100, 200), featureSizes: [Size2(2, 4), Size2(1, 1)])
        expectClose(Array(raw.scalars[(34 * 4)..<(35 * 4)]), [-55.884573, 24.019238, 255.884573, 75.980762], "unclipped")
    }

    @Test("steps set the centre grid: (i + 0.5) / (image / step)")
    func steps() throws {
        // Steps 40 and 100 on a 100 x 200 image: level 0 grid x 200 / 40 = 5, y 100 / 40 = 2.5,
        // so location (y 1, x 3) has centre (3.5 / 5, 1.5 / 2.5) = (0.7, 0.6).
        let generator = try DefaultBoxGenerator(aspectRatios: [[2], [3]], minRatio: 0.2, maxRatio: 0.9, steps: [40, 100])
        let boxes = try generator.defaultBoxes(imageSize: Size2(100, 200), featureSizes: [Size2(2, 4), Size2(1, 1)])
        let index = (1 * 4 + 3) * 4
        // Size 0.2: x (0.6, 0.8) * 200, y (0.5, 0.7) * 100.
        expectClose(Array(boxes.scalars[(index * 4)..<(index * 4 + 4)]), [120, 50, 160, 70], "stepped box")
    }

    @Test("a single level takes [min, max] as its scales; bad configs throw")
    func configurations() throws {
        let single = try DefaultBoxGenerator(aspectRatios: [[2]], minRatio: 0.3, maxRatio: 0.8)
        #expect(single.scales == [0.3, 0.8])
        #expect(throws: BoxOpsError.levelCountMismatch(field: "steps", expected: 2, actual: 1)) {
            try DefaultBoxGenerator(aspectRatios: [[2], [2]], steps: [8])
        }
        #expect(throws: BoxOpsError.levelCountMismatch(field: "scales", expected: 3, actual: 2)) {
            try DefaultBoxGenerator(aspectRatios: [[2], [2]], scales: [0.1, 0.2])
        }
        let generator = try DefaultBoxGenerator(aspectRatios: [[2], [2]])
        #expect(throws: BoxOpsError.self) {
            try generator.defaultBoxes(imageSize: Size2(300, 300), featureSizes: [Size2(3, 3)])
        }
    }

    struct Golden: Decodable {
        struct Case: Decodable {
            let name: String
            let aspect_ratios: [[Double]]
            let scales: [Double]
            let steps: [Int]?
            let clip: Bool
            let image_size: [Int]
            let feature_sizes: [[Int]]
            let wh_pairs: [[Float]]
            let count: Int
            let rows: [Int]
            let boxes: [Float]
        }
        let cases: [Case]
    }

    @Test("matches torchvision on SSD300 and SSDlite320 configs")
    func torchvisionGoldens() throws {
        let golden = try Fixture.load("default_boxes.json", as: Golden.self)
        #expect(golden.cases.map(\.name) == ["ssd300_like", "ssdlite_like"])
        for item in golden.cases {
            let generator: DefaultBoxGenerator
            if item.name == "ssd300_like" {
                generator = try DefaultBoxGenerator(aspectRatios: item.aspect_ratios, scales: item.scales,
                                                    steps: item.steps, clip: item.clip)
            } else {
                // SSDlite: scales derived from min_ratio 0.2 and max_ratio 0.95.
                generator = try DefaultBoxGenerator(aspectRatios: item.aspect_ratios, minRatio: 0.2, maxRatio: 0.95)
                #expect(zip(generator.scales, item.scales).allSatisfy { abs($0 - $1) < 1e-12 })
            }
            for (level, pairs) in generator.widthHeightPairs.enumerated() {
                #expect(pairs.scalars == item.wh_pairs[level], "\(item.name) wh pairs of level \(level)")
            }
            let boxes = try generator.defaultBoxes(imageSize: Size2(item.image_size[0], item.image_size[1]),
                                                   featureSizes: item.feature_sizes.map { Size2($0[0], $0[1]) })
            #expect(boxes.shape == [item.count, 4])
            let sampled = item.rows.flatMap { Array(boxes.scalars[($0 * 4)..<($0 * 4 + 4)]) }
            expectClose(sampled, item.boxes, "\(item.name) default boxes")
        }
    }
}
