// Work splitting over the cores, and the thread count shared with OpenBLAS.
import CBLAS
import Dispatch
import Foundation
import Synchronization

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

/// Runs `body(&scratch, job)` for every job in `0..<count` on up to `Threads.count` workers
/// that take the next job as they finish one, so that a slow or preempted worker delays little.
/// Each worker calls `setUp(worker)` (worker in `0..<workers`) once, before its first job, and
/// passes the result to every job it runs: per-worker scratch space. With fewer than
/// `minimumJobsPerWorker` jobs a worker, fewer workers run (one runs inline, as `parallelChunks`).
public func parallelJobs<Scratch>(_ count: Int, minimumJobsPerWorker: Int = 1, setUp: (Int) -> Scratch,
                                  _ body: (inout Scratch, Int) -> Void) {
    guard count > 0 else { return }
    let workers = max(1, min(Threads.count, count / max(1, minimumJobsPerWorker)))
    if workers == 1 {
        var scratch = setUp(0)
        for job in 0..<count { body(&scratch, job) }
        return
    }
    let next = Atomic<Int>(0)
    withoutActuallyEscaping(setUp) { setUp in
        withoutActuallyEscaping(body) { body in
            // Workers only share the job counter; each job touches its own outputs.
            let shared = UncheckedSendable((setUp, body))
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                let (setUp, body) = shared.value
                var scratch = setUp(worker)
                while true {
                    let job = next.wrappingAdd(1, ordering: .relaxed).oldValue
                    if job >= count { break }
                    body(&scratch, job)
                }
            }
        }
    }
}

/// Carries a value the caller guarantees is used without data races across threads.
public struct UncheckedSendable<Value>: @unchecked Sendable {
    public let value: Value
    @inlinable public init(_ value: Value) { self.value = value }
}
