// An ordered map from checkpoint key to stored tensor, plus string metadata.

/// Tensors by key, in file order, with the string metadata a safetensors file carries.
///
/// Keys keep torchvision's spelling (`backbone.body.conv1.weight`). Assigning a tensor to a
/// new key appends it; assigning nil removes the key.
public struct StateDict: Sendable, Equatable {
    /// The keys in file order (for safetensors: data-offset order).
    public private(set) var keys: [String] = []
    private var tensors: [String: StoredTensor] = [:]
    /// String metadata (`__metadata__` in safetensors; empty for torch checkpoints).
    public var metadata: [String: String]

    /// An empty state dict with the given metadata.
    public init(metadata: [String: String] = [:]) {
        self.metadata = metadata
    }

    /// A state dict with `entries` in order; keys must be distinct.
    public init(_ entries: [(key: String, tensor: StoredTensor)], metadata: [String: String] = [:]) {
        self.metadata = metadata
        for (key, tensor) in entries {
            precondition(tensors[key] == nil, "StateDict: duplicate key '\(key)'")
            keys.append(key)
            tensors[key] = tensor
        }
    }

    /// The tensor stored under `key`, or nil.
    public subscript(key: String) -> StoredTensor? {
        get { tensors[key] }
        set {
            if let newValue {
                if tensors.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if tensors.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    /// Number of tensors.
    public var count: Int { keys.count }

    /// Whether `key` is present.
    public func contains(_ key: String) -> Bool { tensors[key] != nil }
}
