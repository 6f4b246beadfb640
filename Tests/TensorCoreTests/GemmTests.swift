// matmul, gemm and linear over cblas_sgemm against triple loops.
import Testing
@testable import TensorCore

@Suite struct GemmTests {
    @Test(arguments: [(1, 1, 1), (7, 13, 5), (64, 3, 129), (2, 300, 17)],
          [(false, false), (true, false), (false, true), (true, true)])
    func matmulMatchesNaive(sizes: (Int, Int, Int), transposes: (Bool, Bool)) {
        let (m, n, k) = sizes
        let (transposeA, transposeB) = transposes
        let a = randomTensor(transposeA ? [k, m] : [m, k], seed: UInt64(m * 7 + k))
        let b = randomTensor(transposeB ? [n, k] : [k, n], seed: UInt64(n * 11 + k))
        expectClose(matmul(a, b, transposeA: transposeA, transposeB: transposeB),
                    Naive.matmul(a, b, transposeA: transposeA, transposeB: transposeB), .kernel, "matmul \(sizes)")
    }

    @Test func matmulWithEmptyInnerSizeIsZero() {
        let product = matmul(Tensor(zeros: [3, 0]), Tensor(zeros: [0, 4]))
        #expect(product == Tensor(zeros: [3, 4]))
    }

    @Test func gemmHonoursStridesAlphaAndBeta() {
        // A is the left 3×4 block of a 3×6 matrix; C accumulates into a 3×5 block of a 3×7 matrix.
        let a = randomTensor([3, 6], seed: 1), b = randomTensor([4, 5], seed: 2)
        var c = randomTensor([3, 7], seed: 3)
        let before = c
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    gemm(m: 3, n: 5, k: 4, alpha: 2, a: a.baseAddress!, lda: 6, b: b.baseAddress!, ldb: 5,
                         beta: 0.5, c: c.baseAddress!, ldc: 7)
                }
            }
        }
        let block = Naive.matmul(a.sliced(axis: 1, range: 0..<4), b)
        for i in 0..<3 {
            for j in 0..<7 {
                let expected = j < 5 ? 2 * block[i, j] + 0.5 * before[i, j] : before[i, j]
                #expect(abs(c[i, j] - expected) <= 1e-4, "C[\(i), \(j)]")
            }
        }
    }

    @Test(arguments: [[17], [3, 17], [2, 3, 17]], [true, false])
    func linearMatchesNaive(inputShape: [Int], withBias: Bool) {
        let input = randomTensor(inputShape, seed: 5)
        let weight = randomTensor([6, 17], seed: 6)
        let bias = withBias ? randomTensor([6], seed: 7) : nil
        let result = linear(input, weight: weight, bias: bias)
        #expect(result.shape == inputShape.dropLast() + [6])
        expectClose(result, Naive.linear(input, weight: weight, bias: bias), .kernel, "linear \(inputShape)")
    }

    @Test func singleThreadedRegionsGiveTheSameProducts() {
        let a = randomTensor([40, 70], seed: 8), b = randomTensor([70, 90], seed: 9)
        let threaded = matmul(a, b)
        let single = withSingleThreadedBLAS { withSingleThreadedBLAS { matmul(a, b) } }
        expectClose(single, threaded, .kernel, "single-threaded matmul")
    }

    @Test func benchmarkSgemmReportsAPositiveRate() {
        let rate = benchmarkSgemm(m: 8, n: 8, k: 8, runs: 2)
        #expect(rate > 0 && rate.isFinite)
    }
}
