// The accumulated evaluation and pycocotools' summarize(): the 12 stats and their printed lines.
import Foundation

/// AP and AR of one category (area all, IoU 0.50:0.95 unless named, 100 detections per image);
/// -1 where pycocotools has -1 (no ground truth of the category).
public struct COCOCategoryMetrics: Equatable, Sendable {
    public let categoryId: Int
    public let name: String
    /// mean precision over the 10 IoU thresholds and 101 recall thresholds
    public let ap: Double
    /// precision at IoU 0.50
    public let ap50: Double
    /// precision at IoU 0.75
    public let ap75: Double
    /// recall over the 10 IoU thresholds with at most 100 detections per image
    public let ar100: Double
}

/// The result of `COCOEvaluator.run()`: pycocotools' `eval['precision']`, `eval['recall']` and
/// `stats`, plus the per-category table.
public struct COCOEvaluation: Sendable {
    public let parameters: COCOParameters
    /// The evaluated image ids, sorted (I).
    public let imageIds: [Int]
    /// The K evaluated category ids, sorted; `[-1]` without categories.
    public let categoryIds: [Int]
    /// The name of each of `categoryIds` (empty for -1).
    public let categoryNames: [String]
    public let useCategories: Bool
    /// Precision, shape [T, R, K, A, M] (IoU thresholds, recall thresholds, categories, area
    /// ranges, max detections), row-major, -1 where there is no ground truth.
    public let precision: [Double]
    /// Recall, shape [T, K, A, M], row-major, -1 where there is no ground truth.
    public let recall: [Double]
    /// The 12 numbers of pycocotools' `stats`, in its order: AP, AP50, AP75, AP small, medium,
    /// large; AR 1, 10, 100; AR small, medium, large.
    public let stats: [Double]
    /// pycocotools' `summarize()` output: 12 lines, each ending in a newline.
    public let summaryText: String
    /// One row per evaluated category (empty without categories).
    public let perCategory: [COCOCategoryMetrics]

    init(parameters: COCOParameters, imageIds: [Int], categoryIds: [Int], categoryNames: [String],
         useCategories: Bool, precision: [Double], recall: [Double]) {
        self.parameters = parameters
        self.imageIds = imageIds
        self.categoryIds = categoryIds
        self.categoryNames = categoryNames
        self.useCategories = useCategories
        self.precision = precision
        self.recall = recall
        let summary = Summary(parameters: parameters, categoryCount: categoryIds.count,
                              precision: precision, recall: recall)
        var stats: [Double] = []
        var text = ""
        for line in Summary.standardLines(parameters) {
            let value = summary.mean(line)
            stats.append(value)
            text += line.formatted(value: value, parameters: parameters) + "\n"
        }
        self.stats = stats
        self.summaryText = text
        guard useCategories else {
            self.perCategory = []
            return
        }
        let last = parameters.maxDetections.count - 1
        self.perCategory = categoryIds.indices.map { k in
            COCOCategoryMetrics(
                categoryId: categoryIds[k], name: categoryNames[k],
                ap: summary.mean(ap: true, iouThreshold: nil, area: 0, maxDetection: last, category: k),
                ap50: summary.mean(ap: true, iouThreshold: 0.5, area: 0, maxDetection: last, category: k),
                ap75: summary.mean(ap: true, iouThreshold: 0.75, area: 0, maxDetection: last, category: k),
                ar100: summary.mean(ap: false, iouThreshold: nil, area: 0, maxDetection: last, category: k))
        }
    }

    /// The number of IoU thresholds, recall thresholds, categories, area ranges and max detections.
    public var counts: (t: Int, r: Int, k: Int, a: Int, m: Int) {
        (parameters.iouThresholds.count, parameters.recallThresholds.count, categoryIds.count,
         parameters.areaRanges.count, parameters.maxDetections.count)
    }
}

/// pycocotools' `_summarize`: means over the entries > -1 of a slice of precision or recall.
struct Summary {
    let parameters: COCOParameters
    let categoryCount: Int
    let precision: [Double]
    let recall: [Double]

    /// One line of `_summarizeDets`.
    struct Line {
        let ap: Bool
        let iouThreshold: Double?
        let area: String
        let maxDetections: Int

        /// `' {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}'`
        func formatted(value: Double, parameters: COCOParameters) -> String {
            let title = padded(ap ? "Average Precision" : "Average Recall", 18, left: true)
            let kind = ap ? "(AP)" : "(AR)"
            let iou: String
            if let iouThreshold {
                iou = String(format: "%0.2f", iouThreshold)
            } else {
                iou = String(format: "%0.2f:%0.2f", parameters.iouThresholds.first ?? 0, parameters.iouThresholds.last ?? 0)
            }
            return " \(title) \(kind) @[ IoU=\(padded(iou, 9, left: true)) | area=\(padded(area, 6, left: false))"
                + " | maxDets=\(padded(String(maxDetections), 3, left: false)) ] = \(String(format: "%0.3f", value))"
        }
    }

    /// The 12 lines of `_summarizeDets`, in order.
    static func standardLines(_ parameters: COCOParameters) -> [Line] {
        let m = parameters.maxDetections
        return [
            Line(ap: true, iouThreshold: nil, area: "all", maxDetections: 100),
            Line(ap: true, iouThreshold: 0.5, area: "all", maxDetections: m[2]),
            Line(ap: true, iouThreshold: 0.75, area: "all", maxDetections: m[2]),
            Line(ap: true, iouThreshold: nil, area: "small", maxDetections: m[2]),
            Line(ap: true, iouThreshold: nil, area: "medium", maxDetections: m[2]),
            Line(ap: true, iouThreshold: nil, area: "large", maxDetections: m[2]),
            Line(ap: false, iouThreshold: nil, area: "all", maxDetections: m[0]),
            Line(ap: false, iouThreshold: nil, area: "all", maxDetections: m[1]),
            Line(ap: false, iouThreshold: nil, area: "all", maxDetections: m[2]),
            Line(ap: false, iouThreshold: nil, area: "small", maxDetections: m[2]),
            Line(ap: false, iouThreshold: nil, area: "medium", maxDetections: m[2]),
            Line(ap: false, iouThreshold: nil, area: "large", maxDetections: m[2]),
        ]
    }

    /// The value of one summary line over all categories.
    func mean(_ line: Line) -> Double {
        // aind / mind are lists of matching indices; with the defaults each has one element.
        let areas = parameters.areaRanges.indices.filter { parameters.areaRanges[$0].label == line.area }
        let limits = parameters.maxDetections.indices.filter { parameters.maxDetections[$0] == line.maxDetections }
        return mean(ap: line.ap, iouThreshold: line.iouThreshold, areas: areas, limits: limits,
                    categories: Array(0..<categoryCount))
    }

    /// The value for one area range index, one max-detections index and one category.
    func mean(ap: Bool, iouThreshold: Double?, area: Int, maxDetection: Int, category: Int) -> Double {
        mean(ap: ap, iouThreshold: iouThreshold, areas: [area], limits: [maxDetection], categories: [category])
    }

    /// `np.mean(s[s > -1])` of `s = precision[t, :, k, a, m]` (or `recall[t, k, a, m]`), elements
    /// in C order; -1 if none. `t` is every threshold, or those equal to `iouThreshold` (np.where).
    private func mean(ap: Bool, iouThreshold: Double?, areas: [Int], limits: [Int], categories: [Int]) -> Double {
        let thresholds = parameters.iouThresholds
        let selected = thresholds.indices.filter { iouThreshold == nil || thresholds[$0] == iouThreshold }
        let (r, k, a, m) = (parameters.recallThresholds.count, categoryCount,
                            parameters.areaRanges.count, parameters.maxDetections.count)
        var values: [Double] = []
        // s[:, :, :, aind, mind] puts the two index lists last, paired: (t, r, k, pair)
        let pairs = zip(areas, limits).map { ($0, $1) }
        for t in selected {
            if ap {
                for rIndex in 0..<r {
                    for kIndex in categories {
                        for (aIndex, mIndex) in pairs {
                            let value = precision[(((t * r + rIndex) * k + kIndex) * a + aIndex) * m + mIndex]
                            if value > -1 { values.append(value) }
                        }
                    }
                }
            } else {
                for kIndex in categories {
                    for (aIndex, mIndex) in pairs {
                        let value = recall[((t * k + kIndex) * a + aIndex) * m + mIndex]
                        if value > -1 { values.append(value) }
                    }
                }
            }
        }
        return numpyMean(values) ?? -1
    }
}

/// Python's `format` padding with spaces: `{:<n}` (left) or `{:>n}`.
private func padded(_ text: String, _ width: Int, left: Bool) -> String {
    let padding = String(repeating: " ", count: max(0, width - text.count))
    return left ? text + padding : padding + text
}
