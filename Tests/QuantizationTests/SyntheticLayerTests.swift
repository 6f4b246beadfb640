// docs/arcq.md §3's synthetic linear layer: ARCQ W4A4 against RTN W4A4 and RTN W8A8.
import Foundation
import Layers
import Testing
import TensorCore
@testable import Quantization

@Suite struct SyntheticLayerTests {
    /// K = 576, 128 outputs, weights N(0, 0.05²), inputs ReLU(N(0.2, 1)), per-tensor min/max.
    /// The doc's figures: RTN W4A4 3.5e-2, ARCQ W4A4 3.4e-4, RTN W8A8 1.2e-4 (relative output MSE).
    @Test func arcqIsTwentyTimesBelowRoundToNearest() throws {
        let layer = randomLinear(576, 128, std: 0.05, bias: false, seed: 42)
        var generator = SeededGenerator(seed: 43)
        let normal = Tensor.randomNormal([2048, 576], mean: 0.2, std: 1, generator: &generator)
        let input = Tensor(shape: normal.shape, scalars: normal.scalars.map { max($0, 0) })
        let reference = layer.floatForward(input)
        let range = valueRange(input)

        func error(_ weightBits: Int, _ activationBits: Int, compensate: Bool, mode: ExecutionMode) -> Double {
            let quantized = minMaxQuantized(.linear(layer), weightBits: weightBits, activationBits: activationBits,
                                            inputRange: range, compensate: compensate)
            layer.executor = QuantizedExecutor(layer: quantized, mode: mode)
            defer { layer.executor = nil }
            return relativeMeanSquaredError(layer(input), reference: reference)
        }
        let rtn4 = error(4, 4, compensate: false, mode: .integer)
        let arcq4 = error(4, 4, compensate: true, mode: .integer)
        let rtn8 = error(8, 8, compensate: false, mode: .integer)
        print(String(format: "synthetic layer relative MSE: RTN W4A4 %.3e  ARCQ W4A4 %.3e  RTN W8A8 %.3e", rtn4, arcq4, rtn8))
        #expect(arcq4 * 20 <= rtn4)
        #expect(rtn8 < rtn4)
        // Simulation gives the same figures.
        #expect(abs(error(4, 4, compensate: true, mode: .simulated) - arcq4) <= 1e-3 * arcq4)
    }
}
