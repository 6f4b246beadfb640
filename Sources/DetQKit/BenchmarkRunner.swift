// Chooses what `detq bench` runs: a classifier on a random image, or a detector end to end.
import Detectors
import Foundation
import Layers
import Quantization
import TensorCore

/// Benchmarks `model` (a classifier or a detector) on a seeded random input. Without weights
/// every parameter gets seeded random values, so the arithmetic is realistic (no zeros).
///
/// With `quantized` (a `detq quantize` file made for the same model and weights) the quantized
/// model runs, in `mode` (default: the file's).
public func runBenchmark(model: String, weights: String?, configPath: String?, size: (Int, Int)?,
                         runs: Int, quantized: String? = nil, mode: ExecutionMode? = nil) throws -> BenchmarkResult {
    if quantized != nil && weights == nil {
        throw ModelDescriptionError("--quantized needs the --weights it was made from")
    }
    let url = try ModelCatalog.configURL(model: model, configPath: configPath)
    struct Task: Decodable { var task: String? }
    let task = try ModelCatalog.decode(Task.self, from: url).task ?? "detection"
    var generator = SeededGenerator(seed: 0)
    if task == "classification" {
        let config = try ModelCatalog.decode(ClassifierConfig.self, from: url)
        let network = try makeClassifier(config)
        try prepare(network, weights: weights)
        if let quantized { _ = try installQuantized(quantized, on: network, modelName: model, mode: mode) }
        let (h, w) = size ?? (config.cropSize, config.cropSize)
        let input = Tensor.randomUniform([1, 3, h, w], low: -2, high: 2, generator: &generator)
        return benchmark(model: network, name: model, inputShape: input.shape, runs: runs) { _ = network(input) }
    }
    let config = try ModelCatalog.decode(DetectorConfig.self, from: url)
    let detector = try makeDetector(config)
    try prepare(detector, weights: weights)
    if let quantized { _ = try installQuantized(quantized, on: detector, modelName: model, mode: mode) }
    let (h, w) = size ?? (config.fixedSize.map { ($0[0], $0[1]) } ?? (config.minSize, config.minSize * 4 / 3))
    let image = Tensor.randomUniform([3, h, w], generator: &generator)
    return benchmark(model: detector, name: model, inputShape: [1, 3, h, w], runs: runs) { _ = detector([image]) }
}

/// Loads weights, or fills every parameter with seeded random values of a sensible scale.
func prepare(_ model: any Module, weights: String?) throws {
    if let weights {
        try loadWeights(weights, into: model)
        return
    }
    try model.load(from: ParameterLoader(randomStateDict(for: model, seed: 0), source: "random weights"))
    model.foldBatchNorms()
}
