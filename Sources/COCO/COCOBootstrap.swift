// The bootstrap over images: COCO stats of results on images drawn with replacement, evaluated once.
import Foundation

/// COCO evaluation of one or more results files on bootstrap draws of the images: each draw
/// takes as many images as the ground truth has, with replacement, and every results file is
/// scored on the same draw, so differences between them are paired.
///
/// evaluateImg runs once per results file; a draw only accumulates again, with each image
/// counted as often as it was drawn. That equals pycocotools on a ground truth and results in
/// which each drawn image appears that many times (copies next to each other, in image-id
/// order), except for the order of detections with equal scores in one image (the copies of
/// one detection come together instead of copy by copy).
public struct COCOBootstrap: Sendable {
    public let parameters: COCOParameters
    /// Sorted distinct image ids; a draw's counts are in this order.
    public let imageIds: [Int]
    private let evaluations: [Evaluation]
    private let threads: Int

    /// evaluateImg's results of one results file, per (category, area range): what every draw
    /// accumulates again. Made once per file and shareable between samplers (a base file
    /// compared with many others is evaluated once).
    public struct Evaluation: Sendable {
        /// Sorted distinct image ids of the ground truth it was evaluated on.
        public let imageIds: [Int]
        let categoryCount: Int
        /// Index `category * A + area`; nil where pycocotools' accumulate leaves -1.
        let cells: [DetectionStatuses?]
        /// Per category, the image index of the detection i-th in the category's score order.
        let imageOfDetection: [[Int32]]

        /// Runs evaluateImg on `results` (checked against `groundTruth` by its loader).
        public init(groundTruth: COCODataset, results: COCOResults, useCategories: Bool = true,
                    threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
            let threads = max(1, threads)
            let evaluator = COCOEvaluator(groundTruth: groundTruth, results: results, useCategories: useCategories,
                                          threads: threads)
            let preparation = evaluator.prepare()
            let cells = preparation.cells
            let areas = evaluator.parameters.areaRanges
            var statuses = [DetectionStatuses?](repeating: nil, count: cells.categoryCount * areas.count)
            statuses.withUnsafeMutableBufferPointer { buffer in
                let output = UncheckedSendable(buffer)
                forEachTask(cells.categoryCount * areas.count, threads: threads) { task in
                    output.value[task] = evaluator.evaluateCategory(
                        cells, category: task / areas.count, range: areas[task % areas.count],
                        annotations: groundTruth.annotations, detections: results.detections)
                }
            }
            self.imageIds = preparation.imageIds
            self.categoryCount = cells.categoryCount
            self.cells = statuses
            self.imageOfDetection = (0..<cells.categoryCount).map { category -> [Int32] in
                var images = [Int32](repeating: 0, count: cells.detectionCount(category: category))
                for image in 0..<cells.imageCount {
                    let cell = category * cells.imageCount + image
                    for position in cells.dtStart[cell]..<cells.dtStart[cell + 1] {
                        images[Int(cells.scoreIndex[position])] = Int32(image)
                    }
                }
                return images
            }
        }

        /// The 12 stats with image `i` counted `counts[i]` times (`counts` in `imageIds` order;
        /// nil gives the plain evaluation's stats, as pycocotools prints them).
        public func stats(counts: [Int]? = nil, parameters: COCOParameters = .standard,
                          threads: Int = ProcessInfo.processInfo.activeProcessorCount) -> [Double] {
            let weights = (counts ?? [Int](repeating: 1, count: imageIds.count)).map { Int32(clamping: $0) }
            precondition(weights.count == imageIds.count, "COCOBootstrap: one count per image")
            let areas = parameters.areaRanges.count
            let (precision, recall) = accumulateCurves(parameters: parameters, categoryCount: categoryCount,
                                                       threads: max(1, threads)) { category, area in
                (cells[category * areas + area], ImageWeights(weights: weights, imageOf: imageOfDetection[category]))
            }
            let summary = Summary(parameters: parameters, categoryCount: categoryCount, precision: precision, recall: recall)
            return Summary.standardLines(parameters).map { summary.mean($0) }
        }
    }

    /// Evaluates every results set (each checked against `groundTruth` by its loader).
    public init(groundTruth: COCODataset, results: [COCOResults], useCategories: Bool = true,
                threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.init(evaluations: results.map {
            Evaluation(groundTruth: groundTruth, results: $0, useCategories: useCategories, threads: threads)
        }, imageIds: groundTruth.images.map(\.id), threads: threads)
    }

    /// Draws over results files evaluated before, all on the same ground truth (`imageIds`
    /// is its image ids, for a sampler without evaluations).
    public init(evaluations: [Evaluation], imageIds: [Int], threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.parameters = .standard
        self.threads = max(1, threads)
        let ids = evaluations.first?.imageIds ?? Array(Set(imageIds)).sorted()
        precondition(evaluations.allSatisfy { $0.imageIds == ids }, "COCOBootstrap: every evaluation must be of the same ground truth")
        self.imageIds = ids
        self.evaluations = evaluations
    }

    /// The 12 stats of each results set with image `i` counted `counts[i]` times (`counts` in
    /// `imageIds` order; all ones gives the plain evaluation's stats).
    public func stats(counts: [Int]) -> [[Double]] {
        precondition(counts.count == imageIds.count, "COCOBootstrap: one count per image")
        return evaluations.map { $0.stats(counts: counts, parameters: parameters, threads: threads) }
    }

    /// One bootstrap draw: how often each image is drawn in `imageIds.count` draws with replacement.
    public func draw<G: RandomNumberGenerator>(using generator: inout G) -> [Int] {
        var counts = [Int](repeating: 0, count: imageIds.count)
        guard !counts.isEmpty else { return counts }
        for _ in 0..<imageIds.count { counts[Int.random(in: 0..<imageIds.count, using: &generator)] += 1 }
        return counts
    }
}

extension COCOBootstrap {
    /// `draws` draws from `generator`; per draw, the stats of each results set (`[draw][result][12]`).
    /// `onDraw` is called after each draw.
    public func run<G: RandomNumberGenerator>(draws: Int, using generator: inout G,
                                              onDraw: (() -> Void)? = nil) -> [[[Double]]] {
        (0..<max(0, draws)).map { _ in
            let stats = stats(counts: draw(using: &generator))
            onDraw?()
            return stats
        }
    }
}

/// The spread of a statistic over bootstrap draws: mean, standard error (the standard deviation
/// of the draws, n − 1) and the 2.5 and 97.5 percentiles (NumPy's linear interpolation).
public struct COCOSpread: Sendable, Equatable {
    public let draws: Int
    public let mean: Double
    public let standardError: Double
    public let interval95: [Double]

    /// nil with fewer than two values.
    public init?(_ values: [Double]) {
        guard values.count >= 2 else { return nil }
        let sorted = values.sorted()
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
        func percentile(_ q: Double) -> Double {
            let position = Double(sorted.count - 1) * q
            let low = Int(position.rounded(.down))
            let high = min(low + 1, sorted.count - 1)
            return sorted[low] + (sorted[high] - sorted[low]) * (position - Double(low))
        }
        self.draws = values.count
        self.mean = mean
        self.standardError = variance.squareRoot()
        self.interval95 = [percentile(0.025), percentile(0.975)]
    }

    /// The spread of each of the 12 stats over `draws` (`[draw][12]`), leaving out draws where the
    /// stat is -1 (no ground truth of that kind among the drawn images).
    public static func perStat(_ draws: [[Double]]) -> [COCOSpread?] {
        guard let width = draws.first?.count else { return [] }
        return (0..<width).map { s in COCOSpread(draws.map { $0[s] }.filter { $0 > -1 }) }
    }

    /// The spread of `a − b` per stat over paired draws, leaving out draws where either is -1.
    public static func perStatDifference(_ a: [[Double]], _ b: [[Double]]) -> [COCOSpread?] {
        guard let width = a.first?.count else { return [] }
        return (0..<width).map { s in
            COCOSpread(zip(a, b).filter { $0.0[s] > -1 && $0.1[s] > -1 }.map { $0.0[s] - $0.1[s] })
        }
    }

    /// `{"draws": n, "mean": m, "standard_error": s, "interval_95": [lo, hi]}`.
    public var json: String {
        "{\"draws\": \(draws), \"mean\": \(jsonNumber(mean)), \"standard_error\": \(jsonNumber(standardError)), "
            + "\"interval_95\": [\(jsonNumber(interval95[0])), \(jsonNumber(interval95[1]))]}"
    }
}

/// What `cocoeval --compare / --bootstrap` adds to an evaluation: the compared file's stats and
/// the drop to them, the bootstrap spread of the evaluation's stats and of the drop, as report
/// members (JSON) and as lines after the summary.
public struct COCOComparison: Sendable {
    public struct Bootstrap: Sendable {
        public let draws: Int
        public let seed: UInt64
        public let images: Int
        /// The spread of each of the evaluation's 12 stats.
        public let own: [COCOSpread?]
        /// The spread of each drop (evaluation − compared); empty without a compared file.
        public let drop: [COCOSpread?]
        public init(draws: Int, seed: UInt64, images: Int, own: [COCOSpread?], drop: [COCOSpread?]) {
            self.draws = draws
            self.seed = seed
            self.images = images
            self.own = own
            self.drop = drop
        }
    }

    public let evaluation: COCOEvaluation
    /// The compared results file (its name as given) and its evaluation.
    public let compared: (name: String, evaluation: COCOEvaluation)?
    public let bootstrap: Bootstrap?

    public init(evaluation: COCOEvaluation, compared: (name: String, evaluation: COCOEvaluation)?, bootstrap: Bootstrap?) {
        self.evaluation = evaluation
        self.compared = compared
        self.bootstrap = bootstrap
    }

    /// evaluation − compared per stat; nil where either is -1 (no ground truth of that kind).
    public var drops: [Double?] {
        guard let compared else { return [] }
        return zip(evaluation.stats, compared.evaluation.stats).map { $0 > -1 && $1 > -1 ? $0 - $1 : nil }
    }

    /// `"bootstrap": {"draws", "seed", "images", "stats": [12 spreads or null]}` and `"compare": {"dt",
    /// "stats", "drop" (null where undefined), "drop_bootstrap"}`, for `reportJSON(extraMembers:)`.
    public var jsonMembers: [(name: String, json: String)] {
        var members: [(name: String, json: String)] = []
        if let bootstrap {
            members.append(("bootstrap", "{\"draws\": \(bootstrap.draws), \"seed\": \(bootstrap.seed), "
                + "\"images\": \(bootstrap.images), \"stats\": ["
                + bootstrap.own.map { $0?.json ?? "null" }.joined(separator: ",\n  ") + "]}"))
        }
        if let compared {
            var member = "{\"dt\": \(jsonString(compared.name)), \"stats\": ["
                + compared.evaluation.stats.map(jsonNumber).joined(separator: ", ")
                + "],\n  \"drop\": [" + drops.map { $0.map(jsonNumber) ?? "null" }.joined(separator: ", ") + "]"
            if let bootstrap {
                member += ",\n  \"drop_bootstrap\": [" + bootstrap.drop.map { $0?.json ?? "null" }.joined(separator: ",\n   ") + "]"
            }
            members.append(("compare", member + "}"))
        }
        return members
    }

    /// The lines printed after the summary (AP only; `--json` has every stat).
    public var lines: [String] {
        var lines: [String] = []
        if let bootstrap, let spread = bootstrap.own.first ?? nil {
            lines.append(String(format: "Bootstrap over the %d images (%d draws, seed %llu): AP %.3f, standard error %.3f, "
                                + "95 %% interval [%.3f, %.3f]", bootstrap.images, bootstrap.draws, bootstrap.seed,
                                evaluation.stats[0], spread.standardError, spread.interval95[0], spread.interval95[1]))
        }
        if let compared {
            var line = "\(compared.name): " + String(format: "AP %.3f", compared.evaluation.stats[0])
            if let drop = drops.first ?? nil {
                line += String(format: "; drop in AP from --dt: %.2f points", 100 * drop)
            }
            if let spread = bootstrap?.drop.first ?? nil {
                line += String(format: ", standard error %.2f, 95 %% interval [%.2f, %.2f] (paired draws)",
                               100 * spread.standardError, 100 * spread.interval95[0], 100 * spread.interval95[1])
            }
            lines.append(line)
        }
        return lines
    }
}
