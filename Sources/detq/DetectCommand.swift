import ArgumentParser
import DetQKit
import Foundation
import ImageIO

struct Detect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Detect objects in images.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var quantizedOptions: QuantizedModelOptions

    @Option(help: "Keep detections scoring above this (overrides the config's box score threshold).")
    var scoreThreshold: Float?

    @Option(help: "Write detections as JSON to this file.")
    var json: String?

    @Option(help: "Write each image with its labelled boxes as PNG into this folder.")
    var draw: String?

    @Argument(help: "Images (JPEG or PNG).")
    var images: [String]

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("give at least one image") }
        if let scoreThreshold, !(0...1).contains(scoreThreshold) {
            throw ValidationError("--score-threshold must be in [0, 1], got \(scoreThreshold)")
        }
        try checkOutputFile(json, option: "--json")
    }

    func run() throws {
        try global.apply()
        if let draw { try createOutputDirectory(draw) }  // before any work
        let model = try DetectionModel(model: modelOptions.model, weights: modelOptions.weights,
                                       configPath: modelOptions.config, scoreThreshold: scoreThreshold,
                                       quantized: quantizedOptions.quantized, mode: quantizedOptions.mode)
        var report = DetectionReport(model: model.name)
        let progress = ProgressReporter("detect", total: images.count, quiet: global.quiet)
        for path in images {
            let image = try loadImage(at: path)
            let detections = model.detect(image)
            report.images.append(DetectionReport.image(file: path, width: image.width, height: image.height, detections))
            if let draw { try drawDetections(detections, on: image, names: model.classNames, file: path, directory: draw) }
            if json == nil {
                print("\(path): \(detections.count) detections")
                for i in 0..<min(detections.count, 20) {
                    let b = detections.box(i)
                    let label = detections.labels[i]
                    let name = label < model.classNames.count ? model.classNames[label] : String(label)
                    print(String(format: "  %.3f  %@  [%.1f, %.1f, %.1f, %.1f]", detections.scores[i], name, b.x1, b.y1, b.x2, b.y2))
                }
            }
            progress.advance()
        }
        progress.finish()
        if let json { try writeAtomically(try encodeJSON(report), to: json) }
    }
}
