import ArgumentParser
import COCO
import DetQKit
import Foundation
import Quantization

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a detector over a COCO image set and evaluate it (resumable, shardable).",
        discussion: """
            Results are journaled image by image in R.json.partial and renamed into R.json at the end; \
            --resume continues a killed run. --shard I/N takes the images at positions I, I+N, … of the \
            id-sorted list (I from 0); `detq merge` joins shard results, which then evaluate exactly as \
            one run. Evaluation covers the selected images only.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var quantizedOptions: QuantizedModelOptions

    @OptionGroup var evaluationSet: EvaluationSetOptions

    @Option(help: "Shard I/N of the id-sorted images (I from 0).")
    var shard: String?

    @Option(help: "Write COCO results to this file (journaled, resumable).")
    var results: String?

    @Flag(help: "Continue the run journaled in RESULTS.partial.")
    var resume = false

    @Option(help: "Write the evaluation report (cocoeval --json object plus run facts) to this file.")
    var report: String?

    func parsedShard() -> (index: Int, count: Int)? {
        guard let shard else { return nil }
        let parts = shard.split(separator: "/").compactMap { Int($0) }
        guard parts.count == 2, parts[1] >= 1, parts[0] >= 0, parts[0] < parts[1] else { return nil }
        return (parts[0], parts[1])
    }

    func validate() throws {
        if shard != nil && parsedShard() == nil {
            throw ValidationError("--shard must be I/N with 0 ≤ I < N, got '\(shard ?? "")'")
        }
        if resume && results == nil { throw ValidationError("--resume needs --results (the journal lives next to it)") }
        guard modelOptions.weights != nil else { throw ValidationError("--weights is required for eval") }
        try checkOutputFile(results, option: "--results")
        try checkOutputFile(report, option: "--report")
    }

    func run() throws {
        try global.apply()
        let model = try DetectionModel(model: modelOptions.model, weights: modelOptions.weights,
                                       configPath: modelOptions.config,
                                       quantized: quantizedOptions.quantized, mode: quantizedOptions.mode)
        let summary = try runEvaluation(model: model, imagesDirectory: evaluationSet.images, annotations: evaluationSet.annotations,
                                        selection: ImageSelection(shard: parsedShard(), limit: evaluationSet.limit),
                                        resultsPath: results, resume: resume, quiet: global.quiet)
        print(summary.evaluation.summaryText, terminator: "")
        if let report {
            try writeAtomically(try evaluationReport(summary, model: model.name, weights: modelOptions.weights,
                                                     recipe: try model.quantization.map { try encodeRecipe($0.recipe) }), to: report)
        }
    }
}

struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Join the COCO results files of several shards into one.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Shard results files.")
    var inputs: [String]

    @Option(help: "The merged results file.")
    var out: String

    func validate() throws {
        guard !inputs.isEmpty else { throw ValidationError("give at least one results file") }
        try checkOutputFile(out, option: "--out")
    }

    func run() throws {
        try global.apply()
        let count = try mergeResults(inputs, to: out)
        if !global.quiet { FileHandle.standardError.write(Data("merged \(count) results from \(inputs.count) files into \(out)\n".utf8)) }
    }
}
