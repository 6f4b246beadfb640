// `detq bench`: model latency, time and GFLOP/s per layer type, and sgemm on the same matrix sizes.
import Foundation
import Layers
import TensorCore

/// The kind of a conv or linear layer, as `detq bench` groups them.
public enum LayerKind: String, CaseIterable, Codable, Sendable {
    case conv1x1 = "conv 1×1"
    case convKxK = "conv k×k"
    case depthwise = "conv depthwise"
    case grouped = "conv grouped"
    case linear = "linear"

    static func of(_ conv: Conv2d) -> LayerKind {
        if conv.groups == 1 { return conv.kernelSize == Size2(1) ? .conv1x1 : .convKxK }
        return conv.groups == conv.inChannels ? .depthwise : .grouped
    }
}

/// Times every conv/linear call (delegating to any executor already installed, so a
/// quantized model is timed as it runs) and records the GEMM shape each one implies.
final class LayerTimer: LayerExecutor {
    struct Entry { var seconds = 0.0; var flops = 0.0; var calls = 0 }
    var entries: [LayerKind: Entry] = [:]
    /// (m, n, k) of the sgemm each non-depthwise conv/linear call amounts to.
    var gemmShapes: [LayerKind: [(m: Int, n: Int, k: Int)]] = [:]
    var recordShapes = true
    private var inner: [ObjectIdentifier: any LayerExecutor] = [:]

    func install(on model: any Module) {
        for (_, module) in model.namedModules() {
            if let conv = module as? Conv2d {
                if let existing = conv.executor { inner[ObjectIdentifier(conv)] = existing }
                conv.executor = self
            } else if let linear = module as? Linear {
                if let existing = linear.executor { inner[ObjectIdentifier(linear)] = existing }
                linear.executor = self
            }
        }
    }

    /// Puts the previous executors back.
    func uninstall(from model: any Module) {
        for (_, module) in model.namedModules() {
            if let conv = module as? Conv2d { conv.executor = inner[ObjectIdentifier(conv)] }
            if let linear = module as? Linear { linear.executor = inner[ObjectIdentifier(linear)] }
        }
    }

    func conv(_ layer: Conv2d, _ input: Tensor) -> Tensor {
        var output = input
        let seconds = measureSeconds {
            output = inner[ObjectIdentifier(layer)]?.conv(layer, input) ?? layer.floatForward(input)
        }
        let kind = LayerKind.of(layer)
        let (n, h, w) = (output.shape[0], output.shape[2], output.shape[3])
        let macs = Double(n) * Double(layer.macs(outputHeight: h, outputWidth: w))
        record(kind, seconds: seconds, flops: 2 * macs)
        if recordShapes && kind != .depthwise {
            let k = layer.inChannels / layer.groups * layer.kernelSize.h * layer.kernelSize.w
            for _ in 0..<(n * layer.groups) {
                gemmShapes[kind, default: []].append((layer.outChannels / layer.groups, h * w, k))
            }
        }
        return output
    }

    func linear(_ layer: Linear, _ input: Tensor) -> Tensor {
        var output = input
        let seconds = measureSeconds {
            output = inner[ObjectIdentifier(layer)]?.linear(layer, input) ?? layer.floatForward(input)
        }
        let rows = input.count / layer.inFeatures
        record(.linear, seconds: seconds, flops: 2 * Double(rows * layer.inFeatures * layer.outFeatures))
        if recordShapes { gemmShapes[.linear, default: []].append((rows, layer.outFeatures, layer.inFeatures)) }
        return output
    }

    private func record(_ kind: LayerKind, seconds: Double, flops: Double) {
        entries[kind, default: Entry()].seconds += seconds
        entries[kind, default: Entry()].flops += flops
        entries[kind, default: Entry()].calls += 1
    }
}

/// What `detq bench` measured.
public struct BenchmarkResult: Codable, Sendable {
    public struct Row: Codable, Sendable {
        public var kind: String
        public var layers: Int
        /// Median-run milliseconds spent in this kind of layer.
        public var milliseconds: Double
        public var gflops: Double
        /// sgemm alone on the same matrix sizes, GFLOP/s (nil for depthwise, which is no GEMM).
        public var sgemmGflops: Double?
    }
    public var model: String
    public var input: [Int]
    public var runs: Int
    public var threads: Int
    /// Median and minimum whole-forward latency.
    public var medianMilliseconds: Double
    public var minimumMilliseconds: Double
    public var rows: [Row]
    /// Time outside conv/linear (pooling, adds, activations, postprocess, …).
    public var otherMilliseconds: Double
}

/// Runs `forward` `runs` times after one warm-up, timing each conv/linear call of `model`.
public func benchmark(model: any Module, name: String, inputShape: [Int], runs: Int,
                      forward: () -> Void) -> BenchmarkResult {
    let timer = LayerTimer()
    timer.install(on: model)
    defer { timer.uninstall(from: model) }
    forward()  // warm-up; also records the GEMM shapes once
    timer.recordShapes = false
    timer.entries = [:]
    var latencies: [Double] = []
    for _ in 0..<runs { latencies.append(measureSeconds(forward)) }
    latencies.sort()
    let median = latencies[latencies.count / 2]
    var rows: [BenchmarkResult.Row] = []
    var layerSeconds = 0.0
    for kind in LayerKind.allCases {
        guard let entry = timer.entries[kind] else { continue }
        let seconds = entry.seconds / Double(runs)
        layerSeconds += seconds
        var sgemm: Double?
        if let shapes = timer.gemmShapes[kind], !shapes.isEmpty {
            // Time sgemm on each distinct shape, weighted by how often the model uses it.
            var counts: [String: (shape: (m: Int, n: Int, k: Int), count: Int)] = [:]
            for s in shapes { counts["\(s.m)x\(s.n)x\(s.k)", default: (s, 0)].count += 1 }
            var totalFlops = 0.0
            var totalSeconds = 0.0
            for (_, entry) in counts {
                let flops = 2 * Double(entry.shape.m * entry.shape.n * entry.shape.k)
                let repeats = max(1, min(50, Int(2e9 / max(flops, 1))))
                let rate = benchmarkSgemm(m: entry.shape.m, n: entry.shape.n, k: entry.shape.k, runs: repeats)
                totalFlops += flops * Double(entry.count)
                totalSeconds += flops * Double(entry.count) / (rate * 1e9)
            }
            sgemm = totalFlops / totalSeconds / 1e9
        }
        rows.append(.init(kind: kind.rawValue, layers: entry.calls / runs, milliseconds: seconds * 1000,
                          gflops: entry.flops / Double(runs) / seconds / 1e9, sgemmGflops: sgemm))
    }
    return BenchmarkResult(model: name, input: inputShape, runs: runs, threads: Threads.count,
                           medianMilliseconds: median * 1000, minimumMilliseconds: latencies[0] * 1000,
                           rows: rows, otherMilliseconds: max(0, median - layerSeconds) * 1000)
}

extension BenchmarkResult {
    /// A plain-text table.
    public var table: String {
        var lines = ["\(model) input \(input) — \(runs) runs, \(threads) threads: median \(String(format: "%.1f", medianMilliseconds)) ms, min \(String(format: "%.1f", minimumMilliseconds)) ms"]
        lines.append("  kind              layers      ms   GFLOP/s   sgemm GFLOP/s (same sizes)   ratio")
        for row in rows {
            let sgemm = row.sgemmGflops.map { String(format: "%8.1f", $0) } ?? "       –"
            let ratio = row.sgemmGflops.map { String(format: "%5.0f %%", 100 * row.gflops / $0) } ?? "     –"
            let kind = row.kind.padding(toLength: 16, withPad: " ", startingAt: 0)
            lines.append("  \(kind)" + String(format: " %6d %8.1f %9.1f", row.layers, row.milliseconds, row.gflops)
                         + "   \(sgemm)                     \(ratio)")
        }
        lines.append(String(format: "  other (pooling, adds, activations, postprocess) %.1f ms", otherMilliseconds))
        return lines.joined(separator: "\n")
    }
}
