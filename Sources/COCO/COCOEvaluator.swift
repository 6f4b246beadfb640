// Box evaluation identical to pycocotools' COCOeval (iouType='bbox'): evaluate(), then accumulate().
import Foundation

/// Evaluates detections against COCO ground truth exactly as pycocotools' `COCOeval` with
/// `iouType='bbox'` and default parameters: the same matching, the same arithmetic, the same
/// -1 conventions, so `stats` equal pycocotools' (see `COCOEvaluation`).
///
/// pycocotools rules kept, in its order:
/// - images: the sorted distinct ids of `images`; categories: the sorted distinct ids of
///   `categories` (with `useCategories == false`, one pooled category, -1);
/// - a ground-truth box is ignored when it is a crowd or its `area` is outside the area range;
///   pycocotools overwrites any `ignore` field with `iscrowd`, so no other flag exists;
/// - detections of an image and category sorted by score, highest first, with a stable sort,
///   then cut to the last `maxDetections` (100);
/// - IoU of a crowd box is intersection over the detection's area;
/// - greedy matching per IoU threshold `t`: each detection takes the best IoU ≥ `min(t, 1-1e-10)`
///   among unmatched (or crowd) boxes, regular boxes first, never moving to an ignored box once
///   it holds a regular one; a match to an ignored box ignores the detection; an unmatched
///   detection whose area `w*h` is outside the range is ignored;
/// - a match to a ground-truth annotation whose id is 0 counts as no match (pycocotools stores
///   the matched id and tests it for truth);
/// - annotations are looked up by id as `loadAnns` does: if ids repeat, the last one wins.
public struct COCOEvaluator: Sendable {
    public let groundTruth: COCODataset
    public let results: COCOResults
    /// pycocotools' `params.useCats`; false evaluates class-agnostically.
    public let useCategories: Bool
    /// Threads for the per-image evaluation (default: all cores).
    public let threads: Int
    public let parameters: COCOParameters

    public init(groundTruth: COCODataset, results: COCOResults, useCategories: Bool = true,
                threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.groundTruth = groundTruth
        self.results = results
        self.useCategories = useCategories
        self.threads = max(1, threads)
        self.parameters = .standard
    }

    /// The units of work `run` reports to `onTaskFinished`: one per (category, area range).
    public var taskCount: Int {
        (useCategories ? Set(groundTruth.categories.map(\.id)).count : 1) * parameters.areaRanges.count
    }

    /// Runs evaluate, accumulate and summarize. `onTaskFinished` is called (from any thread)
    /// after each of the `taskCount` (category, area range) evaluations.
    public func run(onTaskFinished: (@Sendable () -> Void)? = nil) -> COCOEvaluation {
        let preparation = prepare()
        let (precision, recall) = accumulate(preparation.cells, annotations: groundTruth.annotations,
                                             detections: results.detections, onTaskFinished: onTaskFinished)
        return COCOEvaluation(parameters: parameters, imageIds: preparation.imageIds,
                              categoryIds: preparation.categoryIds, categoryNames: preparation.categoryNames,
                              useCategories: useCategories, precision: precision, recall: recall)
    }

    /// What evaluation needs before evaluateImg: the detections and ground truth per (category,
    /// image) cell, with their IoU matrices; the evaluated image and category ids.
    struct Preparation {
        let cells: PreparedCells
        /// Sorted distinct image ids: the images' order everywhere (cells, weights).
        let imageIds: [Int]
        let categoryIds: [Int]
        let categoryNames: [String]
    }

    func prepare() -> Preparation {
        let annotations = groundTruth.annotations
        let detections = results.detections
        let imageIds = Array(Set(groundTruth.images.map(\.id))).sorted()
        let imageCount = imageIds.count
        let images = IdLookup(imageIds)
        // useCats=0 concatenates per category over the sorted list as pycocotools has it (repeats kept).
        let sortedCategoryIds = groundTruth.categories.map(\.id).sorted()
        var distinctCategoryIds: [Int] = []
        for id in sortedCategoryIds where distinctCategoryIds.last != id { distinctCategoryIds.append(id) }
        let categories = IdLookup(distinctCategoryIds)
        let bucketCount = distinctCategoryIds.count * imageCount

        // Buckets (category, image) in the order pycocotools' _prepare fills _gts and _dts.
        let gtBuckets = groundTruthBuckets(annotations, images: images, imageCount: imageCount,
                                           categories: categories, bucketCount: bucketCount)
        let dtBuckets = CellLists.stableGrouped(count: detections.count, groups: bucketCount) { index in
            let category = categories.index(detections[index].categoryId)
            guard category >= 0 else { return -1 }
            return category * imageCount + images.index(detections[index].imageId)
        }
        let categoryCount: Int
        let gtCells: CellLists
        let dtCells: CellLists
        if useCategories {
            categoryCount = distinctCategoryIds.count
            gtCells = gtBuckets
            dtCells = dtBuckets
        } else {
            categoryCount = 1
            let order = sortedCategoryIds.map { categories.index($0) }
            gtCells = gtBuckets.pooled(categoryOrder: order, imageCount: imageCount)
            dtCells = dtBuckets.pooled(categoryOrder: order, imageCount: imageCount)
        }
        let prepared = PreparedCells(gtCells: gtCells, dtCells: dtCells, annotations: annotations,
                                     detections: detections, categoryCount: categoryCount,
                                     imageCount: imageCount, maxDetections: parameters.maxDetections.last ?? 100,
                                     threads: threads)
        let evaluatedIds = useCategories ? distinctCategoryIds : [-1]
        var names: [Int: String] = [:]
        for category in groundTruth.categories { names[category.id] = category.name }  // last wins, as COCO.cats
        return Preparation(cells: prepared, imageIds: imageIds, categoryIds: evaluatedIds,
                           categoryNames: evaluatedIds.map { names[$0] ?? "" })
    }

    /// The ground truth grouped by (category, image) as pycocotools' `_prepare` does it:
    /// `getAnnIds` walks the sorted images, each image's annotations in file order, keeps those
    /// of listed categories (with categories), and `loadAnns` replaces each by the last
    /// annotation with the same id; the result is grouped by that annotation's image and category.
    private func groundTruthBuckets(_ annotations: [COCOAnnotation], images: IdLookup, imageCount: Int,
                                    categories: IdLookup, bucketCount: Int) -> CellLists {
        var lastWithId: [Int: Int] = [:]
        lastWithId.reserveCapacity(annotations.count)
        for (index, annotation) in annotations.enumerated() { lastWithId[annotation.id] = index }
        let idsRepeat = lastWithId.count != annotations.count
        let byImage = CellLists.stableGrouped(count: annotations.count, groups: imageCount) { images.index(annotations[$0].imageId) }
        var emitted: [Int32] = []
        var keys: [Int] = []
        emitted.reserveCapacity(annotations.count)
        keys.reserveCapacity(annotations.count)
        for image in 0..<imageCount {
            for original in byImage.items(image) {
                let originalIndex = Int(original)
                if useCategories, categories.index(annotations[originalIndex].categoryId) < 0 { continue }
                let index = idsRepeat ? (lastWithId[annotations[originalIndex].id] ?? originalIndex) : originalIndex
                let category = categories.index(annotations[index].categoryId)
                let imageIndex = images.index(annotations[index].imageId)
                guard category >= 0, imageIndex >= 0 else { continue }  // never looked up
                emitted.append(Int32(index))
                keys.append(category * imageCount + imageIndex)
            }
        }
        let grouped = CellLists.stableGrouped(count: emitted.count, groups: bucketCount) { keys[$0] }
        return CellLists(start: grouped.start, items: grouped.items.map { emitted[Int($0)] })
    }

    // MARK: - evaluateImg and accumulate, one (category, area range) per task

    /// Per (category k, area range a): evaluateImg on every image, then accumulate for each
    /// maxDets. Returns precision [T, R, K, A, M] and recall [T, K, A, M], row-major, -1 where
    /// pycocotools leaves -1.
    private func accumulate(_ prepared: PreparedCells, annotations: [COCOAnnotation], detections: [COCODetection],
                            onTaskFinished: (@Sendable () -> Void)?) -> (precision: [Double], recall: [Double]) {
        let areaRanges = parameters.areaRanges
        // Larger categories first balances the threads better.
        let order = (0..<prepared.categoryCount).sorted {
            prepared.detectionCount(category: $0) > prepared.detectionCount(category: $1)
        }
        return accumulateCurves(parameters: parameters, categoryCount: prepared.categoryCount, threads: threads,
                                categoryOrder: order, onTaskFinished: onTaskFinished) { category, area in
            (evaluateCategory(prepared, category: category, range: areaRanges[area],
                              annotations: annotations, detections: detections), Unweighted())
        }
    }

    /// evaluateImg for one category and area range over all images; nil when every image's
    /// result is None (no ground truth and no detection) or no ground truth is regular (npig = 0).
    func evaluateCategory(_ prepared: PreparedCells, category: Int, range: COCOAreaRange,
                                  annotations: [COCOAnnotation], detections: [COCODetection]) -> DetectionStatuses? {
        let thresholds = parameters.iouThresholds.map { min($0, 1 - 1e-10) }
        let thresholdCount = thresholds.count
        let firstCell = category * prepared.imageCount
        let base = prepared.dtStart[firstCell]
        let count = prepared.dtStart[firstCell + prepared.imageCount] - base
        // Status of the detection i-th in the category's score order at threshold t, at
        // statuses[i * T + t]: 0 ignored, 1 true positive, 2 false positive.
        var statuses = [UInt8](repeating: 0, count: thresholdCount * count)
        var regularCount = 0
        var anyCell = false
        // Per image: its regular ground truth, or -1 where evaluateImg returns None (for weighted draws).
        var regularPerImage = [Int32](repeating: -1, count: prepared.imageCount)
        // Scratch for one image, ground truth in pycocotools' order (regular first, ignored last).
        var column: [Int] = []
        var ignored: [Bool] = []
        var crowd: [Bool] = []
        var idIsZero: [Bool] = []
        var matched: [Bool] = []
        var row: [Double] = []
        statuses.withUnsafeMutableBufferPointer { out in
            for image in 0..<prepared.imageCount {
                let cell = firstCell + image
                let gtItems = prepared.gtCells.items(cell)
                let dtRange = prepared.dtStart[cell]..<prepared.dtStart[cell + 1]
                let gtCount = gtItems.count
                // evaluateImg returns None without ground truth and detections (before the cut to 100).
                if gtCount == 0 && prepared.dtCells.count(cell) == 0 { continue }
                anyCell = true
                // Stable argsort by the ignore flag.
                column.removeAll(keepingCapacity: true)
                ignored.removeAll(keepingCapacity: true)
                crowd.removeAll(keepingCapacity: true)
                idIsZero.removeAll(keepingCapacity: true)
                var regularInImage = 0
                for pass in 0..<2 {
                    for (position, item) in gtItems.enumerated() {
                        let annotation = annotations[Int(item)]
                        let isIgnored = annotation.isCrowd || range.excludes(annotation.area)
                        guard isIgnored == (pass == 1) else { continue }
                        column.append(position)
                        ignored.append(isIgnored)
                        crowd.append(annotation.isCrowd)
                        idIsZero.append(annotation.id == 0)
                        if !isIgnored { regularInImage += 1 }
                    }
                }
                regularCount += regularInImage
                regularPerImage[image] = Int32(regularInImage)
                if gtCount == 0 {
                    for position in dtRange {
                        let outside = range.excludes(detections[Int(prepared.dtOrder[position])].bbox.area)
                        let first = Int(prepared.scoreIndex[position]) * thresholdCount
                        for threshold in 0..<thresholdCount { out[first + threshold] = outside ? 0 : 2 }
                    }
                    continue
                }
                matched.removeAll(keepingCapacity: true)
                matched.append(contentsOf: repeatElement(false, count: thresholdCount * gtCount))
                row.removeAll(keepingCapacity: true)
                row.append(contentsOf: repeatElement(0, count: gtCount))
                var iouOffset = prepared.iouStart[cell]
                // pycocotools loops thresholds outside detections; each threshold's state only moves
                // with the detections in order, so detections outside is the same computation.
                for position in dtRange {
                    var reachesLowest = false
                    for g in 0..<gtCount {
                        let iou = prepared.ious[iouOffset + column[g]]
                        row[g] = iou
                        if !(iou < thresholds[0]) { reachesLowest = true }
                    }
                    iouOffset += gtCount
                    let outside = range.excludes(detections[Int(prepared.dtOrder[position])].bbox.area)
                    let first = Int(prepared.scoreIndex[position]) * thresholdCount
                    guard reachesLowest else {
                        // no IoU reaches any threshold: unmatched everywhere
                        for threshold in 0..<thresholdCount { out[first + threshold] = outside ? 0 : 2 }
                        continue
                    }
                    for threshold in 0..<thresholdCount {
                        var best = thresholds[threshold]
                        var match = -1
                        let matchedBase = threshold * gtCount
                        for g in 0..<gtCount {
                            // already matched and not a crowd: skip
                            if matched[matchedBase + g] && !crowd[g] { continue }
                            // holding a regular box, reached the ignored ones: stop
                            if match > -1 && !ignored[match] && ignored[g] { break }
                            if row[g] < best { continue }
                            best = row[g]
                            match = g
                        }
                        var status: UInt8
                        if match == -1 {
                            status = outside ? 0 : 2
                        } else {
                            matched[matchedBase + match] = true
                            if ignored[match] {
                                status = 0
                            } else if idIsZero[match] {
                                // dtm holds gt id 0: accumulate sees no match
                                status = outside ? 0 : 2
                            } else {
                                status = 1
                            }
                        }
                        out[first + threshold] = status
                    }
                }
            }
        }
        guard anyCell, regularCount > 0 else { return nil }
        return DetectionStatuses(statuses: statuses, count: count, thresholdCount: thresholdCount,
                                 regularCount: regularCount, regularPerImage: regularPerImage,
                                 prepared: prepared, category: category)
    }
}

/// accumulate() over every (category, area range) and max detections: precision [T, R, K, A, M]
/// and recall [T, K, A, M], row-major, -1 where `cell` gives no results (pycocotools' -1).
/// `cell(category, area)` gives evaluateImg's results and how to count them; tasks run in
/// `categoryOrder` on `threads` threads.
func accumulateCurves<Weighting: DetectionWeighting>(
    parameters: COCOParameters, categoryCount k: Int, threads: Int, categoryOrder: [Int]? = nil,
    onTaskFinished: (@Sendable () -> Void)? = nil,
    cell: (_ category: Int, _ area: Int) -> (DetectionStatuses?, Weighting)) -> (precision: [Double], recall: [Double]) {
    let (t, r, a, m) = (parameters.iouThresholds.count, parameters.recallThresholds.count,
                        parameters.areaRanges.count, parameters.maxDetections.count)
    var precision = [Double](repeating: -1, count: t * r * k * a * m)
    var recall = [Double](repeating: -1, count: t * k * a * m)
    precision.withUnsafeMutableBufferPointer { precisionBuffer in
        recall.withUnsafeMutableBufferPointer { recallBuffer in
            let output = UncheckedSendable((precisionBuffer, recallBuffer))
            forEachTask(k * a, threads: threads) { task in
                let category = categoryOrder?[task / a] ?? task / a
                let area = task % a
                let (curves, weighting) = cell(category, area)
                let (precisionOut, recallOut) = output.value
                if let curves {
                    for (mIndex, maxDetection) in parameters.maxDetections.enumerated() {
                        curves.accumulate(maxDetection: maxDetection, thresholds: parameters.recallThresholds,
                                          weighting: weighting) { tIndex, rIndex, value in
                            precisionOut[(((tIndex * r + rIndex) * k + category) * a + area) * m + mIndex] = value
                        } recall: { tIndex, value in
                            recallOut[((tIndex * k + category) * a + area) * m + mIndex] = value
                        }
                    }
                }
                onTaskFinished?()
            }
        }
    }
    return (precision, recall)
}

/// evaluateImg's results for one (category, area range), ready for accumulate.
struct DetectionStatuses: Sendable {
    let statuses: [UInt8]
    let count: Int
    let thresholdCount: Int
    let regularCount: Int
    /// Each image's regular ground truth; -1 where evaluateImg returns None (no ground truth, no detection).
    let regularPerImage: [Int32]
    let prepared: PreparedCells
    let category: Int

    /// accumulate() for one maxDets: tp/fp cumulative sums in the category's score order, recall
    /// and precision with NumPy's arithmetic, the right-to-left precision envelope, and
    /// `searchsorted(rc, recThrs, side='left')`.
    ///
    /// Only true positives move recall and can raise precision: after a false positive
    /// precision can only fall (`tp / (fp + tp + eps)` with a larger `fp`, in floating point as
    /// well), after an ignored detection it is unchanged. So the envelope at any index equals
    /// the largest precision over the true positives at or after it, the first index where
    /// recall reaches a threshold is a true positive (or index 0, where precision is 0 unless it
    /// is a true positive), and the same doubles come out computing precision and recall at the
    /// true positives only.
    ///
    /// `weighting` (`ImageWeights`, a bootstrap draw) counts each detection and each regular
    /// ground-truth box as often as its image: the copies of a detection come in a row, each a
    /// true or false positive as the original. Nothing is written (the entries stay -1) where no
    /// drawn image is evaluated or the drawn images hold no regular ground truth.
    func accumulate<Weighting: DetectionWeighting>(
        maxDetection: Int, thresholds: [Double], weighting: Weighting = Unweighted(),
        precision: (_ t: Int, _ r: Int, _ value: Double) -> Void,
        recall: (_ t: Int, _ value: Double) -> Void) {
        guard let regularCount = weighting.regularCount(self) else { return }
        let base = prepared.dtStart[category * prepared.imageCount]
        let regular = Double(regularCount)
        var eventRecall: [Double] = []
        var eventPrecision: [Double] = []
        eventRecall.reserveCapacity(regularCount)
        eventPrecision.reserveCapacity(regularCount)
        prepared.rankByScore.withUnsafeBufferPointer { allRanks in
            let ranks = UnsafeBufferPointer(rebasing: allRanks[base..<(base + count)])
            statuses.withUnsafeBufferPointer { allStatuses in
                for threshold in 0..<thresholdCount {
                    var truePositives = 0
                    var falsePositives = 0
                    var n = 0
                    eventRecall.removeAll(keepingCapacity: true)
                    eventPrecision.removeAll(keepingCapacity: true)
                    for index in 0..<count where Int(ranks[index]) < maxDetection {
                        let copies = weighting.copies(index)
                        if copies == 0 { continue }
                        n += copies
                        let status = allStatuses[index * thresholdCount + threshold]
                        if status == 2 {
                            falsePositives += copies
                        } else if status == 1 {
                            for _ in 0..<copies {
                                truePositives += 1
                                let tp = Double(truePositives)
                                eventRecall.append(tp / regular)
                                // tp / (fp + tp + np.spacing(1))
                                eventPrecision.append(tp / (Double(falsePositives) + tp + Double.ulpOfOne))
                            }
                        }
                    }
                    recall(threshold, n > 0 ? Double(truePositives) / regular : 0)
                    var event = eventPrecision.count - 1
                    while event > 0 {
                        if eventPrecision[event] > eventPrecision[event - 1] { eventPrecision[event - 1] = eventPrecision[event] }
                        event -= 1
                    }
                    // Thresholds ascend and recall does not descend: a moving lower bound.
                    var lower = 0
                    for (r, value) in thresholds.enumerated() {
                        while lower < eventRecall.count && eventRecall[lower] < value { lower += 1 }
                        precision(threshold, r, lower < eventRecall.count ? eventPrecision[lower] : 0)
                    }
                }
            }
        }
    }
}

/// How often accumulate counts each detection: once (`Unweighted`, the evaluation itself) or as
/// often as its image was drawn (`ImageWeights`, a bootstrap draw).
protocol DetectionWeighting {
    /// The copies of the detection at `index` in the category's score order.
    func copies(_ index: Int) -> Int
    /// The regular ground truth counted, or nil where accumulate leaves -1.
    func regularCount(_ statuses: DetectionStatuses) -> Int?
}

struct Unweighted: DetectionWeighting {
    @inline(__always) func copies(_ index: Int) -> Int { 1 }
    func regularCount(_ statuses: DetectionStatuses) -> Int? { statuses.regularCount }
}

/// `weights[i]` copies of image i; `imageOf[j]` is the image of the detection j-th in the
/// category's score order.
struct ImageWeights: DetectionWeighting {
    let weights: [Int32]
    let imageOf: [Int32]

    @inline(__always) func copies(_ index: Int) -> Int { Int(weights[Int(imageOf[index])]) }

    func regularCount(_ statuses: DetectionStatuses) -> Int? {
        var count = 0
        var anyImage = false
        for (image, regular) in statuses.regularPerImage.enumerated() where regular >= 0 && weights[image] > 0 {
            anyImage = true
            count += Int(weights[image]) * Int(regular)
        }
        return anyImage && count > 0 ? count : nil
    }
}
