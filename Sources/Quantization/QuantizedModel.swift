// A quantized model: the recipe and its quantized layers; installs executors on a float model tree.
import Layers

/// The quantized layers of a model and the recipe that made them.
///
/// It does not own the model: `install(on:mode:)` puts a `QuantizedExecutor` on each layer of
/// a model built from the same description and weights (batch norms folded).
public struct QuantizedModel: Sendable, Equatable {
    public var recipe: QuantizationRecipe
    /// In execution order.
    public var layers: [QuantizedLayer]

    public init(recipe: QuantizationRecipe, layers: [QuantizedLayer]) {
        self.recipe = recipe
        self.layers = layers
    }

    /// Installs an executor of `mode` on each quantized layer of `model` and returns them.
    /// Throws when a path is missing or its layer has another shape or geometry than the one
    /// quantized.
    @discardableResult
    public func install(on model: any Module, mode: ExecutionMode) throws -> [QuantizedExecutor] {
        let modules = Dictionary(model.namedModules().map { ($0.path, $0.module) }, uniquingKeysWith: { first, _ in first })
        var pairs: [(QuantizableLayer, QuantizedExecutor)] = []
        for (layer, entry) in zip(layers, recipe.layers) {
            guard let module = modules[layer.path], let target = QuantizableLayer(module) else {
                throw QuantizationError.unknownLayer(path: layer.path, reason: "the model has no conv or linear layer here")
            }
            guard target.signature == entry.signature else {
                throw QuantizationError.unknownLayer(
                    path: layer.path, reason: "quantized as \(entry.signature), but the model has \(target.signature)")
            }
            pairs.append((target, QuantizedExecutor(layer: layer, mode: mode)))
        }
        for (target, executor) in pairs { target.executor = executor }
        return pairs.map(\.1)
    }

    /// Removes every executor from `model`'s conv and linear layers (back to float).
    public static func uninstall(from model: any Module) {
        for (_, module) in model.namedModules() { QuantizableLayer(module)?.executor = nil }
    }
}
