// torchvision's SSDHead and SSDScoringHead (models/detection/ssd.py): one predictor per feature level, outputs gathered per default box.
import Layers
import TensorCore

/// Predictors `module_list.i`, one per feature level, each mapping `[N, C_i, H_i, W_i]` to
/// `[N, A_i · K, H_i, W_i]`; the outputs are laid out as `[N, H_i · W_i · A_i, K]` (location,
/// then default box) and concatenated over levels into `[N, Σ H_i·W_i·A_i, K]`.
public final class SSDScoringHead: Module {
    public let moduleList: [any Layer]
    /// `K`: classes for the classification head, 4 for the regression head.
    public let numColumns: Int

    public init(moduleList: [any Layer], numColumns: Int) {
        self.moduleList = moduleList
        self.numColumns = numColumns
    }

    public var children: [(name: String, module: any Module)] {
        moduleList.enumerated().map { ("module_list.\($0.offset)", $0.element as any Module) }
    }

    /// `[N, Σ H_i·W_i·A_i, K]` for the feature maps of every level.
    public func callAsFunction(_ features: [Tensor]) -> Tensor {
        precondition(features.count == moduleList.count,
                     "SSDScoringHead: \(features.count) feature maps for \(moduleList.count) predictors")
        let outputs = zip(moduleList, features).map { layer, x in layer(x) }
        let batch = features.first?.shape[0] ?? 0
        let columns = numColumns
        let rowsPerLevel = outputs.map { output -> Int in
            precondition(output.rank == 4 && output.shape[1] % columns == 0,
                         "SSDScoringHead: predictor output \(output.shape) is not [N, A·\(columns), H, W]")
            return output.shape[1] / columns * output.shape[2] * output.shape[3]
        }
        let totalRows = rowsPerLevel.reduce(0, +)
        return Tensor(shape: [batch, totalRows, columns]) { result in
            var firstRow = 0
            for (level, output) in outputs.enumerated() {
                let anchors = output.shape[1] / columns
                let plane = output.shape[2] * output.shape[3]
                output.withUnsafeBufferPointer { source in
                    // (N, A·K, H, W) -> (N, H, W, A, K) -> (N, H·W·A, K)
                    for n in 0..<batch {
                        let input = source.baseAddress! + n * output.shape[1] * plane
                        let destination = result.baseAddress! + (n * totalRows + firstRow) * columns
                        for a in 0..<anchors {
                            for k in 0..<columns {
                                let channel = input + (a * columns + k) * plane
                                var target = destination + a * columns + k
                                for position in 0..<plane {
                                    target.pointee = channel[position]
                                    target += anchors * columns
                                }
                            }
                        }
                    }
                }
                firstRow += rowsPerLevel[level]
            }
        }
    }
}

/// SSD's `head`: `classification_head` (K = classes, background included) and
/// `regression_head` (K = 4 box codes).
public final class SSDHead: Module {
    public let classificationHead: SSDScoringHead
    public let regressionHead: SSDScoringHead

    public init(classificationHead: SSDScoringHead, regressionHead: SSDScoringHead) {
        self.classificationHead = classificationHead
        self.regressionHead = regressionHead
    }

    /// torchvision's `SSDHead`: a 3×3 conv (padding 1, with bias) per level for each head.
    public convenience init(inChannels: [Int], anchorsPerLocation: [Int], numClasses: Int) {
        precondition(inChannels.count == anchorsPerLocation.count,
                     "SSDHead: \(inChannels.count) levels of channels, \(anchorsPerLocation.count) of anchors")
        func predictors(_ columns: Int) -> [any Layer] {
            zip(inChannels, anchorsPerLocation).map { channels, anchors in
                Conv2d(channels, columns * anchors, kernelSize: 3, padding: 1)
            }
        }
        self.init(classificationHead: SSDScoringHead(moduleList: predictors(numClasses), numColumns: numClasses),
                  regressionHead: SSDScoringHead(moduleList: predictors(4), numColumns: 4))
    }

    public var children: [(name: String, module: any Module)] {
        [("classification_head", classificationHead), ("regression_head", regressionHead)]
    }

    /// Box codes `[N, D, 4]` and class logits `[N, D, K]` for the `D` default boxes of `features`.
    public func callAsFunction(_ features: [Tensor]) -> (boxRegression: Tensor, classLogits: Tensor) {
        (regressionHead(features), classificationHead(features))
    }
}
