// Strict loading of a state dict into a layer tree: every key used once, every shape checked.
import Checkpoints
import TensorCore

/// Hands out parameters of a state dict by key and remembers what was asked for, so that
/// missing, unused and mis-shaped keys are all reported at the end in one error.
public final class ParameterLoader {
    private let stateDict: StateDict
    private let source: String
    private var used: Set<String> = []
    private var missing: [String] = []
    private var mismatched: [(key: String, expected: [Int], actual: [Int])] = []
    private var unreadable: [(key: String, reason: String)] = []

    /// `source` names the file in error messages.
    public init(_ stateDict: StateDict, source: String) {
        self.stateDict = stateDict
        self.source = source
    }

    /// The tensor stored under `key` as Float32 if present with exactly `shape`; otherwise
    /// records the problem and returns nil (the caller keeps its placeholder).
    public func take(_ key: String, shape: [Int]) -> Tensor? {
        guard let stored = stateDict[key] else {
            missing.append(key)
            return nil
        }
        used.insert(key)
        guard stored.shape == shape else {
            mismatched.append((key, shape, stored.shape))
            return nil
        }
        do {
            return try stored.floatTensor()
        } catch {
            unreadable.append((key, "\(error)"))
            return nil
        }
    }

    /// Marks `key` as known but unused by inference (e.g. `num_batches_tracked`); absent is fine.
    public func ignore(_ key: String) {
        if stateDict[key] != nil { used.insert(key) }
    }

    /// Throws one error listing every missing, unused, mis-shaped or unreadable key.
    public func finish() throws {
        let unused = stateDict.keys.filter { !used.contains($0) }
        guard missing.isEmpty && unused.isEmpty && mismatched.isEmpty && unreadable.isEmpty else {
            throw LoadError(source: source, missing: missing, unused: unused,
                            mismatched: mismatched, unreadable: unreadable)
        }
    }
}

/// A state dict that does not fit the model exactly.
public struct LoadError: Error, CustomStringConvertible {
    public let source: String
    public let missing: [String]
    public let unused: [String]
    public let mismatched: [(key: String, expected: [Int], actual: [Int])]
    public let unreadable: [(key: String, reason: String)]

    public var description: String {
        var parts: [String] = []
        func list(_ keys: [String]) -> String {
            keys.count <= 8 ? keys.joined(separator: ", ")
                : keys.prefix(8).joined(separator: ", ") + ", … (\(keys.count) in all)"
        }
        if !missing.isEmpty { parts.append("missing keys: \(list(missing))") }
        if !unused.isEmpty { parts.append("unused keys: \(list(unused))") }
        if !mismatched.isEmpty {
            parts.append("shape mismatch: " + mismatched.prefix(8).map {
                "\($0.key) expects \($0.expected) but the file has \($0.actual)"
            }.joined(separator: "; "))
        }
        if !unreadable.isEmpty {
            parts.append("unreadable: " + unreadable.prefix(8).map { "\($0.key): \($0.reason)" }.joined(separator: "; "))
        }
        return "weights \(source) do not fit the model: " + parts.joined(separator: "; ")
    }
}
