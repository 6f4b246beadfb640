// pycocotools' computeIoU for every (category, image): detections sorted and cut to 100, then box IoU.

/// Index lists grouped by cell: the items of cell `c` are `items[start[c]..<start[c + 1]]`.
struct CellLists: Sendable {
    let start: [Int]
    let items: [Int32]

    @inline(__always)
    func items(_ cell: Int) -> ArraySlice<Int32> { items[start[cell]..<start[cell + 1]] }

    @inline(__always)
    func count(_ cell: Int) -> Int { start[cell + 1] - start[cell] }

    /// Groups `0..<count` by `key(i)` (in `0..<groups`, or negative to drop `i`), keeping the
    /// order of `i` within each group (a stable counting sort).
    static func stableGrouped(count: Int, groups: Int, key: (Int) -> Int) -> CellLists {
        var keys = [Int32](repeating: -1, count: count)
        var start = [Int](repeating: 0, count: groups + 1)
        for index in 0..<count {
            let group = key(index)
            guard group >= 0 else { continue }
            keys[index] = Int32(group)
            start[group + 1] += 1
        }
        for group in 0..<groups { start[group + 1] += start[group] }
        var next = start
        var items = [Int32](repeating: 0, count: start[groups])
        for index in 0..<count where keys[index] >= 0 {
            let group = Int(keys[index])
            items[next[group]] = Int32(index)
            next[group] += 1
        }
        return CellLists(start: start, items: items)
    }

    /// Cells (category, image) pooled into one cell per image by concatenating, for each image,
    /// the cells of `categoryOrder` in that order (pycocotools' useCats=0 lists).
    func pooled(categoryOrder: [Int], imageCount: Int) -> CellLists {
        var start = [Int](repeating: 0, count: imageCount + 1)
        var items: [Int32] = []
        items.reserveCapacity(self.items.count)
        for image in 0..<imageCount {
            for category in categoryOrder { items.append(contentsOf: self.items(category * imageCount + image)) }
            start[image + 1] = items.count
        }
        return CellLists(start: start, items: items)
    }
}

/// Per cell (category k, image i; cell = k * imageCount + i): the detections sorted by score
/// (stable) and cut to `maxDetections`, and the IoU matrix [D, G] of those detections against the
/// cell's ground truth in list order. Also, per category, the order of all its kept detections
/// by score that accumulate's mergesort gives.
struct PreparedCells: Sendable {
    let gtCells: CellLists
    let dtCells: CellLists
    let categoryCount: Int
    let imageCount: Int
    /// Kept detections of cell c are positions `dtStart[c]..<dtStart[c + 1]`.
    let dtStart: [Int]
    /// Detection index at each position.
    let dtOrder: [Int32]
    /// The IoU matrix of cell c starts at `iouStart[c]`, row-major [D, G].
    let iouStart: [Int]
    let ious: [Double]
    /// For category k, whose positions are `dtStart[k * imageCount]..<dtStart[(k + 1) * imageCount]`,
    /// the index of each position in the order that accumulate's mergesort gives (score, highest
    /// first; ties in position order: image order, then rank), counted from the category's first position.
    let scoreIndex: [Int32]
    /// At the category's first position + i: the rank within its image (0 = highest score) of
    /// the detection that comes i-th in the category's score order.
    let rankByScore: [Int32]

    init(gtCells: CellLists, dtCells: CellLists, annotations: [COCOAnnotation], detections: [COCODetection],
         categoryCount: Int, imageCount: Int, maxDetections: Int, threads: Int) {
        let cellCount = categoryCount * imageCount
        var dtStart = [Int](repeating: 0, count: cellCount + 1)
        var iouStart = [Int](repeating: 0, count: cellCount + 1)
        for cell in 0..<cellCount {
            let kept = min(dtCells.count(cell), maxDetections)
            dtStart[cell + 1] = dtStart[cell] + kept
            iouStart[cell + 1] = iouStart[cell] + kept * gtCells.count(cell)
        }
        var dtOrder = [Int32](repeating: 0, count: dtStart[cellCount])
        var rank = [Int32](repeating: 0, count: dtStart[cellCount])
        var ious = [Double](repeating: 0, count: iouStart[cellCount])
        let chunkSize = 64
        let chunkCount = (cellCount + chunkSize - 1) / chunkSize
        dtOrder.withUnsafeMutableBufferPointer { orderBuffer in
            rank.withUnsafeMutableBufferPointer { rankBuffer in
                ious.withUnsafeMutableBufferPointer { iouBuffer in
                    let output = UncheckedSendable((orderBuffer, rankBuffer, iouBuffer))
                    forEachTask(chunkCount, threads: threads) { chunk in
                        let (orderOut, rankOut, iouOut) = output.value
                        var positions: [Int] = []
                        for cell in (chunk * chunkSize)..<min(cellCount, (chunk + 1) * chunkSize) {
                            let candidates = dtCells.items(cell)
                            guard !candidates.isEmpty else { continue }
                            let first = candidates.startIndex
                            positions.removeAll(keepingCapacity: true)
                            positions.append(contentsOf: 0..<candidates.count)
                            sortByScore(&positions) { detections[Int(candidates[first + $0])].score }
                            let out = dtStart[cell]
                            let kept = dtStart[cell + 1] - out
                            let truth = gtCells.items(cell)
                            var iouOffset = iouStart[cell]
                            for d in 0..<kept {
                                let detectionIndex = candidates[first + positions[d]]
                                orderOut[out + d] = detectionIndex
                                rankOut[out + d] = Int32(d)
                                let box = detections[Int(detectionIndex)].bbox
                                for annotationIndex in truth {
                                    let annotation = annotations[Int(annotationIndex)]
                                    iouOut[iouOffset] = boxIoU(box, annotation.bbox, crowd: annotation.isCrowd)
                                    iouOffset += 1
                                }
                            }
                        }
                    }
                }
            }
        }
        // accumulate's order per category.
        var scoreIndex = [Int32](repeating: 0, count: dtStart[cellCount])
        var rankByScore = [Int32](repeating: 0, count: dtStart[cellCount])
        let order = dtOrder
        let ranks = rank
        scoreIndex.withUnsafeMutableBufferPointer { indexBuffer in
            rankByScore.withUnsafeMutableBufferPointer { rankBuffer in
                let output = UncheckedSendable((indexBuffer, rankBuffer))
                forEachTask(categoryCount, threads: threads) { category in
                    let (indexOut, rankOut) = output.value
                    let lower = dtStart[category * imageCount]
                    let upper = dtStart[(category + 1) * imageCount]
                    var positions = Array(lower..<upper)
                    sortByScore(&positions) { detections[Int(order[$0])].score }
                    for (offset, position) in positions.enumerated() {
                        indexOut[position] = Int32(offset)
                        rankOut[lower + offset] = ranks[position]
                    }
                }
            }
        }
        self.gtCells = gtCells
        self.dtCells = dtCells
        self.categoryCount = categoryCount
        self.imageCount = imageCount
        self.dtStart = dtStart
        self.dtOrder = dtOrder
        self.iouStart = iouStart
        self.ious = ious
        self.scoreIndex = scoreIndex
        self.rankByScore = rankByScore
    }

    /// Kept detections of category `category` over all images.
    func detectionCount(category: Int) -> Int {
        dtStart[(category + 1) * imageCount] - dtStart[category * imageCount]
    }
}

/// Sorts ascending `keys` so that scores descend, equal scores keeping ascending key order:
/// the result of a stable sort (NumPy's mergesort of `-score`) of keys given in ascending order.
@inline(__always)
func sortByScore(_ keys: inout [Int], score: (Int) -> Double) {
    if keys.count < 2 { return }
    if keys.count <= 16 {
        // insertion sort: stable, and fast for the short lists of one image
        for index in 1..<keys.count {
            let key = keys[index]
            let value = score(key)
            var hole = index
            while hole > 0 && score(keys[hole - 1]) < value {
                keys[hole] = keys[hole - 1]
                hole -= 1
            }
            keys[hole] = key
        }
        return
    }
    var pairs = keys.map { (score: score($0), key: $0) }
    pairs.sort { $0.score > $1.score || ($0.score == $1.score && $0.key < $1.key) }
    for index in keys.indices { keys[index] = pairs[index].key }
}

/// pycocotools' bbIou (maskApi.c) for one detection and one ground-truth box, `[x, y, w, h]`:
/// intersection over union, or over the detection's area when the ground truth is a crowd.
@inline(__always)
func boxIoU(_ detection: COCOBox, _ truth: COCOBox, crowd: Bool) -> Double {
    let detectionArea = detection.width * detection.height
    let truthArea = truth.width * truth.height
    let width = min(detection.width + detection.x, truth.width + truth.x) - max(detection.x, truth.x)
    if width <= 0 { return 0 }
    let height = min(detection.height + detection.y, truth.height + truth.y) - max(detection.y, truth.y)
    if height <= 0 { return 0 }
    let intersection = width * height
    let union = crowd ? detectionArea : detectionArea + truthArea - intersection
    return intersection / union
}
