// Seeded random parameters for benchmarks of models without a checkpoint.
import Checkpoints
import Layers
import TensorCore

/// A state dict for `model` with seeded random values: He-scaled conv/linear weights, small
/// biases, and batch norms near the identity (variance kept positive).
public func randomStateDict(for model: any Module, seed: UInt64) -> StateDict {
    var generator = SeededGenerator(seed: seed)
    var dict = StateDict(metadata: [:])
    for (key, tensor) in model.namedParameters() {
        let shape = tensor.shape
        let values: Tensor
        if key.hasSuffix("running_var") {
            values = Tensor.randomUniform(shape, low: 0.8, high: 1.2, generator: &generator)
        } else if key.hasSuffix("running_mean") || key.hasSuffix("bias") {
            values = Tensor.randomNormal(shape, std: 0.05, generator: &generator)
        } else if shape.count == 1 {
            values = Tensor.randomNormal(shape, mean: 1, std: 0.05, generator: &generator)
        } else {
            let fanIn = shape.dropFirst().reduce(1, *)
            values = Tensor.randomNormal(shape, std: (2 / Float(max(fanIn, 1))).squareRoot(), generator: &generator)
        }
        dict[key] = StoredTensor(values)
    }
    return dict
}
