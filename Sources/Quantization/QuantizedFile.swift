// The quantized safetensors file (SPEC.md `quantize --out`, format `detq-quantized/1`): write and verified load.
import Checkpoints
import Foundation
import Layers
import TensorCore

/// Tensors, per quantized layer path `P`:
///
/// | key | dtype, shape | holds |
/// | --- | --- | --- |
/// | `P.weight_q` | I8, the weight's shape | signed codes `q − 2^(b−1)`, `q = clamp(rnd(W/s) + z, 0, 2^b − 1)` |
/// | `P.weight_scale` | F32 `[1]` or `[O]` | `s_w` per tensor or output channel |
/// | `P.weight_zero_point` | I32 `[1]` or `[O]` | signed zero point `z − 2^(b−1)`; `W_c = weight_q − weight_zero_point` |
/// | `P.weight_remainder` | I8, the weight's shape | ARCQ's `D_w ∈ [−2^(b−1), 2^(b−1)]` (compensated weights only) |
/// | `P.input_range` | F32 `[calls, 2]` | static activation ranges `[low, high]` by call index |
/// | `P.input_clip` | F32 `[2]` | dynamic mode: factors on the input's `[min, max]` |
/// | `P.bias` | F32 `[O]` | the float bias (folded batch norm, bias correction) |
///
/// Every other parameter of the model stays float under its state-dict key. Metadata:
/// `format` (`detq-quantized/1`), `model`, `recipe` (the `QuantizationRecipe` as JSON,
/// snake_case keys; its `layers` list says what each layer stores) and `weights_checksum`
/// (FNV-1a over the float model's parameters, batch norms folded: the weights it was made from).
extension QuantizedModel {
    /// The file's tensors and metadata; `model` supplies the float parameters that stay float.
    public func stateDict(floatParametersOf model: any Module) throws -> StateDict {
        var dict = StateDict(metadata: ["format": QuantizationRecipe.formatTag, "model": recipe.model,
                                        "recipe": try encodeRecipe(recipe), "weights_checksum": weightsChecksum(model)])
        let quantizedPaths = Set(layers.map(\.path))
        for (path, module) in model.namedModules() where !quantizedPaths.contains(path) {
            for parameter in module.ownParameters {
                dict[path.isEmpty ? parameter.name : path + "." + parameter.name] = StoredTensor(parameter.tensor)
            }
        }
        for layer in layers {
            let p = layer.path
            let offset = Int32(1 << (layer.weightBits - 1))
            dict[p + ".weight_q"] = .int8(zip(layer.weightCodes.indices, layer.weightCodes).map { index, code in
                Int8(code + layer.weightQuantizer(index / (layer.weightCodes.count / layer.outputs)).zeroPoint - offset)
            }, shape: layer.weightShape)
            dict[p + ".weight_scale"] = StoredTensor(Tensor(shape: [layer.weightQuantizers.count],
                                                            scalars: layer.weightQuantizers.map(\.scale)))
            dict[p + ".weight_zero_point"] = .int32(layer.weightQuantizers.map { $0.zeroPoint - offset },
                                                    shape: [layer.weightQuantizers.count])
            if let remainders = layer.weightRemainders {
                dict[p + ".weight_remainder"] = .int8(remainders.map { Int8($0) }, shape: layer.weightShape)
            }
            switch layer.activation.mode {
            case .static:
                dict[p + ".input_range"] = StoredTensor(Tensor(shape: [layer.activation.ranges.count, 2],
                                                               scalars: layer.activation.ranges.flatMap { [$0.low, $0.high] }))
            case .dynamic:
                dict[p + ".input_clip"] = StoredTensor(Tensor(shape: [2],
                                                              scalars: [layer.activation.clip.low, layer.activation.clip.high]))
            }
            if let bias = layer.bias { dict[p + ".bias"] = StoredTensor(Tensor(shape: [bias.count], scalars: bias)) }
        }
        return dict
    }

    /// Writes the file atomically.
    public func write(to path: String, floatParametersOf model: any Module) throws {
        try writeSafeTensors(try stateDict(floatParametersOf: model), to: path)
    }

    /// Reads a quantized file made for `modelName` and checks it against `model` (built from
    /// the same description and weights, batch norms folded): the format tag, the model name,
    /// every quantized layer's path, shape and geometry, and every float parameter's shape and
    /// value. Throws an error naming the first thing that differs.
    public static func load(from path: String, model: any Module, modelName: String) throws -> QuantizedModel {
        try load(from: try readSafeTensors(at: path), source: path, model: model, modelName: modelName)
    }

    /// `load(from:model:modelName:)` on a state dict already read; `source` names it in errors.
    public static func load(from dict: StateDict, source: String, model: any Module, modelName: String) throws -> QuantizedModel {
        func incompatible(_ reason: String) -> QuantizationError { .incompatibleFile(source: source, reason: reason) }
        guard let format = dict.metadata["format"] else {
            throw incompatible("not a detq quantized file (no 'format' in the safetensors metadata)")
        }
        guard format == QuantizationRecipe.formatTag else {
            throw incompatible("format '\(format)' is not '\(QuantizationRecipe.formatTag)'")
        }
        guard let fileModel = dict.metadata["model"], fileModel == modelName else {
            throw incompatible("made for model '\(dict.metadata["model"] ?? "?")', not '\(modelName)'")
        }
        guard let recipeText = dict.metadata["recipe"] else { throw incompatible("metadata has no 'recipe'") }
        let recipe: QuantizationRecipe
        do {
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            recipe = try decoder.decode(QuantizationRecipe.self, from: Data(recipeText.utf8))
        } catch {
            throw incompatible("unreadable recipe: \(error)")
        }

        let modules = Dictionary(model.namedModules().map { ($0.path, $0.module) }, uniquingKeysWith: { first, _ in first })
        var used: Set<String> = []
        func take(_ key: String, dtype: DType, shape: [Int]) throws -> StoredTensor {
            guard let tensor = dict[key] else { throw incompatible("missing tensor '\(key)'") }
            guard tensor.dtype == dtype, tensor.shape == shape else {
                throw incompatible("tensor '\(key)' is \(tensor.dtype.rawValue) \(tensor.shape), expected \(dtype.rawValue) \(shape)")
            }
            used.insert(key)
            return tensor
        }

        var layers: [QuantizedLayer] = []
        for entry in recipe.layers {
            guard let module = modules[entry.path], let target = QuantizableLayer(module) else {
                throw incompatible("layer '\(entry.path)' is not a conv or linear layer of model '\(modelName)'")
            }
            guard target.signature == entry.signature else {
                throw incompatible("layer '\(entry.path)' was quantized as \(entry.signature); the model has \(target.signature)")
            }
            guard (1...8).contains(entry.weightBits), (1...16).contains(entry.activationBits) else {
                throw incompatible("layer '\(entry.path)': unsupported bits W\(entry.weightBits)A\(entry.activationBits)")
            }
            let p = entry.path
            let outputs = entry.weightShape.first ?? 0
            guard entry.weightQuantizerCount == 1 || entry.weightQuantizerCount == outputs else {
                throw incompatible("layer '\(p)': \(entry.weightQuantizerCount) weight quantizers for \(outputs) outputs")
            }
            let offset = Int32(1 << (entry.weightBits - 1))
            let maximum = Int32((1 << entry.weightBits) - 1)
            let codes = try take(p + ".weight_q", dtype: .int8, shape: entry.weightShape).int8Values()
            let scales = try take(p + ".weight_scale", dtype: .float32, shape: [entry.weightQuantizerCount]).floatTensor().scalars
            let zeros = try take(p + ".weight_zero_point", dtype: .int32, shape: [entry.weightQuantizerCount]).int32Values()
            var quantizers: [AffineQuantizer] = []
            for (scale, zero) in zip(scales, zeros) {
                guard scale > 0, scale.isFinite, (0...maximum).contains(zero + offset) else {
                    throw incompatible("layer '\(p)': invalid weight scale \(scale) or zero point \(zero)")
                }
                quantizers.append(AffineQuantizer(bits: entry.weightBits, scale: scale, zeroPoint: zero + offset))
            }
            let rowLength = codes.count / max(1, outputs)
            var centred = [Int32](repeating: 0, count: codes.count)
            for index in codes.indices {
                let quantizer = quantizers.count == 1 ? quantizers[0] : quantizers[index / max(1, rowLength)]
                let code = Int32(codes[index]) + offset
                guard (0...maximum).contains(code) else {
                    throw incompatible("layer '\(p)': weight code \(codes[index]) outside \(entry.weightBits) bits")
                }
                centred[index] = code - quantizer.zeroPoint
            }
            var remainders: [Int32]?
            if entry.compensatesWeights {
                let values = try take(p + ".weight_remainder", dtype: .int8, shape: entry.weightShape).int8Values()
                let bound = Int32(1 << (entry.weightBits - 1))
                guard values.allSatisfy({ abs(Int32($0)) <= bound }) else {
                    throw incompatible("layer '\(p)': remainder codes outside [−\(bound), \(bound)]")
                }
                remainders = values.map { Int32($0) }
            }
            let activation: ActivationQuantization
            switch entry.activationMode {
            case .static:
                guard entry.activationRangeCount >= 1 else { throw incompatible("layer '\(p)': no static activation range") }
                let values = try take(p + ".input_range", dtype: .float32, shape: [entry.activationRangeCount, 2])
                    .floatTensor().scalars
                activation = ActivationQuantization(bits: entry.activationBits, mode: .static, ranges: (0..<entry.activationRangeCount).map {
                    ValueRange(low: values[2 * $0], high: values[2 * $0 + 1])
                })
            case .dynamic:
                let values = try take(p + ".input_clip", dtype: .float32, shape: [2]).floatTensor().scalars
                activation = ActivationQuantization(bits: entry.activationBits, mode: .dynamic, ranges: [],
                                                    clip: ValueRange(low: values[0], high: values[1]))
            }
            let bias = entry.hasBias ? try take(p + ".bias", dtype: .float32, shape: [outputs]).floatTensor().scalars : nil
            layers.append(QuantizedLayer(path: p, part: entry.part, executionIndex: entry.executionIndex, kind: entry.kind,
                                         weightShape: entry.weightShape, weightBits: entry.weightBits,
                                         weightQuantizers: quantizers, weightCodes: centred, weightRemainders: remainders,
                                         activation: activation, compensatesActivations: entry.compensatesActivations,
                                         remainderMode: entry.remainderMode, bias: bias))
        }

        // The float parameters must be the model's own: same keys, shapes and values.
        let quantizedPaths = Set(recipe.layers.map(\.path))
        for (path, module) in model.namedModules() where !quantizedPaths.contains(path) {
            for parameter in module.ownParameters {
                let key = path.isEmpty ? parameter.name : path + "." + parameter.name
                guard let stored = dict[key] else {
                    throw incompatible("missing float parameter '\(key)' of model '\(modelName)'")
                }
                guard stored.shape == parameter.tensor.shape else {
                    throw incompatible("float parameter '\(key)' has shape \(stored.shape), the model has \(parameter.tensor.shape)")
                }
                guard try stored.floatTensor().scalars == parameter.tensor.scalars else {
                    throw incompatible("float parameter '\(key)' differs from the loaded weights (made from other weights?)")
                }
                used.insert(key)
            }
        }
        if let checksum = dict.metadata["weights_checksum"], checksum != weightsChecksum(model) {
            throw incompatible("made from other weights than those loaded (weights checksum differs)")
        }
        if let extra = dict.keys.first(where: { !used.contains($0) }) {
            throw incompatible("tensor '\(extra)' belongs to no layer of model '\(modelName)'")
        }
        return QuantizedModel(recipe: recipe, layers: layers)
    }
}

/// The recipe as compact snake_case JSON with sorted keys.
/// The recipe as the compact snake_case JSON stored in a quantized file's metadata.
public func encodeRecipe(_ recipe: QuantizationRecipe) throws -> String {
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(recipe), as: UTF8.self)
}

/// FNV-1a (64-bit, hex) over every parameter's key and Float32 bits, in tree order.
public func weightsChecksum(_ model: any Module) -> String {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    func mix(_ byte: UInt8) {
        hash ^= UInt64(byte)
        hash = hash &* 0x0000_0100_0000_01B3
    }
    for (key, tensor) in model.namedParameters() {
        for byte in key.utf8 { mix(byte) }
        for dimension in tensor.shape { withUnsafeBytes(of: UInt64(dimension).littleEndian) { $0.forEach(mix) } }
        tensor.withUnsafeBufferPointer { values in UnsafeRawBufferPointer(values).forEach(mix) }
    }
    return String(hash, radix: 16)
}
