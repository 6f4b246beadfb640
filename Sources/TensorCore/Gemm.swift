// Matrix products over OpenBLAS's row-major cblas_sgemm: the only door to BLAS in detq.
import CBLAS
import Synchronization

/// The element types BLAS multiplies: Float32 (cblas_sgemm, the model's kernels) and Float64
/// (cblas_dgemm, exact integer sums for quantized execution).
public protocol BLASScalar: BinaryFloatingPoint {
    /// cblas_?gemm on row-major matrices, sizes already checked.
    static func blasGemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Self,
                         a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int, beta: Self,
                         c: UnsafeMutablePointer<Self>, ldc: Int)
}

extension Float: BLASScalar {
    public static func blasGemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                                a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
                                c: UnsafeMutablePointer<Float>, ldc: Int) {
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }
}

extension Double: BLASScalar {
    public static func blasGemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Double,
                                a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int, beta: Double,
                                c: UnsafeMutablePointer<Double>, ldc: Int) {
        cblas_dgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }
}

/// `C = alpha · op(A) · op(B) + beta · C` on row-major Float32 or Float64 matrices (cblas_sgemm,
/// cblas_dgemm).
///
/// `op(A)` is `[m, k]` and `op(B)` is `[k, n]`; `C` is `[m, n]`. `lda`, `ldb` and `ldc` are the
/// row strides, in elements, of A, B and C as stored (A is stored `[k, m]` when `transposeA`).
/// With `beta == 0`, C need not be initialized. Runs on `Threads.count` OpenBLAS threads,
/// or on one when called inside `withSingleThreadedBLAS`.
///
/// In Float64, products and sums of integers are exact as long as every partial sum stays below
/// 2^53 in magnitude: quantized execution relies on that (8-bit codes need `k` below 2^37).
public func gemm<Scalar: BLASScalar>(
    transposeA: Bool = false, transposeB: Bool = false,
    m: Int, n: Int, k: Int, alpha: Scalar = 1,
    a: UnsafePointer<Scalar>, lda: Int,
    b: UnsafePointer<Scalar>, ldb: Int,
    beta: Scalar = 0,
    c: UnsafeMutablePointer<Scalar>, ldc: Int
) {
    precondition(m >= 0 && n >= 0 && k >= 0, "gemm: negative size m \(m), n \(n), k \(k)")
    precondition(ldc >= max(1, n), "gemm: ldc \(ldc) < n \(n)")
    precondition(lda >= max(1, transposeA ? m : k), "gemm: lda \(lda) too small")
    precondition(ldb >= max(1, transposeB ? k : n), "gemm: ldb \(ldb) too small")
    guard m > 0, n > 0 else { return }
    if k == 0 {
        // An empty sum: C = beta · C (BLAS may skip the scaling).
        for row in 0..<m {
            let rowPointer = c + row * ldc
            for column in 0..<n { rowPointer[column] = beta == 0 ? 0 : beta * rowPointer[column] }
        }
        return
    }
    precondition(max(m, n, k, lda, ldb, ldc) <= Int(Int32.max), "gemm: sizes exceed 32-bit BLAS indices")
    Scalar.blasGemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                    a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
}

/// The matrix product of two 2-D tensors: `op(a)` `[m, k]` times `op(b)` `[k, n]` gives `[m, n]`.
/// With `transposeA`, `a` is stored `[k, m]`; with `transposeB`, `b` is stored `[n, k]`.
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
    precondition(a.rank == 2 && b.rank == 2, "matmul: needs 2-D tensors, got \(a.shape) and \(b.shape)")
    let m = transposeA ? a.shape[1] : a.shape[0]
    let k = transposeA ? a.shape[0] : a.shape[1]
    let kB = transposeB ? b.shape[1] : b.shape[0]
    let n = transposeB ? b.shape[0] : b.shape[1]
    precondition(k == kB, "matmul: inner sizes differ, \(a.shape)\(transposeA ? "ᵀ" : "") × \(b.shape)\(transposeB ? "ᵀ" : "")")
    // An empty operand makes an all-zero (or empty) product.
    guard a.count > 0, b.count > 0 else { return Tensor(zeros: [m, n]) }
    let lda = a.shape[1], ldb = b.shape[1]
    return Tensor(shape: [m, n]) { c in
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                     a: a.baseAddress!, lda: lda, b: b.baseAddress!, ldb: ldb,
                     c: c.baseAddress!, ldc: n)
            }
        }
    }
}

/// Runs `body` with OpenBLAS limited to one thread, for code that calls `gemm` from several
/// of its own threads at once (OpenBLAS serializes concurrent threaded calls). Nested and
/// concurrent uses are counted; the last one to leave restores `Threads.count`.
///
/// The limit is process-wide: a `gemm` that another thread runs meanwhile runs on one thread
/// too, and OpenBLAS's sums then differ from its threaded ones in the last bits. detq runs one
/// model at a time, so its results are reproducible run to run; two models run concurrently in
/// one process (as tests do) can differ by an ulp from their runs alone.
public func withSingleThreadedBLAS<R>(_ body: () throws -> R) rethrows -> R {
    singleThreadedRegions.withLock { active in
        if active == 0 { openblas_set_num_threads(1) }
        active += 1
    }
    defer {
        singleThreadedRegions.withLock { active in
            active -= 1
            if active == 0 { openblas_set_num_threads(Int32(Threads.count)) }
        }
    }
    return try body()
}

/// How many `withSingleThreadedBLAS` regions are running.
private let singleThreadedRegions = Mutex<Int>(0)

/// Measures cblas_sgemm on row-major `[m, k] × [k, n]` random matrices (one warm-up call,
/// then `runs` timed calls) and returns GFLOP/s, counting `2·m·n·k` operations a product.
public func benchmarkSgemm(m: Int, n: Int, k: Int, runs: Int) -> Double {
    precondition(m > 0 && n > 0 && k > 0 && runs > 0, "benchmarkSgemm: sizes and runs must be positive")
    var generator = SeededGenerator(seed: 1)
    let a = Tensor.randomUniform([m, k], low: -1, high: 1, generator: &generator)
    let b = Tensor.randomUniform([k, n], low: -1, high: 1, generator: &generator)
    var c = Tensor(zeros: [m, n])
    let seconds = a.withUnsafeBufferPointer { a in
        b.withUnsafeBufferPointer { b in
            c.withUnsafeMutableBufferPointer { c in
                let (a, b, c) = (a.baseAddress!, b.baseAddress!, c.baseAddress!)
                gemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: c, ldc: n)
                return measureSeconds {
                    for _ in 0..<runs { gemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: c, ldc: n) }
                }
            }
        }
    }
    return 2.0 * Double(m) * Double(n) * Double(k) * Double(runs) / seconds / 1e9
}

/// Wall-clock seconds taken by `body`.
public func measureSeconds(_ body: () -> Void) -> Double {
    let clock = ContinuousClock()
    let elapsed = clock.measure(body)
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
}
