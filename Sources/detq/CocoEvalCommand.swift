// `detq cocoeval`: pycocotools' bbox COCOeval on an instances file and a results file.
import ArgumentParser
import COCO
import DetQKit
import TensorCore
import Foundation

struct CocoEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cocoeval",
        abstract: "Evaluate COCO box results against COCO ground truth, exactly as pycocotools does.",
        discussion: """
            Prints pycocotools' 12-line summary, or with --json one object: \
            {"stats": [12 numbers], "per_category": [{"category_id", "name", "ap", "ap50", "ap75", "ar100"}]} \
            (per_category is empty with --no-cats). --curves writes pycocotools' precision [T][R][K][A][M] \
            and recall [T][K][A][M] arrays as nested JSON lists, with the thresholds, category ids, area \
            ranges and max detections that index them; -1 where there is no ground truth.

            How sure is a figure measured on these images? --bootstrap N draws the images N times with \
            replacement and scores the detections on each draw (evaluated once, accumulated per draw): \
            the standard error and 95 % interval of AP follow the summary. --compare B.json scores a second \
            results file on the same draws and gives the drop from --dt to it (e.g. FP32 to quantized) with \
            its standard error and interval: a drop whose interval holds 0 is not told from noise by \
            these images. With --json the figures of all 12 stats are under "bootstrap" (and "compare").
            Example: detq cocoeval --gt val.json --dt fp32.json --compare w8a8.json --bootstrap 1000
            """)

    @Option(help: "Ground truth: a COCO instances JSON file.")
    var gt: String

    @Option(help: "Detections: a COCO results JSON file ([{image_id, category_id, bbox, score}]).")
    var dt: String

    @Flag(help: "Print the stats and the per-category table as one JSON object instead of the summary.")
    var json = false

    @Flag(name: .customLong("no-cats"), help: "Ignore categories (pycocotools' useCats = 0).")
    var noCats = false

    @Option(help: "Also write the precision and recall arrays to this JSON file.")
    var curves: String?

    @Option(help: "A second results file, scored on the same images (and the same bootstrap draws): its stats and the drop from --dt to it.")
    var compare: String?

    @Option(help: "Bootstrap draws of the images (0: none).")
    var bootstrap = 0

    @Option(help: "Seed of the bootstrap draws.")
    var seed: UInt64 = 0

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        guard bootstrap == 0 || bootstrap >= 2 else {
            throw ValidationError("--bootstrap must be 0 (none) or at least 2 draws, got \(bootstrap)")
        }
        try checkOutputFile(curves, option: "--curves")
    }

    func run() throws {
        try global.apply()
        let groundTruth = try loadInstances(path: gt)
        let results = try loadResults(path: dt, groundTruth: groundTruth)
        let evaluator = COCOEvaluator(groundTruth: groundTruth, results: results, useCategories: !noCats,
                                      threads: Threads.count)
        let progress = ProgressReporter("cocoeval", total: evaluator.taskCount, quiet: global.quiet)
        let evaluation = evaluator.run(onTaskFinished: { progress.advance() })
        progress.finish()
        if let curves { try evaluation.writeCurves(to: curves) }
        var compared: (name: String, evaluation: COCOEvaluation)?
        var comparedResults: COCOResults?
        if let compare {
            let other = try loadResults(path: compare, groundTruth: groundTruth)
            comparedResults = other
            compared = (compare, COCOEvaluator(groundTruth: groundTruth, results: other, useCategories: !noCats,
                                               threads: Threads.count).run())
        }
        var spreads: COCOComparison.Bootstrap?
        if bootstrap > 0 {
            let sampler = COCOBootstrap(groundTruth: groundTruth, results: [results] + (comparedResults.map { [$0] } ?? []),
                                        useCategories: !noCats, threads: Threads.count)
            var generator = SeededGenerator(seed: seed)
            let drawProgress = ProgressReporter("bootstrap", total: bootstrap, quiet: global.quiet)
            let draws = sampler.run(draws: bootstrap, using: &generator, onDraw: { drawProgress.advance() })
            drawProgress.finish()
            spreads = COCOComparison.Bootstrap(
                draws: bootstrap, seed: seed, images: sampler.imageIds.count,
                own: COCOSpread.perStat(draws.map { $0[0] }),
                drop: compared == nil ? [] : COCOSpread.perStatDifference(draws.map { $0[0] }, draws.map { $0[1] }))
        }
        let comparison = COCOComparison(evaluation: evaluation, compared: compared, bootstrap: spreads)
        if json {
            print(evaluation.reportJSON(extraMembers: comparison.jsonMembers), terminator: "")
        } else {
            print(evaluation.summaryText + comparison.lines.map { $0 + "\n" }.joined(), terminator: "")
        }
    }
}
