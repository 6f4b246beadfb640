// Double-precision matrix products over OpenBLAS's cblas_dgemm: exact integer sums for quantized execution.
import CBLAS

/// `C = op(A) · op(B) + beta · C` on row-major Float64 matrices (cblas_dgemm).
///
/// Same contract as the Float32 `gemm`: `op(A)` is `[m, k]`, `op(B)` is `[k, n]`, `C` is
/// `[m, n]`, and `lda`, `ldb`, `ldc` are the row strides as stored. With `beta == 0`, C need
/// not be initialized.
///
/// Products and sums of integers are exact as long as every partial sum stays below 2^53 in
/// magnitude: quantized execution relies on that (8-bit codes need `k` below 2^37).
public func gemm(
    transposeA: Bool = false, transposeB: Bool = false,
    m: Int, n: Int, k: Int,
    a: UnsafePointer<Double>, lda: Int,
    b: UnsafePointer<Double>, ldb: Int,
    beta: Double = 0,
    c: UnsafeMutablePointer<Double>, ldc: Int
) {
    precondition(m >= 0 && n >= 0 && k >= 0, "gemm(Double): negative size m \(m), n \(n), k \(k)")
    precondition(ldc >= max(1, n), "gemm(Double): ldc \(ldc) < n \(n)")
    precondition(lda >= max(1, transposeA ? m : k), "gemm(Double): lda \(lda) too small")
    precondition(ldb >= max(1, transposeB ? k : n), "gemm(Double): ldb \(ldb) too small")
    guard m > 0, n > 0 else { return }
    if k == 0 {
        // An empty sum: C = beta · C (BLAS may skip the scaling).
        for row in 0..<m {
            let rowPointer = c + row * ldc
            for column in 0..<n { rowPointer[column] = beta == 0 ? 0 : beta * rowPointer[column] }
        }
        return
    }
    precondition(max(m, n, k, lda, ldb, ldc) <= Int(Int32.max), "gemm(Double): sizes exceed 32-bit BLAS indices")
    cblas_dgemm(CblasRowMajor,
                transposeA ? CblasTrans : CblasNoTrans,
                transposeB ? CblasTrans : CblasNoTrans,
                blasint(m), blasint(n), blasint(k), 1,
                a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
}
