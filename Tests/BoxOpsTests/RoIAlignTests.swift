// Tests of roiAlign on a ramp image, where bilinear values are computable by hand, and goldens.
import Testing
import TensorCore
@testable import BoxOps

@Suite("RoIAlign")
struct RoIAlignTests {
    /// A 1 x 1 x 4 x 5 ramp f(y, x) = 10 y + x: bilinear interpolation of it is exact, so a
    /// sample at (y, x) inside the map reads 10 y + x.
    let ramp = Tensor(shape: [1, 1, 4, 5], scalars: (0..<4).flatMap { y in (0..<5).map { x in Float(10 * y + x) } })

    func pool(_ roi: [Float], _ output: Size2, scale: Float = 1, sampling: Int, aligned: Bool,
              features: Tensor? = nil) -> [Float] {
        roiAlign(features: features ?? ramp, rois: Tensor(shape: [roi.count / 5, 5], scalars: roi), outputSize: output,
                 spatialScale: scale, samplingRatio: sampling, aligned: aligned).scalars
    }

    @Test("aligned shifts the box by half a pixel")
    func alignedVersusLegacy() {
        // Box (1, 1)-(3, 3), one bin, 2 x 2 samples. Legacy: samples at 1.5 and 2.5 on each axis,
        // mean 10 * 2 + 2 = 22. Aligned: the box becomes (0.5, 0.5)-(2.5, 2.5), samples at 1 and 2,
        // mean 10 * 1.5 + 1.5 = 16.5.
        #expect(pool([0, 1, 1, 3, 3], Size2(1, 1), sampling: 2, aligned: false) == [22])
        #expect(pool([0, 1, 1, 3, 3], Size2(1, 1), sampling: 2, aligned: true) == [16.5])
    }

    @Test("sampling ratio 1 versus 2, and adaptive sampling")
    func samplingRatios() {
        // Box (0, 0)-(4, 4) into 2 x 2 bins of 2 px. One sample per bin, at the bin centres
        // y, x in {1, 3}: 11, 13, and on row y = 3 (the last row, no interpolation) 31, 33.
        #expect(pool([0, 0, 0, 4, 4], Size2(2, 2), sampling: 1, aligned: false) == [11, 13, 31, 33])
        // Two samples per axis at 0.5, 1.5 | 2.5, 3.5. Row 3.5 lies past the last row (3) and
        // clamps to it, so the lower bins average y over {2.5, 3}: 27.5; x means are 1 and 3.
        #expect(pool([0, 0, 0, 4, 4], Size2(2, 2), sampling: 2, aligned: false) == [11, 13, 28.5, 30.5])
        // Adaptive: ceil(4 / 2) = 2 samples per axis, the same as sampling ratio 2.
        #expect(pool([0, 0, 0, 4, 4], Size2(2, 2), sampling: 0, aligned: false) == [11, 13, 28.5, 30.5])
        // Adaptive on a 4 x 1 box into 1 x 1: ceil(1) = 1 sample along y, 4 along x.
        // y = 1.5; x in {0.5, 1.5, 2.5, 3.5} -> mean 2; value 17.
        #expect(pool([0, 0, 1, 4, 2], Size2(1, 1), sampling: -1, aligned: false) == [17])
    }

    @Test("bins at the border: outside [-1, W] is 0, [-1, 0] snaps to 0, past W-1 clamps")
    func borders() {
        // Box x from -2.5 to 1.5, y 0 to 2, two bins along x, one sample each:
        // bin 0 centre x = -1.5 < -1 -> 0; bin 1 centre x = 0.5, y = 1 -> 10.5.
        #expect(pool([0, -2.5, 0, 1.5, 2], Size2(1, 2), sampling: 1, aligned: false) == [0, 10.5])
        // Centre x = -0.5 lies in [-1, 0]: it snaps to 0, value 10 * 1 + 0.
        #expect(pool([0, -1.5, 0, 0.5, 2], Size2(1, 1), sampling: 1, aligned: false) == [10])
        // Centre x = 4.5 lies in (W - 1, W]: it clamps to column 4, value 14.
        #expect(pool([0, 4, 0, 5, 2], Size2(1, 1), sampling: 1, aligned: false) == [14])
        // Centre x = 5.7 > W = 5: outside, 0.
        #expect(pool([0, 5.2, 0, 6.2, 2], Size2(1, 1), sampling: 1, aligned: false) == [0])
        // Centre y = -1 exactly is still inside: it snaps to 0, value x = 2.
        #expect(pool([0, 1.5, -1.5, 2.5, -0.5], Size2(1, 1), sampling: 1, aligned: false) == [2])
    }

    @Test("small and empty boxes")
    func degenerate() {
        // Legacy: a 0.2 px box grows to 1 x 1, sampled at its start + 0.5: (1.5, 1.5) -> 16.5.
        #expect(pool([0, 1, 1, 1.2, 1.2], Size2(1, 1), sampling: 1, aligned: false) == [16.5])
        // Aligned keeps 0.2 px: start 0.5, sample at 0.5 + 0.1 = 0.6 -> 6.6.
        let aligned = pool([0, 1, 1, 1.2, 1.2], Size2(1, 1), sampling: 1, aligned: true)
        #expect(close(aligned[0], 6.6))
        // Aligned with x2 < x1 and adaptive sampling: ceil of a negative size gives no samples -> 0.
        #expect(pool([0, 3, 1, 1, 2], Size2(1, 1), sampling: 0, aligned: true) == [0])
    }

    @Test("batch index and channels are routed, spatial scale applies")
    func batchAndChannels() {
        // Batch of 2, 2 channels: channel 1 = 2 * ramp, image 1 = ramp + 100.
        let base = ramp.scalars
        let values = base + base.map { 2 * $0 } + base.map { $0 + 100 } + base.map { 2 * ($0 + 100) }
        let features = Tensor(shape: [2, 2, 4, 5], scalars: values)
        // Image-space box (2, 2)-(6, 6) at scale 0.5 is (1, 1)-(3, 3) on the map: 22 as above.
        let pooled = pool([1, 2, 2, 6, 6, 0, 2, 2, 6, 6], Size2(1, 1), scale: 0.5, sampling: 2, aligned: false,
                          features: features)
        #expect(pooled == [122, 244, 22, 44])
    }

    struct Golden: Decodable {
        struct Case: Decodable {
            let sampling_ratio: Int
            let aligned: Bool
            let output_size: [Int]
            let spatial_scale: Float
            let output: [Float]
        }
        let feature_shape: [Int]
        let features: [Float]
        let rois: [Float]
        let cases: [Case]
    }

    @Test("matches torchvision's CPU roi_align: border crossings, sampling 0/1/2, aligned or not")
    func torchvisionGoldens() throws {
        let golden = try Fixture.load("roi_align.json", as: Golden.self)
        let features = Tensor(shape: golden.feature_shape, scalars: golden.features)
        let rois = Tensor.rows(golden.rois, width: 5)
        #expect(golden.cases.count == 6)
        for item in golden.cases {
            let pooled = roiAlign(features: features, rois: rois, outputSize: Size2(item.output_size[0], item.output_size[1]),
                                  spatialScale: item.spatial_scale, samplingRatio: item.sampling_ratio, aligned: item.aligned)
            #expect(pooled.shape == [rois.shape[0], golden.feature_shape[1], item.output_size[0], item.output_size[1]])
            expectClose(pooled.scalars, item.output, "roi_align sampling \(item.sampling_ratio) aligned \(item.aligned)")
        }
    }

    @Test("the channels-last kernel equals its naive twin bit for bit")
    func channelsLastMatchesTheNaiveTwin() {
        var generator = SeededGenerator(seed: 7)
        let features = Tensor.randomNormal([2, 13, 9, 11], std: 1, generator: &generator)
        // Boxes inside, across and outside the borders, tiny, inverted; both images.
        var rois: [Float] = []
        for index in 0..<40 {
            let x1 = Float.random(in: -6...14, using: &generator), y1 = Float.random(in: -6...12, using: &generator)
            let w = Float.random(in: -2...12, using: &generator), h = Float.random(in: -2...10, using: &generator)
            rois += [Float(index % 2), x1, y1, x1 + (index % 7 == 0 ? 0.1 : w), y1 + h]
        }
        let boxes = Tensor(shape: [40, 5], scalars: rois)
        for (size, sampling, aligned, scale) in [(Size2(7, 7), 2, false, Float(1)), (Size2(2, 3), 0, true, 0.5),
                                                 (Size2(3, 2), -1, false, 0.25), (Size2(1, 1), 1, true, 1)] {
            let fast = roiAlign(features: features, rois: boxes, outputSize: size, spatialScale: scale,
                                samplingRatio: sampling, aligned: aligned)
            let naive = roiAlignReference(features: features, rois: boxes, outputSize: size, spatialScale: scale,
                                          samplingRatio: sampling, aligned: aligned)
            #expect(fast.shape == naive.shape)
            #expect(fast.scalars.map(\.bitPattern) == naive.scalars.map(\.bitPattern),
                    "output \(size) sampling \(sampling) aligned \(aligned)")
        }
    }
}
