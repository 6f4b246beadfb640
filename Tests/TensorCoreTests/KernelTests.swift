// Pooling, resizing, activations, normalization, broadcasting, layout and sorting against
// their naive twins on random and edge shapes.
import Testing
@testable import TensorCore

struct PoolCase: CustomTestStringConvertible, Sendable {
    var shape: [Int]
    var kernel: Size2
    var stride: Size2
    var padding: Size2 = 0
    var dilation: Size2 = 1
    var ceilMode = false
    var testDescription: String { "\(shape) k\(kernel) s\(stride) p\(padding) d\(dilation) ceil \(ceilMode)" }
}

@Suite struct PoolingTests {
    static let cases: [PoolCase] = [
        PoolCase(shape: [1, 2, 5, 5], kernel: 2, stride: 2, padding: 1, ceilMode: true),
        PoolCase(shape: [1, 2, 5, 5], kernel: 2, stride: 2, padding: 1),
        PoolCase(shape: [2, 3, 19, 19], kernel: 2, stride: 2, ceilMode: true),
        PoolCase(shape: [1, 3, 112, 112], kernel: 3, stride: 2, padding: 1),
        PoolCase(shape: [1, 2, 7, 9], kernel: 3, stride: 2, ceilMode: true),
        PoolCase(shape: [1, 2, 8, 11], kernel: 3, stride: 2, padding: 1, dilation: 2, ceilMode: true),
        PoolCase(shape: [1, 1, 6, 6], kernel: 3, stride: 3, padding: 1, ceilMode: true),
        PoolCase(shape: [1, 1, 1, 1], kernel: 1, stride: 1, ceilMode: true),
        PoolCase(shape: [1, 1, 2, 2], kernel: 3, stride: 2, padding: 1, ceilMode: true),
        PoolCase(shape: [1, 2, 4, 9], kernel: Size2(2, 3), stride: Size2(1, 2), padding: Size2(1, 1), ceilMode: true),
    ]

    @Test(arguments: cases)
    func maxPoolMatchesNaive(_ testCase: PoolCase) {
        let x = randomTensor(testCase.shape, seed: UInt64(testCase.shape.reduce(0, +)))
        let fast = maxPool2d(x, kernelSize: testCase.kernel, stride: testCase.stride, padding: testCase.padding,
                             dilation: testCase.dilation, ceilMode: testCase.ceilMode)
        let naive = Naive.maxPool2d(x, kernelSize: testCase.kernel, stride: testCase.stride, padding: testCase.padding,
                                    dilation: testCase.dilation, ceilMode: testCase.ceilMode)
        expectClose(fast, naive, .exact, testCase.testDescription)
    }

    @Test func ceilModeDropsAWindowThatStartsInThePadding() {
        // 5 wide, kernel 2, stride 2, padding 1: ceil((5+2−2)/2)+1 = 4, but window 3 would start
        // at 6 − 1 = 5, past the input; torch keeps 3.
        #expect(poolingOutputSize(5, kernel: 2, stride: 2, padding: 1, dilation: 1, ceilMode: true) == 3)
        #expect(poolingOutputSize(19, kernel: 2, stride: 2, padding: 0, dilation: 1, ceilMode: true) == 10)
        #expect(poolingOutputSize(19, kernel: 2, stride: 2, padding: 0, dilation: 1, ceilMode: false) == 9)
        #expect(poolingOutputSize(112, kernel: 3, stride: 2, padding: 1, dilation: 1, ceilMode: false) == 56)
    }

    @Test func maxPoolPropagatesNaN() {
        var x = randomTensor([1, 1, 4, 4], seed: 3)
        x[0, 0, 1, 2] = .nan
        let pooled = maxPool2d(x, kernelSize: 2, stride: 2)
        #expect(pooled[0, 0, 0, 1].isNaN)
        #expect(!pooled[0, 0, 0, 0].isNaN && !pooled[0, 0, 1, 1].isNaN)
    }

    @Test(arguments: [([1, 3, 7, 10], Size2(3, 4)), ([2, 2, 5, 5], Size2(1, 1)), ([1, 2, 3, 3], Size2(5, 7)),
                      ([1, 1, 7, 7], Size2(7, 7)), ([1, 4, 13, 11], Size2(6, 6)), ([1, 1, 1, 1], Size2(2, 3))])
    func adaptiveAveragePoolMatchesNaive(shape: [Int], size: Size2) {
        let x = randomTensor(shape, seed: 4)
        expectClose(adaptiveAvgPool2d(x, outputSize: size), Naive.adaptiveAvgPool2d(x, outputSize: size), .kernel,
                    "\(shape) → \(size)")
    }
}

@Suite struct ResizeTests {
    static let sizes: [([Int], Size2)] = [
        ([1, 2, 5, 7], Size2(8, 11)), ([1, 2, 5, 7], Size2(3, 4)), ([1, 2, 5, 7], Size2(10, 14)),
        ([2, 1, 5, 7], Size2(5, 7)), ([1, 3, 13, 19], Size2(25, 38)), ([1, 1, 1, 1], Size2(4, 3)),
        ([1, 1, 6, 4], Size2(1, 1)), ([1, 2, 3, 7], Size2(29, 3)),
    ]

    @Test(arguments: sizes)
    func nearestMatchesNaive(shape: [Int], size: Size2) {
        let x = randomTensor(shape, seed: 5)
        expectClose(upsampleNearest(x, size: size), Naive.upsampleNearest(x, size: size), .exact, "\(shape) → \(size)")
    }

    @Test(arguments: sizes)
    func bilinearBySizeMatchesNaive(shape: [Int], size: Size2) {
        let x = randomTensor(shape, seed: 6)
        let naive = Naive.resizeBilinear(x, size: size, heightScale: Float(shape[2]) / Float(size.h),
                                         widthScale: Float(shape[3]) / Float(size.w))
        expectClose(resizeBilinear(x, size: size), naive, .kernel, "\(shape) → \(size)")
    }

    @Test(arguments: [1.7, 0.63, 2.5, 1.0 / 3.0], [true, false])
    func bilinearByScaleMatchesNaive(scale: Double, recompute: Bool) {
        let x = randomTensor([1, 2, 11, 7], seed: 7)
        let size = Size2(Int((11 * scale).rounded(.down)), Int((7 * scale).rounded(.down)))
        let heightScale = recompute ? Float(11) / Float(size.h) : Float(1 / scale)
        let widthScale = recompute ? Float(7) / Float(size.w) : Float(1 / scale)
        let naive = Naive.resizeBilinear(x, size: size, heightScale: heightScale, widthScale: widthScale)
        expectClose(resizeBilinear(x, scaleFactor: scale, recomputeScaleFactor: recompute), naive, .kernel,
                    "scale \(scale) recompute \(recompute)")
    }

    @Test func bilinearKeepsConstantsAndEqualSizes() {
        let constant = Tensor(repeating: 3.25, shape: [1, 2, 5, 6])
        expectClose(resizeBilinear(constant, size: Size2(9, 4)), Tensor(repeating: 3.25, shape: [1, 2, 9, 4]), .golden,
                    "constant image")
        let x = randomTensor([1, 2, 5, 6], seed: 8)
        expectClose(resizeBilinear(x, size: Size2(5, 6)), x, .exact, "same size")
    }
}

@Suite struct ElementwiseTests {
    static let values = randomTensor([3, 5, 7, 11], seed: 9, std: 4)

    @Test func activationsMatchNaive() {
        let x = Self.values
        expectClose(relu(x), Naive.relu(x), .exact, "relu")
        expectClose(relu6(x), Naive.relu6(x), .exact, "relu6")
        expectClose(hardswish(x), Naive.hardswish(x), .golden, "hardswish")
        expectClose(hardsigmoid(x), Naive.hardsigmoid(x), .golden, "hardsigmoid")
        expectClose(sigmoid(x), Naive.sigmoid(x), .golden, "sigmoid")
    }

    @Test func largeTensorsSplitOverThreadsAlike() {
        // Over the elementwise chunk size, so the work is split.
        let x = randomTensor([4, 64, 32, 32], seed: 10, std: 4)
        expectClose(hardswish(x), Naive.hardswish(x), .golden, "hardswish, large")
        let y = randomTensor([4, 64, 1, 1], seed: 11)
        expectClose(multiply(x, y), Naive.broadcasted(x, y, *), .exact, "SE multiply, large")
    }

    @Test(arguments: [0, 1, 2, 3, -1])
    func softmaxMatchesNaive(axis: Int) {
        let x = Self.values
        let result = softmax(x, axis: axis)
        expectClose(result, Naive.softmax(x, axis: axis), .golden, "softmax axis \(axis)")
    }

    @Test func softmaxIsStableForLargeLogits() {
        let x = Tensor(shape: [1, 3], scalars: [1000, 1001, 1002])
        let result = softmax(x, axis: 1)
        #expect(result.scalars.allSatisfy { $0.isFinite })
        expectClose(result, Naive.softmax(Tensor(shape: [1, 3], scalars: [0, 1, 2]), axis: 1), .golden, "shifted logits")
    }

    @Test(arguments: [[3, 5, 7, 11], [3, 5, 1, 1], [3, 1, 1, 1], [1, 1, 1, 1], [5, 1, 11], [11], [], [1, 5, 7, 1]])
    func broadcastingMatchesNaive(otherShape: [Int]) {
        let a = Self.values
        let b = randomTensor(otherShape, seed: 12)
        expectClose(add(a, b), Naive.broadcasted(a, b, +), .exact, "add \(otherShape)")
        expectClose(multiply(a, b), Naive.broadcasted(a, b, *), .exact, "multiply \(otherShape)")
        expectClose(add(b, a), Naive.broadcasted(b, a, +), .exact, "add, broadcast first \(otherShape)")
    }

    @Test func broadcastingStretchesBothSides() {
        let a = randomTensor([4, 1, 3], seed: 13), b = randomTensor([2, 1], seed: 14)
        let sum = add(a, b)
        #expect(sum.shape == [4, 2, 3])
        expectClose(sum, Naive.broadcasted(a, b, +), .exact, "[4,1,3] + [2,1]")
        #expect(broadcastShape([4, 2, 3], [5, 3]) == nil)
    }
}

@Suite struct NormalizationTests {
    @Test(arguments: [Float(1e-5), 0], [BatchNormRounding.frozen, .fused])
    func batchNormMatchesNaive(eps: Float, rounding: BatchNormRounding) {
        let x = randomTensor([2, 6, 5, 7], seed: 15, std: 3)
        let weight = randomTensor([6], seed: 16), bias = randomTensor([6], seed: 17), mean = randomTensor([6], seed: 18)
        let variance = randomTensor([6], seed: 19).mapped { $0 * $0 + 0.05 }
        expectClose(batchNorm(x, weight: weight, bias: bias, runningMean: mean, runningVar: variance, eps: eps,
                              rounding: rounding),
                    Naive.batchNorm(x, weight: weight, bias: bias, runningMean: mean, runningVar: variance, eps: eps),
                    .kernel, "batchNorm eps \(eps)")
    }

    @Test(arguments: [[2, 5, 3, 4], [1, 512, 38, 38], [3, 7]])
    func l2NormalizeMatchesNaive(shape: [Int]) {
        var x = randomTensor(shape, seed: 20)
        // An all-zero position: the norm is clamped to eps and the output is zero.
        for c in 0..<shape[1] { x.scalars[c * shape[2...].reduce(1, *)] = 0 }
        let scale = randomTensor([shape[1]], seed: 21).mapped { abs($0) * 20 }
        expectClose(l2Normalize(x, scale: scale), Naive.l2Normalize(x, scale: scale), .kernel, "l2Normalize \(shape)")
    }
}

@Suite struct LayoutTests {
    @Test(arguments: [[0, 2, 3, 1], [3, 2, 1, 0], [1, 0, 2, 3], [0, 1, 3, 2], [0, 1, 2, 3]])
    func permutedMatchesNaive(axes: [Int]) {
        let x = randomTensor([2, 3, 4, 5], seed: 22)
        expectClose(x.permuted(axes), Naive.permuted(x, axes), .exact, "permuted \(axes)")
    }

    @Test(arguments: [([1, 3, 1, 5], [3, 2, 1, 0]), ([1, 3, 1, 5], [0, 2, 3, 1]), ([2, 37, 45], [0, 2, 1]),
                      ([70, 33], [1, 0]), ([2, 3, 4, 5], [2, 3, 0, 1]), ([3, 1, 1], [1, 2, 0]), ([1, 1], [1, 0]),
                      ([2, 3, 4, 5, 6], [0, 3, 4, 1, 2])])
    func permutedMergesAxes(shape: [Int], axes: [Int]) {
        let x = randomTensor(shape, seed: 27)
        expectClose(x.permuted(axes), Naive.permuted(x, axes), .exact, "permuted \(shape) by \(axes)")
    }

    @Test func largePermuteSplitsOverThreads() {
        // The detection-head permute (N, A·K, H, W) → (N, H, W, A·K).
        let x = randomTensor([1, 36, 50, 76], seed: 23)
        expectClose(x.permuted([0, 2, 3, 1]), Naive.permuted(x, [0, 2, 3, 1]), .exact, "head permute")
    }

    @Test func transposedSwapsAxes() {
        let x = randomTensor([3, 7], seed: 24)
        let t = x.transposed()
        #expect(t.shape == [7, 3])
        #expect((0..<3).allSatisfy { i in (0..<7).allSatisfy { j in t[j, i] == x[i, j] } })
    }

    @Test(arguments: [(0, 1..<2), (1, 0..<3), (2, 2..<4), (3, 0..<0), (-1, 4..<5)])
    func slicedMatchesIndexing(axis: Int, range: Range<Int>) {
        let x = randomTensor([2, 3, 4, 5], seed: 25)
        let slice = x.sliced(axis: axis, range: range)
        let resolved = axis < 0 ? axis + 4 : axis
        var expectedShape = x.shape
        expectedShape[resolved] = range.count
        #expect(slice.shape == expectedShape)
        let strides = slice.strides
        for flat in 0..<slice.count {
            var index = (0..<4).map { (flat / strides[$0]) % expectedShape[$0] }
            index[resolved] += range.lowerBound
            #expect(slice.scalars[flat] == x[index[0], index[1], index[2], index[3]])
        }
    }

    @Test(arguments: [0, 1, 2, -1])
    func concatMatchesNaive(axis: Int) {
        let resolved = axis < 0 ? axis + 3 : axis
        let parts = [2, 1, 3].enumerated().map { offset, extent -> Tensor in
            var shape = [2, 3, 4]
            shape[resolved] = extent
            return randomTensor(shape, seed: UInt64(26 + offset))
        }
        expectClose(concat(parts, axis: axis), Naive.concat(parts, axis: resolved), .exact, "concat axis \(axis)")
    }
}

@Suite struct SortingTests {
    /// Values with many ties and a NaN.
    static let values: [Float] = {
        var generator = SeededGenerator(seed: 30)
        var values = (0..<200).map { _ in Float(Int(generator.nextUniform() * 20)) / 4 }
        values[17] = .nan
        values[150] = .nan
        return values
    }()

    @Test(arguments: [true, false])
    func stableArgsortMatchesInsertionSort(descending: Bool) {
        #expect(stableArgsort(Self.values, descending: descending) == Naive.stableArgsort(Self.values, descending: descending))
    }

    @Test(arguments: [0, 1, 5, 24, 25, 100, 200])
    func topKMatchesSortedPrefix(k: Int) {
        let (values, indices) = topK(Self.values, k: k)
        let expected = Naive.topK(Self.values, k: k)
        #expect(indices == expected.indices)
        #expect(zip(values, expected.values).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) })
    }

    @Test func topKKeepsLowerIndexFirstOnTies() {
        let (values, indices) = topK([1, 3, 3, 2, 3], k: 2)
        #expect(values == [3, 3] && indices == [1, 2])
    }
}
