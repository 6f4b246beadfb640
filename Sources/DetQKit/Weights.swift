// Loading a checkpoint into a layer tree: strict by default, batch norms folded afterwards.
import Checkpoints
import Layers

/// Loads `path` (.pth zip or legacy, or .safetensors) into `model` strictly, then folds
/// every frozen batch norm into its conv.
public func loadWeights(_ path: String, into model: any Module, foldNorms: Bool = true) throws {
    let stateDict = try loadCheckpoint(at: path)
    try model.load(from: ParameterLoader(stateDict, source: path))
    if foldNorms { model.foldBatchNorms() }
}
