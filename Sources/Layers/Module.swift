// The layer tree: torchvision's nn.Module hierarchy as Swift classes, addressed by state-dict paths.
import TensorCore

/// A node of a model tree. Its parameters carry torchvision's `state_dict()` names, so a
/// checkpoint loads by path (`backbone.body.layer1.0.conv1.weight`) with no renaming.
///
/// Modules are classes: quantization and batch-norm folding change layers in place, and
/// every consumer sees the change.
public protocol Module: AnyObject {
    /// Direct children in registration order, with their state-dict names (`"0"`, `"conv1"`).
    var children: [(name: String, module: any Module)] { get }
    /// Loads this module's own parameters (not its children's) under `prefix` (ends in `.` or is empty).
    func loadOwnParameters(from loader: ParameterLoader, prefix: String)
    /// This module's own parameters by name, for saving (`weight`, `bias`, `running_mean`).
    var ownParameters: [(name: String, tensor: Tensor)] { get }
    /// Conv/batch-norm pairs this module applies in sequence, for folding.
    var batchNormPairs: [(conv: Conv2d, norm: BatchNorm2d)] { get }
}

extension Module {
    public var children: [(name: String, module: any Module)] { [] }
    public func loadOwnParameters(from loader: ParameterLoader, prefix: String) {}
    public var ownParameters: [(name: String, tensor: Tensor)] { [] }
    public var batchNormPairs: [(conv: Conv2d, norm: BatchNorm2d)] { [] }

    /// Every module of the tree with its dotted path (`""` for the root), depth first, in
    /// registration order.
    public func namedModules(prefix: String = "") -> [(path: String, module: any Module)] {
        var result: [(path: String, module: any Module)] = [(prefix, self)]
        for (name, child) in children {
            let childPath = prefix.isEmpty ? name : prefix + "." + name
            result += child.namedModules(prefix: childPath)
        }
        return result
    }

    /// Every parameter of the tree under its full state-dict key.
    public func namedParameters() -> [(key: String, tensor: Tensor)] {
        namedModules().flatMap { path, module in
            module.ownParameters.map { (path.isEmpty ? $0.name : path + "." + $0.name, $0.tensor) }
        }
    }

    /// Loads every parameter of the tree from `loader` and verifies the state dict was used
    /// exactly: missing, unused and mis-shaped keys are reported together in one error.
    public func load(from loader: ParameterLoader) throws {
        for (path, module) in namedModules() {
            module.loadOwnParameters(from: loader, prefix: path.isEmpty ? "" : path + ".")
        }
        try loader.finish()
    }

    /// Folds every frozen batch norm into the conv before it (conv ∘ bn → conv'), in place.
    /// Idempotent.
    public func foldBatchNorms() {
        for (_, module) in namedModules() {
            for (conv, norm) in module.batchNormPairs where !norm.isFolded {
                conv.fold(norm)
            }
        }
    }
}

/// A module that maps one tensor to one tensor.
public protocol Layer: Module {
    func callAsFunction(_ input: Tensor) -> Tensor
}

/// torchvision's `nn.Sequential`: children named `"0"`, `"1"`, … applied in order.
/// A `nil` entry keeps an index that has no parameters and no effect (e.g. `Dropout` at
/// inference), so later indices keep their checkpoint names.
public final class Sequential: Layer {
    public let layers: [(any Layer)?]

    public init(_ layers: [(any Layer)?]) { self.layers = layers }

    public var children: [(name: String, module: any Module)] {
        layers.enumerated().compactMap { index, layer in layer.map { (String(index), $0 as any Module) } }
    }

    public var batchNormPairs: [(conv: Conv2d, norm: BatchNorm2d)] {
        // A conv directly followed by a batch norm, as in torchvision's Conv2dNormActivation.
        var pairs: [(conv: Conv2d, norm: BatchNorm2d)] = []
        for index in layers.indices.dropLast() {
            if let conv = layers[index] as? Conv2d, let norm = layers[index + 1] as? BatchNorm2d {
                pairs.append((conv, norm))
            }
        }
        return pairs
    }

    public func callAsFunction(_ input: Tensor) -> Tensor {
        var x = input
        for case let layer? in layers { x = layer(x) }
        return x
    }
}

/// An elementwise activation with no parameters.
public final class Activation: Layer {
    public enum Kind: String, Sendable, Codable { case relu, relu6, hardswish, hardsigmoid, sigmoid }
    public let kind: Kind
    public init(_ kind: Kind) { self.kind = kind }

    public func callAsFunction(_ input: Tensor) -> Tensor {
        switch kind {
        case .relu: relu(input)
        case .relu6: relu6(input)
        case .hardswish: hardswish(input)
        case .hardsigmoid: hardsigmoid(input)
        case .sigmoid: sigmoid(input)
        }
    }
}

/// `nn.Identity`.
public final class Identity: Layer {
    public init() {}
    public func callAsFunction(_ input: Tensor) -> Tensor { input }
}
