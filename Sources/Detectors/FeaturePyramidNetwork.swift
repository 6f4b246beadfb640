// torchvision.ops.FeaturePyramidNetwork (Lin et al. 2017) with its extra blocks (max pool, P6/P7).
import Layers
import TensorCore

/// What the FPN appends after its own levels.
public enum ExtraFPNBlock: Sendable, Equatable {
    /// `LastLevelMaxPool`: max pool (kernel 1, stride 2) of the last level.
    case maxPool
    /// `LastLevelP6P7(in, out)`: P6 = conv3×3/2 of P5 (when `in == out`) or of C5; P7 = conv3×3/2 of relu(P6).
    case p6p7(inChannels: Int)
    case none
}

/// Top-down feature pyramid: 1×1 lateral convs (`inner_blocks.i.0`), nearest upsampling and
/// sum, 3×3 output convs (`layer_blocks.i.0`), then the extra block (`extra_blocks.p6/p7`).
/// With `normEps` the convs have no bias and a batch norm follows (`.1`), as with
/// `norm_layer=BatchNorm2d` in torchvision's v2 models.
public final class FeaturePyramidNetwork: Module {
    public let innerBlocks: [Sequential]
    public let layerBlocks: [Sequential]
    public let extraBlock: ExtraFPNBlock
    public let p6: Conv2d?
    public let p7: Conv2d?

    public init(inChannels: [Int], outChannels: Int, extraBlock: ExtraFPNBlock, normEps: Float? = nil) {
        func block(_ input: Int, _ kernel: Int) -> Sequential {
            let conv = Conv2d(input, outChannels, kernelSize: Size2(kernel), padding: Size2((kernel - 1) / 2),
                              bias: normEps == nil)
            return Sequential([conv, normEps.map { BatchNorm2d(outChannels, eps: $0) }])
        }
        innerBlocks = inChannels.map { block($0, 1) }
        layerBlocks = inChannels.map { _ in block(outChannels, 3) }
        self.extraBlock = extraBlock
        if case .p6p7(let input) = extraBlock {
            p6 = Conv2d(input, outChannels, kernelSize: 3, stride: 2, padding: 1)
            p7 = Conv2d(outChannels, outChannels, kernelSize: 3, stride: 2, padding: 1)
        } else {
            p6 = nil
            p7 = nil
        }
    }

    public var children: [(name: String, module: any Module)] {
        var list: [(name: String, module: any Module)] = []
        list += innerBlocks.enumerated().map { ("inner_blocks.\($0.offset)", $0.element as any Module) }
        list += layerBlocks.enumerated().map { ("layer_blocks.\($0.offset)", $0.element as any Module) }
        if let p6, let p7 { list += [("extra_blocks.p6", p6), ("extra_blocks.p7", p7)] }
        return list
    }

    /// Pyramid levels, highest resolution first, for body features `[N, C_i, H_i, W_i]`
    /// (also highest resolution first).
    public func callAsFunction(_ features: [Tensor]) -> [Tensor] {
        precondition(features.count == innerBlocks.count,
                     "FPN: \(features.count) feature maps for \(innerBlocks.count) lateral convs")
        let last = features.count - 1
        var lastInner = innerBlocks[last](features[last])
        var results = [layerBlocks[last](lastInner)]
        for index in stride(from: last - 1, through: 0, by: -1) {
            let lateral = innerBlocks[index](features[index])
            let topDown = upsampleNearest(lastInner, size: Size2(lateral.shape[2], lateral.shape[3]))
            lastInner = add(lateral, topDown)
            results.insert(layerBlocks[index](lastInner), at: 0)
        }
        switch extraBlock {
        case .none:
            break
        case .maxPool:
            results.append(maxPool2d(results[last], kernelSize: 1, stride: 2))
        case .p6p7:
            guard let p6, let p7 else { break }
            // LastLevelP6P7.use_P5: in_channels == out_channels.
            let source = p6.inChannels == p6.outChannels ? results[last] : features[last]
            let level6 = p6(source)
            results.append(level6)
            results.append(p7(relu(level6)))
        }
        return results
    }
}
