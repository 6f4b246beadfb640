// `detect --json` and `--draw`: the SPEC.md output format and labelled pictures.
import Detectors
import Foundation
import ImageIO

/// `{"model", "images": [{"file", "width", "height", "detections": [{"box", "score", "label"}]}]}`.
public struct DetectionReport: Codable, Sendable {
    public struct Detection: Codable, Sendable {
        /// xyxy pixels of the original image, no +1.
        public var box: [Float]
        public var score: Float
        public var label: Int
    }
    public struct Image: Codable, Sendable {
        public var file: String
        public var width: Int
        public var height: Int
        public var detections: [Detection]
    }
    public var model: String
    public var images: [Image]

    public init(model: String, images: [Image] = []) {
        self.model = model
        self.images = images
    }

    /// One image's entry; detections are already sorted by score.
    public static func image(file: String, width: Int, height: Int, _ detections: Detections) -> Image {
        Image(file: file, width: width, height: height, detections: (0..<detections.count).map { i in
            let b = detections.box(i)
            return Detection(box: [b.x1, b.y1, b.x2, b.y2], score: detections.scores[i], label: detections.labels[i])
        })
    }
}

/// A distinct, stable colour per label.
public func labelColor(_ label: Int) -> (UInt8, UInt8, UInt8) {
    let palette: [(UInt8, UInt8, UInt8)] = [
        (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
        (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
        (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180),
    ]
    return palette[((label % palette.count) + palette.count) % palette.count]
}

/// Writes `image` with its detections drawn as `DIR/<file name without extension>.png`.
public func drawDetections(_ detections: Detections, on image: RGBImage, names: [String], file: String,
                           directory: String) throws {
    var canvas = image
    let boxes = (0..<detections.count).map { i in
        let b = detections.box(i)
        let label = detections.labels[i]
        let name = label >= 0 && label < names.count ? names[label] : String(label)
        return (x1: b.x1, y1: b.y1, x2: b.x2, y2: b.y2,
                label: "\(name) \(String(format: "%.2f", detections.scores[i]))", color: labelColor(label))
    }
    drawBoxes(on: &canvas, boxes: boxes)
    let base = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
    try createOutputDirectory(directory)
    try writePNG(canvas, to: URL(fileURLWithPath: directory).appendingPathComponent(base + ".png").path)
}
