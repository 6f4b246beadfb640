// Work sharing over threads for the evaluator (Dispatch's concurrentPerform with a shared task counter).
import Dispatch
import Synchronization

/// Runs `body(task)` for every task in `0..<count` on up to `threads` threads; each thread takes
/// the next task from a shared counter, so uneven tasks balance. Tasks must touch disjoint data.
func forEachTask(_ count: Int, threads: Int, _ body: (Int) -> Void) {
    let workers = min(max(1, threads), count)
    if workers <= 1 {
        for task in 0..<count { body(task) }
        return
    }
    let next = Atomic<Int>(0)
    withoutActuallyEscaping(body) { body in
        let shared = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                let task = next.wrappingAdd(1, ordering: .relaxed).oldValue
                if task >= count { break }
                shared.value(task)
            }
        }
    }
}

/// Carries a value across threads where the caller guarantees there is no data race
/// (each task writes its own slice of a buffer).
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// Maps ids (image or category ids, any Int) to dense indices: a table when the ids span a
/// small range, else a dictionary.
struct IdLookup {
    private let minimum: Int
    private let table: [Int32]
    private let dictionary: [Int: Int32]

    /// `ids` must be distinct; `index(ids[i]) == i`.
    init(_ ids: [Int]) {
        let low = ids.min() ?? 0
        let high = ids.max() ?? 0
        let span = high.subtractingReportingOverflow(low)
        if !span.overflow, span.partialValue < max(1 << 16, 8 * ids.count) {
            var table = [Int32](repeating: -1, count: span.partialValue + 1)
            for (index, id) in ids.enumerated() { table[id - low] = Int32(index) }
            self.minimum = low
            self.table = table
            self.dictionary = [:]
        } else {
            var dictionary: [Int: Int32] = [:]
            dictionary.reserveCapacity(ids.count)
            for (index, id) in ids.enumerated() { dictionary[id] = Int32(index) }
            self.minimum = 0
            self.table = []
            self.dictionary = dictionary
        }
    }

    /// The index of `id`, or -1 when it is not one of the ids.
    @inline(__always)
    func index(_ id: Int) -> Int {
        if table.isEmpty { return Int(dictionary[id] ?? -1) }
        let offset = id.subtractingReportingOverflow(minimum)
        guard !offset.overflow, offset.partialValue >= 0, offset.partialValue < table.count else { return -1 }
        return Int(table[offset.partialValue])
    }
}
