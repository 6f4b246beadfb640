// Loading a checkpoint into a layer tree: strict by default, batch norms folded afterwards.
import Checkpoints
import Detectors
import Layers

/// Loads `path` (.pth zip or legacy, or .safetensors) into `model` strictly, then folds
/// every frozen batch norm into its conv. A RetinaNet checkpoint saved before torchvision's
/// heads became `Conv2dNormActivation` (the COCO v1 checkpoint) has its head keys upgraded
/// first, as torchvision does when it loads one.
public func loadWeights(_ path: String, into model: any Module, foldNorms: Bool = true) throws {
    var stateDict = try loadCheckpoint(at: path)
    if model is RetinaNet { stateDict = upgradingLegacyRetinaNetKeys(stateDict) }
    try model.load(from: ParameterLoader(stateDict, source: path))
    if foldNorms { model.foldBatchNorms() }
}

/// `stateDict` with RetinaNet v1 head keys in torchvision 0.14's spelling
/// (`RetinaNetHead.upgradedLegacyKey`), order kept; unchanged when it has none of the old keys
/// or when an upgraded key is already present.
public func upgradingLegacyRetinaNetKeys(_ stateDict: StateDict) -> StateDict {
    let renamed = stateDict.keys.map { RetinaNetHead.upgradedLegacyKey($0) }
    guard renamed != stateDict.keys, Set(renamed).count == renamed.count else { return stateDict }
    var entries: [(key: String, tensor: StoredTensor)] = []
    for (old, new) in zip(stateDict.keys, renamed) {
        guard let tensor = stateDict[old] else { continue }
        entries.append((new, tensor))
    }
    return StateDict(entries, metadata: stateDict.metadata)
}
