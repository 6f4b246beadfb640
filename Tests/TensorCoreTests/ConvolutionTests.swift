// conv2d's im2col, 1×1 and depthwise paths against the direct loop of Naive.conv2d.
import Testing
@testable import TensorCore

struct ConvolutionCase: CustomTestStringConvertible, Sendable {
    var batch = 1
    var inputChannels: Int
    var outputChannels: Int
    var height: Int
    var width: Int
    var kernel: Size2
    var stride: Size2 = 1
    var padding: Size2 = 0
    var dilation: Size2 = 1
    var groups = 1
    var bias = true

    var testDescription: String {
        "N\(batch) C\(inputChannels)→\(outputChannels) \(height)×\(width) k\(kernel) s\(stride) p\(padding) d\(dilation) g\(groups)\(bias ? "" : " no bias")"
    }

    static let all: [ConvolutionCase] = [
        .init(inputChannels: 3, outputChannels: 5, height: 9, width: 11, kernel: 3, padding: 1),
        .init(batch: 2, inputChannels: 4, outputChannels: 6, height: 10, width: 7, kernel: 3, stride: 2, padding: 1),
        .init(inputChannels: 8, outputChannels: 8, height: 9, width: 9, kernel: 3, padding: 2, dilation: 2, groups: 4),
        .init(inputChannels: 4, outputChannels: 6, height: 8, width: 8, kernel: 3, stride: 2, padding: 1, groups: 2),
        .init(inputChannels: 3, outputChannels: 4, height: 7, width: 8, kernel: 3, padding: 3, bias: false),
        .init(inputChannels: 5, outputChannels: 3, height: 6, width: 6, kernel: Size2(1, 3), stride: Size2(2, 1), padding: Size2(0, 1)),
        .init(inputChannels: 3, outputChannels: 4, height: 20, width: 3, kernel: 7, stride: 2, padding: 3),
        .init(inputChannels: 3, outputChannels: 4, height: 1, width: 1, kernel: 3, padding: 1),
        .init(inputChannels: 3, outputChannels: 4, height: 1, width: 1, kernel: 1),
        .init(inputChannels: 1, outputChannels: 3, height: 6, width: 5, kernel: 3, padding: 1),
        .init(batch: 3, inputChannels: 16, outputChannels: 8, height: 40, width: 37, kernel: 3, padding: 1),
        // 1×1 paths: pointwise (stride 1), strided (im2col), grouped.
        .init(inputChannels: 5, outputChannels: 7, height: 6, width: 8, kernel: 1),
        .init(batch: 2, inputChannels: 5, outputChannels: 7, height: 6, width: 8, kernel: 1, bias: false),
        .init(inputChannels: 4, outputChannels: 6, height: 7, width: 9, kernel: 1, stride: 2),
        .init(inputChannels: 8, outputChannels: 4, height: 5, width: 6, kernel: 1, groups: 4),
        // Depthwise, with and without a channel multiplier.
        .init(inputChannels: 6, outputChannels: 6, height: 13, width: 12, kernel: 3, stride: 2, padding: 1, groups: 6),
        .init(batch: 2, inputChannels: 5, outputChannels: 5, height: 7, width: 7, kernel: 5, padding: 2, groups: 5),
        .init(inputChannels: 6, outputChannels: 12, height: 10, width: 10, kernel: 3, padding: 1, dilation: 2, groups: 6),
        .init(inputChannels: 4, outputChannels: 4, height: 3, width: 3, kernel: 3, groups: 4, bias: false),
        .init(inputChannels: 4, outputChannels: 4, height: 1, width: 1, kernel: 3, padding: 1, groups: 4),
        .init(inputChannels: 3, outputChannels: 3, height: 9, width: 4, kernel: Size2(3, 1), stride: Size2(1, 2),
              padding: Size2(1, 0), groups: 3),
    ]

    var geometry: ConvolutionGeometry {
        ConvolutionGeometry(input: [batch, inputChannels, height, width],
                            weight: [outputChannels, inputChannels / groups, kernel.h, kernel.w],
                            stride: stride, padding: padding, dilation: dilation, groups: groups)
    }

    /// Every route this geometry allows: im2col always, the direct paths where they apply,
    /// with whole-image and tiled plans (tiles of 1 and 7 columns cut output rows).
    var routes: [ConvolutionRoute] {
        let plans: [Im2colPlan] = [.wholeImage, .tiled(columns: 1), .tiled(columns: 7), .tiled(columns: 10_000)]
        var routes = plans.map(ConvolutionRoute.im2col)
        if geometry.isPointwise { routes += plans.map(ConvolutionRoute.pointwise) }
        if geometry.isDepthwise { routes.append(.depthwise) }
        return routes
    }

    func run(route: ConvolutionRoute?) -> (fast: Tensor, naive: Tensor) {
        let seed = UInt64(inputChannels * 1000 + outputChannels * 100 + height * 10 + width)
        let input = randomTensor([batch, inputChannels, height, width], seed: seed)
        let weight = randomTensor([outputChannels, inputChannels / groups, kernel.h, kernel.w], seed: seed + 1)
        let biasTensor = bias ? randomTensor([outputChannels], seed: seed + 2) : nil
        let fast = route.map {
            convolved(input, weight: weight, bias: biasTensor, stride: stride, padding: padding, dilation: dilation,
                      groups: groups, route: $0)
        } ?? conv2d(input, weight: weight, bias: biasTensor, stride: stride, padding: padding, dilation: dilation,
                    groups: groups)
        let naive = Naive.conv2d(input, weight: weight, bias: biasTensor, stride: stride, padding: padding,
                                 dilation: dilation, groups: groups)
        return (fast, naive)
    }
}

@Suite struct ConvolutionTests {
    @Test("conv2d matches the direct loop", arguments: ConvolutionCase.all)
    func matchesNaive(_ testCase: ConvolutionCase) {
        let (fast, naive) = testCase.run(route: nil)
        expectClose(fast, naive, .kernel, testCase.testDescription)
    }

    @Test("every route matches the direct loop", arguments: ConvolutionCase.all)
    func everyRouteMatchesNaive(_ testCase: ConvolutionCase) {
        for route in testCase.routes {
            let (fast, naive) = testCase.run(route: route)
            expectClose(fast, naive, .kernel, "\(testCase.testDescription) \(route)")
        }
    }

    @Test func geometryPicksTheFastPaths() {
        func route(_ input: [Int], _ weight: [Int], stride: Size2 = 1, padding: Size2 = 0, groups: Int = 1) -> ConvolutionRoute {
            let geometry = ConvolutionGeometry(input: input, weight: weight, stride: stride, padding: padding, dilation: 1,
                                               groups: groups)
            return ConvolutionRoute.choose(for: geometry, threads: 1)
        }
        func isIm2col(_ route: ConvolutionRoute) -> Bool {
            if case .im2col = route { return true }
            return false
        }
        func isPointwise(_ route: ConvolutionRoute) -> Bool {
            if case .pointwise = route { return true }
            return false
        }
        #expect(route([1, 8, 5, 5], [8, 1, 3, 3], padding: 1, groups: 8) == .depthwise)
        #expect(route([1, 8, 5, 5], [16, 1, 3, 3], padding: 1, groups: 8) == .depthwise)
        #expect(isIm2col(route([1, 8, 5, 5], [8, 2, 3, 3], padding: 1, groups: 4)))
        #expect(isIm2col(route([1, 1, 5, 5], [4, 1, 3, 3])))
        #expect(isPointwise(route([1, 8, 5, 5], [4, 8, 1, 1])))
        #expect(isIm2col(route([1, 8, 5, 5], [4, 8, 1, 1], stride: 2)))
        #expect(isIm2col(route([1, 8, 5, 5], [4, 8, 1, 1], padding: 1)))
    }

    @Test func im2colPlanSharesTilesEvenly() {
        // ResNet-50 layer1 3×3 on two threads: tiles of at least 128 columns, an even count.
        let large = ConvolutionGeometry(input: [1, 64, 56, 56], weight: [64, 64, 3, 3], stride: 1, padding: 1,
                                        dilation: 1, groups: 1)
        guard case .tiled(let columns) = Im2colPlan.choose(for: large, threads: 2) else {
            Issue.record("expected tiles for a 56×56 plane")
            return
        }
        let tiles = (large.outputPlane + columns - 1) / columns
        #expect(columns >= Im2colPlan.minimumTileColumns && tiles % 2 == 0)
        // A 7×7 plane cannot give two threads thick tiles; one thread takes it whole as one tile.
        let small = ConvolutionGeometry(input: [1, 512, 7, 7], weight: [512, 512, 3, 3], stride: 1, padding: 1,
                                        dilation: 1, groups: 1)
        #expect(Im2colPlan.choose(for: small, threads: 2) == .wholeImage)
        #expect(Im2colPlan.choose(for: small, threads: 1) == .tiled(columns: 49))
    }

    @Test func outputSizeFollowsTorch() {
        // ⌊(in + 2p − d(k−1) − 1)/s⌋ + 1
        #expect(convolutionOutputSize(224, kernel: 7, stride: 2, padding: 3, dilation: 1) == 112)
        #expect(convolutionOutputSize(7, kernel: 3, stride: 2, padding: 0, dilation: 1) == 3)
        #expect(convolutionOutputSize(9, kernel: 3, stride: 1, padding: 2, dilation: 2) == 9)
        #expect(convolutionOutputSize(2, kernel: 5, stride: 1, padding: 0, dilation: 1) == 0)
    }

    @Test(arguments: [true, false])
    func foldedBatchNormEqualsConvThenBatchNorm(convHasBias: Bool) {
        let input = randomTensor([2, 4, 7, 6], seed: 11)
        let weight = randomTensor([5, 4, 3, 3], seed: 12)
        let convBias = convHasBias ? randomTensor([5], seed: 13) : nil
        let gamma = randomTensor([5], seed: 14), beta = randomTensor([5], seed: 15), mean = randomTensor([5], seed: 16)
        let variance = randomTensor([5], seed: 17).mapped { $0 * $0 + 0.1 }
        let folded = foldBatchNorm(convWeight: weight, convBias: convBias, weight: gamma, bias: beta,
                                   runningMean: mean, runningVar: variance, eps: 1e-5)
        #expect(folded.weight.shape == weight.shape && folded.bias.shape == [5])
        let fused = conv2d(input, weight: folded.weight, bias: folded.bias, padding: 1)
        let separate = batchNorm(conv2d(input, weight: weight, bias: convBias, padding: 1), weight: gamma, bias: beta,
                                 runningMean: mean, runningVar: variance, eps: 1e-5)
        expectClose(fused, separate, .kernel, "folded conv")
    }
}
