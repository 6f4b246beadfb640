// Calibration (docs/arcq.md §6): observers on every in-scope layer record execution order, per-sample
// input ranges and a seeded reservoir of input patches with their float outputs.
import Foundation
import Layers
import TensorCore

/// A closed range of values.
public struct ValueRange: Sendable, Equatable, Codable {
    public var low: Float
    public var high: Float
    public init(low: Float, high: Float) {
        self.low = low
        self.high = high
    }
}

/// Patch rows sampled uniformly (without replacement) from every output position a layer
/// computed during calibration, with the float outputs at those positions.
public struct PatchSample: Sendable {
    /// Length of a patch row: all groups' patches side by side (`C·kH·kW`, or `in`).
    public let rowLength: Int
    /// Outputs per row (`O`).
    public let outputLength: Int
    /// `rows × rowLength` float inputs (zero where the conv pads).
    public internal(set) var patches: [Float]
    /// `rows × outputLength` float outputs, bias excluded.
    public internal(set) var targets: [Float]
    /// The call index within its forward (the pyramid level of a shared head) of each row.
    public internal(set) var levels: [Int]
    /// The min/max of the whole input of the call each row comes from (dynamic ranges).
    public internal(set) var callRanges: [ValueRange]

    public var rows: Int { levels.count }

    /// The first `count` rows (a uniform subset: reservoir slots are exchangeable).
    public func prefix(_ count: Int) -> PatchSample {
        let n = min(count, rows)
        var copy = self
        copy.patches = Array(patches[0..<(n * rowLength)])
        copy.targets = Array(targets[0..<(n * outputLength)])
        copy.levels = Array(levels[0..<n])
        copy.callRanges = Array(callRanges[0..<n])
        return copy
    }

    /// Rows `indices` of this sample.
    public func rows(_ indices: [Int]) -> PatchSample {
        var copy = self
        copy.patches = []
        copy.targets = []
        copy.patches.reserveCapacity(indices.count * rowLength)
        copy.targets.reserveCapacity(indices.count * outputLength)
        for index in indices {
            copy.patches += patches[(index * rowLength)..<((index + 1) * rowLength)]
            copy.targets += targets[(index * outputLength)..<((index + 1) * outputLength)]
        }
        copy.levels = indices.map { levels[$0] }
        copy.callRanges = indices.map { callRanges[$0] }
        return copy
    }
}

/// Each sample's input range over all its calls (`[sample][call]` → one range per sample that
/// reached the layer): the lowest low and the highest high.
func perSampleRanges(_ sampleRanges: [[ValueRange]]) -> [ValueRange] {
    sampleRanges.filter { !$0.isEmpty }.map { calls in
        ValueRange(low: calls.map(\.low).min() ?? 0, high: calls.map(\.high).max() ?? 0)
    }
}

/// What calibration learned about one layer.
public struct LayerCalibration: Sendable {
    public let path: String
    /// 1-based position of the layer's first call among the observed layers.
    public let executionIndex: Int
    /// Most calls in one sample's forward (1, or the number of levels a shared head sees).
    public let callsPerSample: Int
    /// Input min/max of every call, `[sample][call]`.
    public let sampleRanges: [[ValueRange]]
    /// Input percentiles of every call, `[sample][call]`, when requested.
    public let samplePercentiles: [[ValueRange]]?
    public let patches: PatchSample
    /// Output positions computed per sample, on average (for MAC counts).
    public let outputPositionsPerSample: Double
}

/// Runs `sampleCount` calibration samples through `run` with an observer on each layer of
/// `layers` and returns what each layer saw, in execution order.
///
/// The observers compute the float output (so the model behaves as in float) and record: the
/// order of first calls, each call's input min/max (and `percentile`, when given: the
/// `100 − p` and `p` percentiles of a ≤ 65,536-value subsample), and a reservoir of up to
/// `rowsPerLayer` patch rows (fewer for wide layers: at most `floatsPerLayer` floats of
/// patches and outputs) seeded by `options.seed` and the layer path. Executors installed
/// before are restored afterwards, whatever happens.
public func calibrate(layers: [(path: String, layer: QuantizableLayer)], sampleCount: Int,
                      options: CalibrationOptions, percentile: Double? = nil,
                      progress: ((Int, Int) -> Void)? = nil,
                      run: (Int) throws -> Void) throws -> [LayerCalibration] {
    precondition(sampleCount >= 1, "calibrate: needs at least one sample")
    let order = ExecutionCounter()
    let observers = layers.map { entry in
        CalibrationObserver(path: entry.path, layer: entry.layer, order: order, options: options, percentile: percentile)
    }
    let previous = layers.map(\.layer.executor)
    for (entry, observer) in zip(layers, observers) { entry.layer.executor = observer }
    defer { for (entry, executor) in zip(layers, previous) { entry.layer.executor = executor } }

    for sample in 0..<sampleCount {
        for observer in observers { observer.beginSample() }
        do {
            try run(sample)
        } catch {
            throw QuantizationError.calibrationFailed(sample: sample, reason: "\(error)")
        }
        progress?(sample + 1, sampleCount)
    }
    var results: [LayerCalibration] = []
    for observer in observers {
        guard let index = observer.executionIndex else { throw QuantizationError.layerNotExecuted(path: observer.path) }
        results.append(observer.result(executionIndex: index, samples: sampleCount))
    }
    // Renumber 1...L in first-call order among the observed layers.
    results.sort { $0.executionIndex < $1.executionIndex }
    return results.enumerated().map { position, calibration in
        LayerCalibration(path: calibration.path, executionIndex: position + 1, callsPerSample: calibration.callsPerSample,
                         sampleRanges: calibration.sampleRanges, samplePercentiles: calibration.samplePercentiles,
                         patches: calibration.patches, outputPositionsPerSample: calibration.outputPositionsPerSample)
    }
}

/// Hands out first-call positions.
final class ExecutionCounter {
    private(set) var next = 0
    func take() -> Int {
        next += 1
        return next
    }
}

/// The executor installed during calibration: float forward plus recording.
final class CalibrationObserver: LayerExecutor {
    let path: String
    let layer: QuantizableLayer
    private let order: ExecutionCounter
    private let percentile: Double?
    private(set) var executionIndex: Int?
    private var ranges: [[ValueRange]] = []
    private var percentiles: [[ValueRange]] = []
    private var positions: [Int] = []
    private var reservoir: PatchReservoir

    init(path: String, layer: QuantizableLayer, order: ExecutionCounter, options: CalibrationOptions, percentile: Double?) {
        self.path = path
        self.layer = layer
        self.order = order
        self.percentile = percentile
        let rowFloats = layer.patchLength + layer.outputs
        let capacity = max(min(options.rowsPerLayer, 32), min(options.rowsPerLayer, options.floatsPerLayer / max(1, rowFloats)))
        reservoir = PatchReservoir(capacity: capacity, rowLength: layer.patchLength, outputLength: layer.outputs,
                                   seed: options.seed ^ stableHash(path))
    }

    func beginSample() {
        ranges.append([])
        percentiles.append([])
        positions.append(0)
    }

    func conv(_ layer: Conv2d, _ input: Tensor) -> Tensor {
        let output = layer.floatForward(input)
        record(input: input, output: output) { position, row in
            extractConvPatch(input, layer: layer, outputShape: output.shape, position: position, into: row)
        }
        return output
    }

    func linear(_ layer: Linear, _ input: Tensor) -> Tensor {
        let output = layer.floatForward(input)
        let features = layer.inFeatures
        record(input: input, output: output) { position, row in
            input.withUnsafeBufferPointer { source in
                row.baseAddress!.update(from: source.baseAddress! + position * features, count: features)
            }
        }
        return output
    }

    /// Records one call: `extract(position, row)` writes the patch of output position `position`.
    private func record(input: Tensor, output: Tensor,
                        extract: (Int, UnsafeMutableBufferPointer<Float>) -> Void) {
        if executionIndex == nil { executionIndex = order.take() }
        precondition(!ranges.isEmpty, "CalibrationObserver: call outside a calibration sample")
        let level = ranges[ranges.count - 1].count
        let range = valueRange(input)
        ranges[ranges.count - 1].append(range)
        if let percentile {
            percentiles[percentiles.count - 1].append(percentileRange(input, percentile: percentile))
        }
        let outputs = layer.outputs
        // Output positions: [N, O, H, W] → N·H·W positions; [..., O] → rows.
        let spatial = output.rank == 4 ? output.shape[2] * output.shape[3] : 1
        let count = output.rank == 4 ? output.shape[0] * spatial : output.count / max(1, outputs)
        positions[positions.count - 1] += count
        let bias = layer.bias?.scalars
        output.withUnsafeBufferPointer { out in
            reservoir.offer(count: count, level: level, callRange: range) { position, row, target in
                extract(position, row)
                if output.rank == 4 {
                    let image = position / spatial, offset = position % spatial
                    for o in 0..<outputs {
                        target[o] = out[(image * outputs + o) * spatial + offset] - (bias?[o] ?? 0)
                    }
                } else {
                    for o in 0..<outputs { target[o] = out[position * outputs + o] - (bias?[o] ?? 0) }
                }
            }
        }
    }

    func result(executionIndex: Int, samples: Int) -> LayerCalibration {
        LayerCalibration(path: path, executionIndex: executionIndex,
                         callsPerSample: ranges.map(\.count).max() ?? 0,
                         sampleRanges: ranges, samplePercentiles: percentile == nil ? nil : percentiles,
                         patches: reservoir.sample,
                         outputPositionsPerSample: Double(positions.reduce(0, +)) / Double(max(1, samples)))
    }
}

/// The min and max of a tensor (0...0 when empty).
func valueRange(_ tensor: Tensor) -> ValueRange {
    tensor.withUnsafeBufferPointer { values in
        guard var low = values.first else { return ValueRange(low: 0, high: 0) }
        var high = low
        for value in values {
            low = min(low, value)
            high = max(high, value)
        }
        return ValueRange(low: low, high: high)
    }
}

/// The `100 − p` and `p` percentiles of a strided subsample of at most 65,536 values
/// (nearest rank on the sorted subsample).
func percentileRange(_ tensor: Tensor, percentile: Double) -> ValueRange {
    let count = tensor.count
    guard count > 0 else { return ValueRange(low: 0, high: 0) }
    let stride = max(1, count / 65_536)
    var values: [Float] = []
    values.reserveCapacity(count / stride + 1)
    tensor.withUnsafeBufferPointer { source in
        var index = 0
        while index < count {
            values.append(source[index])
            index += stride
        }
    }
    values.sort()
    let last = values.count - 1
    let upper = Int((percentile / 100 * Double(last)).rounded(.toNearestOrEven))
    let lower = Int(((100 - percentile) / 100 * Double(last)).rounded(.toNearestOrEven))
    return ValueRange(low: values[min(max(lower, 0), last)], high: values[min(max(upper, 0), last)])
}

/// Writes the im2col row of output position `position` (over `N·OH·OW`) of `layer` on `input`:
/// `row[(c·kH + i)·kW + j] = input[n, c, oh·sH − pH + i·dH, ow·sW − pW + j·dW]`, 0 outside.
func extractConvPatch(_ input: Tensor, layer: Conv2d, outputShape: [Int], position: Int,
                      into row: UnsafeMutableBufferPointer<Float>) {
    let (channels, height, width) = (input.shape[1], input.shape[2], input.shape[3])
    let (outputHeight, outputWidth) = (outputShape[2], outputShape[3])
    let spatial = outputHeight * outputWidth
    let image = position / spatial
    let oh = (position % spatial) / outputWidth, ow = position % outputWidth
    let (kernelH, kernelW) = (layer.kernelSize.h, layer.kernelSize.w)
    input.withUnsafeBufferPointer { source in
        var index = 0
        for c in 0..<channels {
            let plane = source.baseAddress! + (image * channels + c) * height * width
            for i in 0..<kernelH {
                let ih = oh * layer.stride.h - layer.padding.h + i * layer.dilation.h
                for j in 0..<kernelW {
                    let iw = ow * layer.stride.w - layer.padding.w + j * layer.dilation.w
                    row[index] = ih >= 0 && ih < height && iw >= 0 && iw < width ? plane[ih * width + iw] : 0
                    index += 1
                }
            }
        }
    }
}

/// FNV-1a of a string's UTF-8 bytes: a per-layer seed that is the same in every process.
func stableHash(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash = hash &* 0x0000_0100_0000_01B3
    }
    return hash
}

/// Reservoir sampling of patch rows over the stream of all output positions (Li's
/// Algorithm L: geometric skips, so only kept positions are ever extracted).
struct PatchReservoir {
    let capacity: Int
    private(set) var sample: PatchSample
    private var seen = 0
    private var nextKept = 0
    private var weight = 0.0
    private var generator: SeededGenerator

    init(capacity: Int, rowLength: Int, outputLength: Int, seed: UInt64) {
        self.capacity = max(1, capacity)
        sample = PatchSample(rowLength: rowLength, outputLength: outputLength, patches: [], targets: [],
                             levels: [], callRanges: [])
        generator = SeededGenerator(seed: seed)
    }

    /// A uniform Double in (0, 1).
    private mutating func uniform() -> Double {
        (Double(generator.next() >> 11) + 0.5) / 9_007_199_254_740_992
    }

    private mutating func skip() -> Int {
        Int((log(uniform()) / log(1 - weight)).rounded(.down)) + 1
    }

    /// Offers positions `0..<count` of one call; `fill(position, row, target)` writes a kept one.
    mutating func offer(count: Int, level: Int, callRange: ValueRange,
                        fill: (Int, UnsafeMutableBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) -> Void) {
        let rowLength = sample.rowLength, outputLength = sample.outputLength
        let start = seen
        var position = 0
        // Fill phase: the first `capacity` positions of the stream are kept.
        while position < count && seen < capacity {
            sample.patches += [Float](repeating: 0, count: rowLength)
            sample.targets += [Float](repeating: 0, count: outputLength)
            sample.levels.append(level)
            sample.callRanges.append(callRange)
            write(slot: seen, position: position, fill: fill)
            seen += 1
            position += 1
            if seen == capacity {
                weight = exp(log(uniform()) / Double(capacity))
                nextKept = capacity - 1 + skip()
            }
        }
        guard seen >= capacity else { return }
        // Skip phase: jump from kept position to kept position; each replaces a random slot.
        while nextKept < start + count {
            let slot = Int(generator.next() % UInt64(capacity))
            sample.levels[slot] = level
            sample.callRanges[slot] = callRange
            write(slot: slot, position: nextKept - start, fill: fill)
            weight *= exp(log(uniform()) / Double(capacity))
            nextKept += skip()
        }
        seen = start + count
    }

    private mutating func write(slot: Int, position: Int,
                                fill: (Int, UnsafeMutableBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) -> Void) {
        let rowLength = sample.rowLength, outputLength = sample.outputLength
        sample.patches.withUnsafeMutableBufferPointer { patches in
            sample.targets.withUnsafeMutableBufferPointer { targets in
                fill(position,
                     UnsafeMutableBufferPointer(rebasing: patches[(slot * rowLength)..<((slot + 1) * rowLength)]),
                     UnsafeMutableBufferPointer(rebasing: targets[(slot * outputLength)..<((slot + 1) * outputLength)]))
            }
        }
    }
}
