// Tests of LevelMapper, scale inference and MultiScaleRoIAlign: by hand and against goldens.
import Testing
import TensorCore
@testable import BoxOps

@Suite("MultiScaleRoIAlign")
struct MultiScaleRoIAlignTests {
    func square(_ side: Float, at origin: Float = 10) -> [Float] { [origin, origin, origin + side, origin + side] }

    @Test("FPN levels of boxes of area 224², 112², 448² and beyond")
    func levelMapping() {
        let mapper = LevelMapper(kMin: 2, kMax: 5)
        // floor(4 + log2(s / 224) + 1e-6): 224 -> 4, 112 -> 3, 448 -> 5; relative to kMin 2.
        // 10 px -> floor(4 - 4.49) = -1, clamped to 2; 2000 px -> 7.16, clamped to 5.
        // 224 x 223.9: log2(223.95 / 224) = -0.0003 -> 3.9997 -> level 3.
        let sides: [Float] = [224, 112, 448, 10, 2000]
        let boxes = Tensor(shape: [6, 4], scalars: sides.flatMap { square($0) } + [0, 0, 224, 223.9])
        #expect(mapper.levels(for: boxes) == [2, 1, 3, 0, 3, 1])
        // Another canonical level and scale: 56 px with (56, 3) on levels 3...6 -> level 3 -> 0.
        let custom = LevelMapper(kMin: 3, kMax: 6, canonicalScale: 56, canonicalLevel: 3)
        #expect(custom.levels(for: Tensor(shape: [2, 4], scalars: square(56) + square(113))) == [0, 1])
    }

    @Test("scales are powers of two from the height ratio; levels from the first and last")
    func scales() {
        // 200 / 800 = 0.25; 25 / 800 = 2^-5; 192 / 750 = 0.256 rounds to 2^-2 in log2.
        #expect(MultiScaleRoIAlign.inferScale(featureSize: Size2(200, 304), imageSize: Size2(800, 1216)) == 0.25)
        #expect(MultiScaleRoIAlign.inferScale(featureSize: Size2(25, 38), imageSize: Size2(800, 1216)) == 0.03125)
        #expect(MultiScaleRoIAlign.inferScale(featureSize: Size2(192, 250), imageSize: Size2(750, 1000)) == 0.25)
        let pooler = MultiScaleRoIAlign(outputSize: 7, samplingRatio: 2)
        // The image size is the per-axis maximum over the images: 800 (from the second image).
        let (levelScales, mapper) = pooler.scalesAndMapper(
            featureSizes: [Size2(200, 200), Size2(100, 100), Size2(50, 50), Size2(25, 25)],
            imageSizes: [Size2(600, 800), Size2(800, 640)])
        #expect(levelScales == [0.25, 0.125, 0.0625, 0.03125])
        #expect(mapper == LevelMapper(kMin: 2, kMax: 5))
    }

    @Test("each box is pooled from its level with that level's scale")
    func routing() {
        // Level 0 (stride 4) is constant 1, level 1 (stride 8) constant 2, for an 8 x 8 image
        // (maps 2 x 2 and 1 x 1, scales 1/4 and 1/8, so levels 2 and 3). With canonical scale 8 at
        // level 3: a 4 px box -> floor(3 - 1) = 2 -> level 0 (value 1); an 8 px box -> 3 -> level 1
        // (value 2).
        let pooler = MultiScaleRoIAlign(outputSize: 1, samplingRatio: 1, canonicalScale: 8, canonicalLevel: 3)
        let fine = Tensor(repeating: 1, shape: [1, 1, 2, 2]), coarse = Tensor(repeating: 2, shape: [1, 1, 1, 1])
        let boxes = Tensor(shape: [3, 4], scalars: [0, 0, 8, 8, 0, 0, 4, 4, 4, 4, 8, 8])
        let pooled = pooler(features: [fine, coarse], boxes: [boxes], imageSizes: [Size2(8, 8)])
        #expect(pooled.shape == [3, 1, 1, 1])
        #expect(pooled.scalars == [2, 1, 1])
    }

    struct Golden: Decodable {
        struct Single: Decodable {
            let feature_index: Int
            let output_size: [Int]
            let sampling_ratio: Int
            let scales: [Float]
            let output: [Float]
        }
        struct Mapper: Decodable {
            let k_min: Int
            let k_max: Int
            let boxes: [Float]
            let levels: [Int]
        }
        let image_sizes: [[Int]]
        let feature_shapes: [[Int]]
        let features: [[Float]]
        let boxes: [[Float]]
        let canonical_scale: Int
        let output_size: [Int]
        let sampling_ratio: Int
        let scales: [Float]
        let k_min: Int
        let k_max: Int
        let levels: [Int]
        let output: [Float]
        let single_level: Single
        let mapper: Mapper
    }

    @Test("matches torchvision's MultiScaleRoIAlign on 4 levels and 1 level, and its LevelMapper")
    func torchvisionGoldens() throws {
        let golden = try Fixture.load("multiscale_roi_align.json", as: Golden.self)
        let features = zip(golden.feature_shapes, golden.features).map { Tensor(shape: $0, scalars: $1) }
        let boxes = golden.boxes.map { Tensor.rows($0, width: 4) }
        let imageSizes = golden.image_sizes.map { Size2($0[0], $0[1]) }
        let pooler = MultiScaleRoIAlign(outputSize: Size2(golden.output_size[0], golden.output_size[1]),
                                        samplingRatio: golden.sampling_ratio, canonicalScale: golden.canonical_scale)
        let (levelScales, mapper) = pooler.scalesAndMapper(
            featureSizes: features.map { Size2($0.shape[2], $0.shape[3]) }, imageSizes: imageSizes)
        #expect(levelScales == golden.scales)
        #expect(mapper.kMin == golden.k_min && mapper.kMax == golden.k_max)
        let allBoxes = Tensor.rows(golden.boxes.flatMap { $0 }, width: 4)
        #expect(mapper.levels(for: allBoxes) == golden.levels)
        #expect(Set(golden.levels) == [0, 1, 2, 3])
        let pooled = pooler(features: features, boxes: boxes, imageSizes: imageSizes)
        expectClose(pooled.scalars, golden.output, "4-level pooling")

        let single = golden.single_level
        let singlePooler = MultiScaleRoIAlign(outputSize: Size2(single.output_size[0], single.output_size[1]),
                                              samplingRatio: single.sampling_ratio)
        let singleOutput = singlePooler(features: [features[single.feature_index]], boxes: boxes, imageSizes: imageSizes)
        expectClose(singleOutput.scalars, single.output, "1-level pooling")

        let defaultMapper = LevelMapper(kMin: golden.mapper.k_min, kMax: golden.mapper.k_max)
        #expect(defaultMapper.levels(for: Tensor.rows(golden.mapper.boxes, width: 4)) == golden.mapper.levels)
    }
}
