// Deterministic top-k and stable argsort; NaN ranks above every number, as in torch.sort/topk.

/// Whether `(a, i)` comes before `(b, j)` in descending order: larger value first (NaN
/// largest), equal values by lower index.
@inline(__always)
private func precedesDescending(_ a: Float, _ i: Int, _ b: Float, _ j: Int) -> Bool {
    if a.isNaN || b.isNaN {
        if a.isNaN != b.isNaN { return a.isNaN }
        return i < j
    }
    return a != b ? a > b : i < j
}

/// Whether `(a, i)` comes before `(b, j)` in ascending order: smaller value first (NaN
/// last), equal values by lower index.
@inline(__always)
private func precedesAscending(_ a: Float, _ i: Int, _ b: Float, _ j: Int) -> Bool {
    if a.isNaN || b.isNaN {
        if a.isNaN != b.isNaN { return b.isNaN }
        return i < j
    }
    return a != b ? a < b : i < j
}

/// The indices that sort `values`, keeping equal values in their original order.
/// NaN sorts as the largest value (last ascending, first descending).
public func stableArgsort(_ values: [Float], descending: Bool) -> [Int] {
    var order = Array(values.indices)
    values.withUnsafeBufferPointer { values in
        // Ties broken by index make the order total, so any sort is stable.
        if descending {
            order.sort { precedesDescending(values[$0], $0, values[$1], $1) }
        } else {
            order.sort { precedesAscending(values[$0], $0, values[$1], $1) }
        }
    }
    return order
}

/// The `k` largest values, in descending order, with their indices; equal values keep the
/// lower index first and NaN counts as largest. `k` is in `0...values.count`.
public func topK(_ values: [Float], k: Int) -> (values: [Float], indices: [Int]) {
    precondition(k >= 0 && k <= values.count, "topK: k \(k) out of 0...\(values.count)")
    guard k > 0 else { return ([], []) }
    if k * 8 >= values.count {
        let order = Array(stableArgsort(values, descending: true).prefix(k))
        return (order.map { values[$0] }, order)
    }
    // A heap of the best k so far whose root is the worst of them.
    var heap = [Int]()
    heap.reserveCapacity(k)
    values.withUnsafeBufferPointer { values in
        func worse(_ i: Int, _ j: Int) -> Bool { precedesDescending(values[j], j, values[i], i) }
        func siftDown(_ start: Int) {
            var parent = start
            while true {
                let left = 2 * parent + 1, right = left + 1
                var worst = parent
                if left < heap.count && worse(heap[left], heap[worst]) { worst = left }
                if right < heap.count && worse(heap[right], heap[worst]) { worst = right }
                if worst == parent { return }
                heap.swapAt(parent, worst)
                parent = worst
            }
        }
        for index in 0..<k {
            heap.append(index)
            var child = heap.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard worse(heap[child], heap[parent]) else { break }
                heap.swapAt(child, parent)
                child = parent
            }
        }
        for index in k..<values.count where worse(heap[0], index) {
            heap[0] = index
            siftDown(0)
        }
        heap.sort { precedesDescending(values[$0], $0, values[$1], $1) }
    }
    return (heap.map { values[$0] }, heap)
}
