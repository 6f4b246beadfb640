// Work splitting over the cores, and the thread count shared with OpenBLAS.
import CBLAS
import Dispatch
import Foundation

/// The number of threads detq's kernels and OpenBLAS use (`--threads`).
public enum Threads {
    nonisolated(unsafe) private static var current = ProcessInfo.processInfo.activeProcessorCount

    /// Threads used by elementwise loops and OpenBLAS.
    public static var count: Int { current }

    /// Sets the thread count for detq's loops and for OpenBLAS (at least 1).
    public static func set(_ n: Int) {
        current = max(1, n)
        openblas_set_num_threads(Int32(current))
    }
}

/// Splits `0..<count` into at most `Threads.count` contiguous chunks and runs `body(range)`
/// for each, concurrently. Small jobs (below `minimumPerChunk` items a chunk) run inline.
@inlinable
public func parallelChunks(_ count: Int, minimumPerChunk: Int = 1, _ body: (Range<Int>) -> Void) {
    guard count > 0 else { return }
    let chunks = max(1, min(Threads.count, count / max(1, minimumPerChunk)))
    if chunks == 1 {
        body(0..<count)
        return
    }
    withoutActuallyEscaping(body) { body in
        // Each chunk touches a disjoint range, so sharing the closure across threads is safe.
        let shared = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let start = count * chunk / chunks
            let end = count * (chunk + 1) / chunks
            if start < end { shared.value(start..<end) }
        }
    }
}

/// Carries a value the caller guarantees is used without data races across threads.
public struct UncheckedSendable<Value>: @unchecked Sendable {
    public let value: Value
    @inlinable public init(_ value: Value) { self.value = value }
}
