// torchvision.models.resnet (v1.5: stride on the 3×3 conv), Bottleneck blocks, as body and classifier.
import Layers
import TensorCore

/// torchvision's `Bottleneck`: 1×1 → 3×3 (stride) → 1×1 (×4), plus the identity or a
/// projection shortcut, then ReLU.
public final class Bottleneck: Layer {
    public let conv1: Conv2d, bn1: BatchNorm2d
    public let conv2: Conv2d, bn2: BatchNorm2d
    public let conv3: Conv2d, bn3: BatchNorm2d
    public let downsample: Sequential?

    public init(inplanes: Int, planes: Int, stride: Int, normEps: Float) {
        let width = planes
        conv1 = Conv2d(inplanes, width, kernelSize: 1, bias: false)
        bn1 = BatchNorm2d(width, eps: normEps)
        conv2 = Conv2d(width, width, kernelSize: 3, stride: Size2(stride), padding: 1, bias: false)
        bn2 = BatchNorm2d(width, eps: normEps)
        conv3 = Conv2d(width, planes * 4, kernelSize: 1, bias: false)
        bn3 = BatchNorm2d(planes * 4, eps: normEps)
        if stride != 1 || inplanes != planes * 4 {
            downsample = Sequential([
                Conv2d(inplanes, planes * 4, kernelSize: 1, stride: Size2(stride), bias: false),
                BatchNorm2d(planes * 4, eps: normEps),
            ])
        } else {
            downsample = nil
        }
    }

    public var children: [(name: String, module: any Module)] {
        var list: [(name: String, module: any Module)] = [
            ("conv1", conv1), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2), ("conv3", conv3), ("bn3", bn3),
        ]
        if let downsample { list.append(("downsample", downsample)) }
        return list
    }

    public var batchNormPairs: [(conv: Conv2d, norm: BatchNorm2d)] {
        [(conv1, bn1), (conv2, bn2), (conv3, bn3)]
    }

    public func callAsFunction(_ input: Tensor) -> Tensor {
        var out = relu(bn1(conv1(input)))
        out = relu(bn2(conv2(out)))
        out = bn3(conv3(out))
        let identity = downsample.map { $0(input) } ?? input
        return relu(add(out, identity))
    }
}

/// ResNet-50 (layers 3, 4, 6, 3). As a detection body it returns the outputs of
/// `layer1`…`layer4` (C2…C5); as a classifier it adds average pooling and `fc`.
public final class ResNet: Layer {
    public let conv1: Conv2d
    public let bn1: BatchNorm2d
    public let layer1: Sequential, layer2: Sequential, layer3: Sequential, layer4: Sequential
    /// The ImageNet classifier; nil when used as a detection body.
    public let fc: Linear?

    /// `blocks` per stage (ResNet-50: [3, 4, 6, 3]); `normEps` is 0 for legacy detection checkpoints.
    public init(blocks: [Int] = [3, 4, 6, 3], numClasses: Int? = 1000, normEps: Float = 1e-5) {
        conv1 = Conv2d(3, 64, kernelSize: 7, stride: 2, padding: 3, bias: false)
        bn1 = BatchNorm2d(64, eps: normEps)
        var inplanes = 64
        func stage(_ planes: Int, _ count: Int, _ stride: Int) -> Sequential {
            var layers: [(any Layer)?] = []
            for index in 0..<count {
                layers.append(Bottleneck(inplanes: inplanes, planes: planes, stride: index == 0 ? stride : 1,
                                         normEps: normEps))
                inplanes = planes * 4
            }
            return Sequential(layers)
        }
        layer1 = stage(64, blocks[0], 1)
        layer2 = stage(128, blocks[1], 2)
        layer3 = stage(256, blocks[2], 2)
        layer4 = stage(512, blocks[3], 2)
        fc = numClasses.map { Linear(2048, $0) }
    }

    public var children: [(name: String, module: any Module)] {
        var list: [(name: String, module: any Module)] = [
            ("conv1", conv1), ("bn1", bn1), ("layer1", layer1), ("layer2", layer2), ("layer3", layer3),
            ("layer4", layer4),
        ]
        if let fc { list.append(("fc", fc)) }
        return list
    }

    public var batchNormPairs: [(conv: Conv2d, norm: BatchNorm2d)] { [(conv1, bn1)] }

    /// Output channels of C2…C5.
    public static let stageChannels = [256, 512, 1024, 2048]

    /// C2…C5 for `input` `[N, 3, H, W]`.
    public func stages(_ input: Tensor) -> [Tensor] {
        var x = relu(bn1(conv1(input)))
        x = maxPool2d(x, kernelSize: 3, stride: 2, padding: 1)
        let c2 = layer1(x)
        let c3 = layer2(c2)
        let c4 = layer3(c3)
        let c5 = layer4(c4)
        return [c2, c3, c4, c5]
    }

    /// Class logits `[N, numClasses]` (requires `fc`).
    public func callAsFunction(_ input: Tensor) -> Tensor {
        guard let fc else { preconditionFailure("ResNet built without a classifier") }
        let c5 = stages(input)[3]
        let pooled = adaptiveAvgPool2d(c5, outputSize: 1)
        return fc(pooled.reshaped([c5.shape[0], -1]))
    }
}
