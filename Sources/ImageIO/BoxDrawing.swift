// Box outlines with filled, labelled tags, drawn into an RGBImage for `detq detect --draw`.

/// Draws each box as a `lineWidth`-pixel outline growing inward from its edges, then a
/// label tag (filled with the box colour, text in black or white, whichever contrasts)
/// above the box's top-left corner, or inside it when there is no room above.
///
/// Boxes are `xyxy` in pixels, no +1: the outline covers columns `floor(x1) ...
/// ceil(x2) - 1` and rows `floor(y1) ... ceil(y2) - 1`. Everything is clipped to the image;
/// boxes partly or wholly outside it, reversed corners and non-finite coordinates are fine
/// (a box wholly outside or with a non-finite coordinate is skipped, tag included). Labels are drawn after all outlines so that they stay
/// readable; characters outside printable ASCII are drawn as `?`. The text is 7 pixels high
/// times a scale of `max(1, min(width, height) / 400)`.
public func drawBoxes(on image: inout RGBImage,
                      boxes: [(x1: Float, y1: Float, x2: Float, y2: Float, label: String,
                               color: (UInt8, UInt8, UInt8))],
                      lineWidth: Int = 2) {
    image.checkLayout("drawBoxes")
    guard image.width > 0 && image.height > 0 else { return }
    // wider than the image would only repaint the same pixels
    let thickness = min(max(1, lineWidth), max(image.width, image.height))
    var tags: [(left: Int, top: Int, label: String, color: (UInt8, UInt8, UInt8))] = []
    for box in boxes {
        guard box.x1.isFinite, box.y1.isFinite, box.x2.isFinite, box.y2.isFinite else { continue }
        let left = clampedPixel(min(box.x1, box.x2).rounded(.down))
        let top = clampedPixel(min(box.y1, box.y2).rounded(.down))
        let right = max(left, clampedPixel(max(box.x1, box.x2).rounded(.up)) - 1)
        let bottom = max(top, clampedPixel(max(box.y1, box.y2).rounded(.up)) - 1)
        // wholly outside: no outline, and no tag pulled into view
        guard right >= 0 && left < image.width && bottom >= 0 && top < image.height else { continue }
        for inset in 0..<thickness {
            image.fillRectangle(left: left, top: top + inset, right: right, bottom: top + inset, color: box.color)
            image.fillRectangle(left: left, top: bottom - inset, right: right, bottom: bottom - inset, color: box.color)
            image.fillRectangle(left: left + inset, top: top, right: left + inset, bottom: bottom, color: box.color)
            image.fillRectangle(left: right - inset, top: top, right: right - inset, bottom: bottom, color: box.color)
        }
        if !box.label.isEmpty { tags.append((left, top, box.label, box.color)) }
    }
    let scale = max(1, min(image.width, image.height) / 400)
    for tag in tags {
        image.drawTag(tag.label, left: tag.left, boxTop: tag.top, color: tag.color, scale: scale)
    }
}

/// A pixel coordinate from a finite Float, clamped far outside any image so that the
/// conversion to Int cannot trap.
private func clampedPixel(_ value: Float) -> Int {
    Int(min(max(value, -1_000_000), 1_000_000))
}

extension RGBImage {
    /// Paints the inclusive rectangle `left...right` x `top...bottom`, clipped to the image.
    mutating func fillRectangle(left: Int, top: Int, right: Int, bottom: Int, color: (UInt8, UInt8, UInt8)) {
        let x0 = max(left, 0)
        let x1 = min(right, width - 1)
        let y0 = max(top, 0)
        let y1 = min(bottom, height - 1)
        guard x0 <= x1 && y0 <= y1 else { return }
        let imageWidth = width
        pixels.withUnsafeMutableBufferPointer { pixels in
            for y in y0...y1 {
                for x in x0...x1 {
                    let index = (y * imageWidth + x) * 3
                    pixels[index] = color.0
                    pixels[index + 1] = color.1
                    pixels[index + 2] = color.2
                }
            }
        }
    }

    /// A filled tag holding `text`, above `boxTop` when it fits, else just inside the box;
    /// shifted left to stay in the image when it can.
    mutating func drawTag(_ text: String, left: Int, boxTop: Int, color: (UInt8, UInt8, UInt8), scale: Int) {
        let scalars = Array(text.unicodeScalars)
        let padding = scale
        let tagWidth = scalars.count * BitmapFont.advance * scale - scale + 2 * padding
        let tagHeight = BitmapFont.glyphHeight * scale + 2 * padding
        let tagLeft = max(0, min(left, width - tagWidth))
        let tagTop = boxTop - tagHeight >= 0 ? boxTop - tagHeight : max(boxTop, 0)
        fillRectangle(left: tagLeft, top: tagTop, right: tagLeft + tagWidth - 1,
                      bottom: tagTop + tagHeight - 1, color: color)
        // ITU-R BT.601 luma, in thousandths
        let luma = 299 * Int(color.0) + 587 * Int(color.1) + 114 * Int(color.2)
        let ink: (UInt8, UInt8, UInt8) = luma > 128_000 ? (0, 0, 0) : (255, 255, 255)
        for (index, scalar) in scalars.enumerated() {
            let glyphLeft = tagLeft + padding + index * BitmapFont.advance * scale
            guard glyphLeft < width else { break }
            for (row, mask) in BitmapFont.glyph(for: scalar).enumerated() {
                for column in 0..<BitmapFont.glyphWidth where mask & (1 << (BitmapFont.glyphWidth - 1 - column)) != 0 {
                    let x = glyphLeft + column * scale
                    let y = tagTop + padding + row * scale
                    fillRectangle(left: x, top: y, right: x + scale - 1, bottom: y + scale - 1, color: ink)
                }
            }
        }
    }
}
