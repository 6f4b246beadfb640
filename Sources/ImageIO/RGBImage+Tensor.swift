// torchvision's ToTensor + Normalize, and the ImageNet classification preprocessing.

/// torchvision's ImageNet channel means, RGB.
public let imagenetMean: [Float] = [0.485, 0.456, 0.406]
/// torchvision's ImageNet channel standard deviations, RGB.
public let imagenetStd: [Float] = [0.229, 0.224, 0.225]

extension RGBImage {
    /// The image as `[3, height, width]` Float32 values, channel-major (CHW, row-major
    /// within a channel): `(p / 255 - mean[c]) / std[c]`, computed in Float32 in that order,
    /// as torchvision's `ToTensor()` followed by `Normalize(mean, std)`.
    public func toTensorCHW(mean: [Float], std: [Float]) -> [Float] {
        precondition(mean.count == 3 && std.count == 3,
                     "toTensorCHW: mean and std need 3 values, got \(mean.count) and \(std.count)")
        checkLayout("toTensorCHW")
        let plane = width * height
        var output = [Float](repeating: 0, count: 3 * plane)
        pixels.withUnsafeBufferPointer { pixels in
            output.withUnsafeMutableBufferPointer { output in
                for channel in 0..<3 {
                    let channelMean = mean[channel]
                    let channelStd = std[channel]
                    for index in 0..<plane {
                        let value = Float(pixels[index * 3 + channel]) / 255
                        output[channel * plane + index] = (value - channelMean) / channelStd
                    }
                }
            }
        }
        return output
    }
}

/// torchvision's ImageNet evaluation transform on a PIL image:
/// `Resize(resize, BILINEAR)` (shorter side), `CenterCrop(crop)`, `ToTensor()`,
/// `Normalize(mean, std)`. Returns `[3, crop, crop]` Float32 values, CHW.
public func imagenetPreprocess(_ image: RGBImage, resize: Int = 256, crop: Int = 224,
                               mean: [Float] = imagenetMean, std: [Float] = imagenetStd) -> [Float] {
    image.resizedShorterSide(to: resize)
        .centerCropped(width: crop, height: crop)
        .toTensorCHW(mean: mean, std: std)
}
