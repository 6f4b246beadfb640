import ArgumentParser
import DetQKit
import Foundation
import ImageIO

struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify images with an ImageNet classifier (mobilenet_v2, resnet50).")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var quantizedOptions: QuantizedModelOptions

    @Option(help: "How many classes to show per image.")
    var top = 5

    @Option(help: "Write the predictions as JSON to this file.")
    var json: String?

    @Argument(help: "Images (JPEG or PNG).")
    var images: [String]

    func validate() throws {
        guard top >= 1 else { throw ValidationError("--top must be at least 1") }
        guard !images.isEmpty else { throw ValidationError("give at least one image") }
        guard modelOptions.weights != nil else { throw ValidationError("--weights is required for classify") }
        try checkOutputFile(json, option: "--json")
    }

    struct Output: Codable {
        struct Image: Codable { var file: String; var top: [ClassPrediction] }
        var model: String
        var images: [Image]
    }

    func run() throws {
        try global.apply()
        let model = try ClassificationModel(model: modelOptions.model, weights: modelOptions.weights,
                                            configPath: modelOptions.config, quantized: quantizedOptions.quantized,
                                            mode: quantizedOptions.mode)
        var output = Output(model: model.name, images: [])
        let progress = ProgressReporter("classify", total: images.count, quiet: global.quiet)
        for path in images {
            let image = try loadImage(at: path)
            let predictions = topPredictions(model.probabilities(image), names: model.classNames, k: top)
            output.images.append(.init(file: path, top: predictions))
            progress.advance()
            if json == nil {
                print(path)
                for p in predictions {
                    print(String(format: "  %6.2f%%  %4d  %@", Double(p.probability) * 100, p.index, p.name))
                }
            }
        }
        progress.finish()
        if let json { try writeAtomically(try encodeJSON(output), to: json) }
    }
}
