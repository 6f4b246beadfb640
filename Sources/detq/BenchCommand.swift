import ArgumentParser
import DetQKit
import Foundation
import ImageIO
import TensorCore

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time a model: latency, time and GFLOP/s per layer type, and sgemm on the same sizes.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var quantizedOptions: QuantizedModelOptions

    @Option(help: "Input size HxW (default: the model's own: 224x224 for classifiers, the config's size for detectors).")
    var size: String?

    @Option(help: "Timed runs after one warm-up.")
    var runs = 5

    @Option(help: "Write the figures as JSON to this file.")
    var json: String?

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        try checkOutputFile(json, option: "--json")
        if let size {
            guard let (height, width) = parseSize(size) else {
                throw ValidationError("--size must look like 800x1216, got '\(size)'")
            }
            // The images detq reads have the same bound (PIL's): past it, memory runs out, not the benchmark.
            let (pixels, overflow) = height.multipliedReportingOverflow(by: width)
            guard !overflow, pixels <= RGBImage.defaultMaxPixels else {
                throw ValidationError("--size \(size) has more than \(RGBImage.defaultMaxPixels) pixels, the most detq reads in an image")
            }
        }
    }

    func parseSize(_ text: String) -> (Int, Int)? {
        let parts = text.lowercased().split(separator: "x").compactMap { Int($0) }
        return parts.count == 2 && parts.allSatisfy { $0 > 0 } ? (parts[0], parts[1]) : nil
    }

    func run() throws {
        try global.apply()
        let size = self.size.flatMap(parseSize)
        let result = try runBenchmark(model: modelOptions.model, weights: modelOptions.weights,
                                      configPath: modelOptions.config, size: size, runs: runs,
                                      quantized: quantizedOptions.quantized, mode: quantizedOptions.mode)
        print(result.table)
        if let json { try writeAtomically(try encodeJSON(result), to: json) }
    }
}
