// PIL's bilinear resize, torchvision's center crop and ImageNet preprocessing vs goldens.
import Testing
@testable import ImageIO

@Suite struct ResampleTests {
    @Test func resizeMatchesPILExactly() throws {
        let expected = try Fixtures.expected()
        #expect(expected.resizes.count >= 15)
        for golden in expected.resizes {
            let source = try loadImage(at: Fixtures.vector(golden.source))
            let resized = source.resizedBilinearAntialiased(width: golden.width, height: golden.height)
            #expect(resized.width == golden.width && resized.height == golden.height)
            #expect(resized.pixels == bytes(base64: golden.rgb_base64),
                    "\(golden.source) -> \(golden.width)x\(golden.height): max difference \(maximumDifference(resized.pixels, bytes(base64: golden.rgb_base64)))")
        }
    }

    @Test func centerCropMatchesTorchvisionExactly() throws {
        let expected = try Fixtures.expected()
        #expect(expected.crops.count >= 8)
        for golden in expected.crops {
            let source = try loadImage(at: Fixtures.vector(golden.source))
            let cropped = source.centerCropped(width: golden.width, height: golden.height)
            #expect(cropped.width == golden.width && cropped.height == golden.height)
            #expect(cropped.pixels == bytes(base64: golden.rgb_base64),
                    "\(golden.source) crop \(golden.width)x\(golden.height)")
        }
    }

    @Test func imagenetPreprocessMatchesTorchvision() throws {
        let expected = try Fixtures.expected()
        #expect(expected.imagenet_mean == imagenetMean && expected.imagenet_std == imagenetStd)
        for golden in expected.preprocess {
            let source = try loadImage(at: Fixtures.vector(golden.source))
            let tensor = imagenetPreprocess(source, resize: golden.resize, crop: golden.crop)
            let reference = floats(base64: golden.float32_base64)
            #expect(tensor.count == 3 * golden.crop * golden.crop && reference.count == tensor.count)
            let difference = maximumDifference(tensor, reference)
            #expect(difference <= Tolerance.tensorExact,
                    "\(golden.source) resize \(golden.resize) crop \(golden.crop): max difference \(difference)")
        }
        for golden in expected.preprocess_samples {
            let source = try loadImage(at: Fixtures.vector(golden.source))
            let tensor = imagenetPreprocess(source, resize: golden.resize, crop: golden.crop)
            #expect(golden.shape == [3, golden.crop, golden.crop] && tensor.count == 3 * golden.crop * golden.crop)
            let (values, means) = compare(tensor, with: golden)
            #expect(values <= Tolerance.tensorExact && means <= 1e-6, "\(golden.source): \(values), \(means)")
        }
    }

    @Test func resizedShorterSideComputesTorchvisionsOutputSize() {
        // _compute_resized_output_size: int(size * long / short), orientation kept
        let landscape = RGBImage(width: 640, height: 427)
        #expect(landscape.resizedShorterSide(to: 256).width == 383)  // int(256 * 640 / 427) = 383
        #expect(landscape.resizedShorterSide(to: 256).height == 256)
        let portrait = RGBImage(width: 352, height: 448)
        let resized = portrait.resizedShorterSide(to: 256)
        #expect(resized.width == 256 && resized.height == 325)  // int(256 * 448 / 352) = 325
        let square = RGBImage(width: 256, height: 256, fill: (1, 2, 3))
        #expect(square.resizedShorterSide(to: 256) == square)
    }

    /// A naive twin of the fixed-point resample: the same filter in Double, both passes in
    /// full, rounding to 8 bits between them. PIL's fixed point and its row window may
    /// differ from it by one level, never more.
    func naiveResize(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        func weights(_ input: Int, _ output: Int) -> [[(Int, Double)]] {
            let scale = Double(input) / Double(output)
            let filterScale = max(scale, 1)
            return (0..<output).map { o in
                let center = (Double(o) + 0.5) * scale
                var taps: [(Int, Double)] = []
                for i in 0..<input {
                    let distance = abs((Double(i) + 0.5 - center) / filterScale)
                    if distance < 1 { taps.append((i, 1 - distance)) }
                }
                let total = taps.reduce(0) { $0 + $1.1 }
                return taps.map { ($0.0, $0.1 / total) }
            }
        }
        let horizontal = weights(image.width, width)
        var middle = [UInt8](repeating: 0, count: width * image.height * 3)
        for y in 0..<image.height {
            for x in 0..<width {
                for c in 0..<3 {
                    let value = horizontal[x].reduce(0.0) { $0 + $1.1 * Double(image.pixels[(y * image.width + $1.0) * 3 + c]) }
                    middle[(y * width + x) * 3 + c] = UInt8(min(max(value.rounded(), 0), 255))
                }
            }
        }
        let vertical = weights(image.height, height)
        var output = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<3 {
                    let value = vertical[y].reduce(0.0) { $0 + $1.1 * Double(middle[($1.0 * width + x) * 3 + c]) }
                    output[(y * width + x) * 3 + c] = UInt8(min(max(value.rounded(), 0), 255))
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: output)
    }

    @Test func resizeAgreesWithItsNaiveTwinOnRandomShapes() {
        var random = TestRandom(seed: 42)
        for _ in 0..<40 {
            let width = random.next(in: 1...40)
            let height = random.next(in: 1...40)
            let pixels = (0..<width * height * 3).map { _ in UInt8(random.next(in: 0...255)) }
            let image = RGBImage(width: width, height: height, pixels: pixels)
            let outputWidth = random.next(in: 1...50)
            let outputHeight = random.next(in: 1...50)
            let fast = image.resizedBilinearAntialiased(width: outputWidth, height: outputHeight)
            var naive = naiveResize(image, width: outputWidth, height: outputHeight)
            if outputWidth == width && outputHeight == height { naive = image }
            let difference = maximumDifference(fast.pixels, naive.pixels)
            #expect(difference <= 1, "\(width)x\(height) -> \(outputWidth)x\(outputHeight): \(difference)")
        }
    }

    @Test func resizingAConstantImageKeepsItConstant() {
        let image = RGBImage(width: 13, height: 7, fill: (200, 17, 255))
        for (width, height) in [(1, 1), (5, 3), (40, 21), (13, 30), (2, 7)] {
            #expect(image.resizedBilinearAntialiased(width: width, height: height)
                == RGBImage(width: width, height: height, fill: (200, 17, 255)))
        }
    }

    @Test func toTensorIsChannelMajor() {
        // 2x1 image: pixel 0 = (255, 0, 51), pixel 1 = (0, 255, 102)
        let image = RGBImage(width: 2, height: 1, pixels: [255, 0, 51, 0, 255, 102])
        let tensor = image.toTensorCHW(mean: [0, 0, 0], std: [1, 1, 1])
        #expect(tensor == [1, 0, 0, 1, 0.2, 0.4])
        let normalized = image.toTensorCHW(mean: [0.5, 0.5, 0.5], std: [0.5, 0.25, 2])
        #expect(maximumDifference(normalized, [1, -1, -2, 2, -0.15, -0.05]) <= 1e-6)
    }
}

/// A small deterministic generator for test data (SplitMix64).
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func nextBits() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func next(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(nextBits() % UInt64(range.count))
    }
}
