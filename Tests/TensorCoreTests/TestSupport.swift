// Shared tolerances, comparisons and random inputs for TensorCore's tests.
import Testing
@testable import TensorCore

/// How far a result may be from its reference: `|actual − expected| ≤ absolute + relative · |expected|`.
struct Tolerance: CustomStringConvertible {
    var absolute: Float
    var relative: Float

    /// Optimized kernel against its naive twin (Double accumulation, other summation order).
    static let kernel = Tolerance(absolute: 1e-4, relative: 1e-4)
    /// Against torch goldens.
    static let golden = Tolerance(absolute: 1e-5, relative: 1e-5)
    /// Bit for bit: ops that only move values, and ops whose rounding follows torch exactly.
    static let exact = Tolerance(absolute: 0, relative: 0)

    var description: String { "abs \(absolute) + rel \(relative)" }
}

/// Records an issue naming the worst element when `actual` and `expected` differ in shape or
/// beyond `tolerance`. NaN must meet NaN.
func expectClose(_ actual: Tensor, _ expected: Tensor, _ tolerance: Tolerance, _ context: @autoclosure () -> String = "",
                 sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.shape == expected.shape else {
        Issue.record("\(context()): shape \(actual.shape) ≠ expected \(expected.shape)", sourceLocation: sourceLocation)
        return
    }
    var worstExcess: Float = 0
    var worstIndex: Int?
    for i in 0..<actual.count {
        let a = actual.scalars[i], e = expected.scalars[i]
        if a.isNaN || e.isNaN {
            if a.isNaN != e.isNaN { worstIndex = i; worstExcess = .infinity; break }
            continue
        }
        let excess = abs(a - e) - (tolerance.absolute + tolerance.relative * abs(e))
        if excess > worstExcess || (excess > 0 && worstIndex == nil) {
            worstExcess = excess
            worstIndex = i
        }
    }
    if let worstIndex {
        Issue.record("""
            \(context()): element \(worstIndex) is \(actual.scalars[worstIndex]), expected \
            \(expected.scalars[worstIndex]) (tolerance \(tolerance), shape \(actual.shape))
            """, sourceLocation: sourceLocation)
    }
}

/// A seeded standard-normal tensor; `seed` keeps each test's inputs fixed.
func randomTensor(_ shape: [Int], seed: UInt64, std: Float = 1) -> Tensor {
    var generator = SeededGenerator(seed: seed)
    return Tensor.randomNormal(shape, std: std, generator: &generator)
}
