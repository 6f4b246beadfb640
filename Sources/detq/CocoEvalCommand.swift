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

    @OptionGroup var global: GlobalOptions

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
        print(json ? evaluation.reportJSON() : evaluation.summaryText, terminator: "")
    }
}
