// The decoded-image value type every ImageIO function takes or returns.

/// An 8-bit RGB image: `pixels` holds `width * height * 3` bytes, RGB interleaved,
/// row-major, no padding (the layout of PIL's `Image.tobytes()` for mode "RGB").
public struct RGBImage: Sendable, Equatable {
    /// Columns, at least 1 for decoded images.
    public var width: Int
    /// Rows, at least 1 for decoded images.
    public var height: Int
    /// `width * height * 3` bytes: pixel (x, y) channel c is at `(y * width + x) * 3 + c`.
    public var pixels: [UInt8]

    /// The refusal threshold of ``loadImage(at:maxPixels:)`` and ``decodeImage(_:source:maxPixels:)``:
    /// 89,478,485 pixels, PIL's `Image.MAX_IMAGE_PIXELS` (a quarter GiB of 3-byte pixels).
    /// PIL only warns above it and refuses above twice it; detq refuses above it, before
    /// allocating, since a header is cheap to forge and a decoded bomb is not.
    public static let defaultMaxPixels = 89_478_485

    /// An image over existing pixels; `pixels.count` must be `width * height * 3`.
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0, "RGBImage: negative size \(width)x\(height)")
        precondition(pixels.count == width * height * 3,
                     "RGBImage: \(pixels.count) bytes for \(width)x\(height) RGB (need \(width * height * 3))")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A `width` x `height` image filled with one colour (black unless given).
    public init(width: Int, height: Int, fill: (UInt8, UInt8, UInt8) = (0, 0, 0)) {
        precondition(width >= 0 && height >= 0, "RGBImage: negative size \(width)x\(height)")
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        if fill != (0, 0, 0) {
            for index in stride(from: 0, to: pixels.count, by: 3) {
                pixels[index] = fill.0
                pixels[index + 1] = fill.1
                pixels[index + 2] = fill.2
            }
        }
        self.init(width: width, height: height, pixels: pixels)
    }

    /// Traps with a message naming `operation` when `pixels.count` is not `width * height * 3`
    /// (the fields are public and mutable, the kernels read through unchecked pointers).
    func checkLayout(_ operation: String) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height * 3,
                     "\(operation): \(pixels.count) bytes for a \(width)x\(height) RGB image (need \(width * height * 3))")
    }

    /// The colour at column `x`, row `y` (both in range).
    public func pixel(x: Int, y: Int) -> (UInt8, UInt8, UInt8) {
        precondition(x >= 0 && x < width && y >= 0 && y < height,
                     "RGBImage.pixel: (\(x), \(y)) outside \(width)x\(height)")
        let index = (y * width + x) * 3
        return (pixels[index], pixels[index + 1], pixels[index + 2])
    }
}
