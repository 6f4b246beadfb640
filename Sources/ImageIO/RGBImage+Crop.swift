// torchvision 0.14's F.center_crop on a PIL image, zero padding included.

extension RGBImage {
    /// The centred `width` x `height` window, as torchvision's `F.center_crop(img, [height,
    /// width])`: `top = int(round((H - height) / 2.0))` and likewise `left`, with Python's
    /// round-half-to-even. A crop larger than the image first pads it with black, `(crop -
    /// size) // 2` before and `(crop - size + 1) // 2` after, as torchvision does.
    public func centerCropped(width cropWidth: Int, height cropHeight: Int) -> RGBImage {
        precondition(cropWidth > 0 && cropHeight > 0,
                     "centerCropped: crop \(cropWidth)x\(cropHeight) must be positive")
        checkLayout("centerCropped")
        var padLeft = 0
        var padTop = 0
        var paddedWidth = width
        var paddedHeight = height
        if cropWidth > width || cropHeight > height {
            if cropWidth > width {
                padLeft = (cropWidth - width) / 2
                paddedWidth = width + padLeft + (cropWidth - width + 1) / 2
            }
            if cropHeight > height {
                padTop = (cropHeight - height) / 2
                paddedHeight = height + padTop + (cropHeight - height + 1) / 2
            }
        }
        // (padded - crop) / 2.0 is a whole or a half number: round half to even
        let top = Int((Double(paddedHeight - cropHeight) / 2.0).rounded(.toNearestOrEven))
        let left = Int((Double(paddedWidth - cropWidth) / 2.0).rounded(.toNearestOrEven))

        var output = [UInt8](repeating: 0, count: cropWidth * cropHeight * 3)
        // source pixel of output (x, y): (x + left - padLeft, y + top - padTop)
        let sourceLeft = left - padLeft
        let sourceTop = top - padTop
        let firstX = max(0, -sourceLeft)
        let endX = min(cropWidth, width - sourceLeft)
        guard firstX < endX else { return RGBImage(width: cropWidth, height: cropHeight, pixels: output) }
        for y in 0..<cropHeight {
            let sourceY = y + sourceTop
            guard sourceY >= 0 && sourceY < height else { continue }
            let sourceStart = (sourceY * width + firstX + sourceLeft) * 3
            let outputStart = (y * cropWidth + firstX) * 3
            let count = (endX - firstX) * 3
            output[outputStart..<outputStart + count] = pixels[sourceStart..<sourceStart + count]
        }
        return RGBImage(width: cropWidth, height: cropHeight, pixels: output)
    }
}
