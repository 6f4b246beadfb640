// Loading of the torchvision goldens (written by detectors/tools/make_boxops_goldens.py) and
// the tolerance every BoxOps comparison uses.
import Foundation
import Testing
import TensorCore

/// Fixtures live next to this file; the test target declares no resources, so they are found
/// through `#filePath`.
enum Fixture {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func load<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
        let data = try Data(contentsOf: directory.appendingPathComponent(name))
        return try JSONDecoder().decode(T.self, from: data)
    }
}

/// Values agree when `|actual - expected| <= tolerance * max(1, |expected|)`: 1e-5 relative for
/// pixel coordinates in the hundreds, 1e-5 absolute below 1.
let defaultTolerance: Float = 1e-5

func close(_ actual: Float, _ expected: Float, tolerance: Float = defaultTolerance) -> Bool {
    abs(actual - expected) <= tolerance * max(1, abs(expected))
}

/// Expects equal counts and every element close; reports the first mismatch.
func expectClose(_ actual: [Float], _ expected: [Float], tolerance: Float = defaultTolerance,
                 _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, "\(what): \(actual.count) values, expected \(expected.count)",
            sourceLocation: sourceLocation)
    guard actual.count == expected.count else { return }
    var mismatches = 0
    var first = ""
    for index in actual.indices where !close(actual[index], expected[index], tolerance: tolerance) {
        if mismatches == 0 { first = "index \(index): \(actual[index]) vs \(expected[index])" }
        mismatches += 1
    }
    #expect(mismatches == 0, "\(what): \(mismatches) values differ, first at \(first)", sourceLocation: sourceLocation)
}

extension Tensor {
    /// A `[count / width, width]` tensor from flat values.
    static func rows(_ values: [Float], width: Int) -> Tensor {
        Tensor(shape: [values.count / width, width], scalars: values)
    }
}
