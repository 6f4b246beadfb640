// What every detector returns and how detq addresses its parts.
import Layers
import TensorCore

/// Detections of one image: `boxes` `[N, 4]` xyxy pixels (no +1), sorted by score, highest first.
public struct Detections: Sendable, Equatable {
    public var boxes: [Float]
    public var scores: [Float]
    public var labels: [Int]

    public init(boxes: [Float], scores: [Float], labels: [Int]) {
        precondition(boxes.count == 4 * scores.count && scores.count == labels.count,
                     "Detections: \(boxes.count / 4) boxes, \(scores.count) scores, \(labels.count) labels")
        self.boxes = boxes
        self.scores = scores
        self.labels = labels
    }

    public static let empty = Detections(boxes: [], scores: [], labels: [])
    public var count: Int { scores.count }

    /// Box `i` as (x1, y1, x2, y2).
    public func box(_ i: Int) -> (x1: Float, y1: Float, x2: Float, y2: Float) {
        (boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3])
    }
}

/// The part of a detector a layer belongs to, for quantization scopes and sensitivity.
public enum DetectorPart: String, Sendable, Codable, CaseIterable {
    case backbone, neck, head
}

/// A detector built from a config: torchvision's transform, network and postprocess.
public protocol Detector: Module {
    /// Resize, normalize and batch padding, as torchvision's `GeneralizedRCNNTransform`.
    var transform: DetectionTransform { get }

    /// Detections for an already transformed batch `[N, 3, H, W]` whose images have
    /// `imageSizes` (before padding), in the coordinates of that batch.
    func detect(batch: Tensor, imageSizes: [Size2]) -> [Detections]

    /// Which part each layer path prefix belongs to, longest prefix first wins
    /// (`"backbone.body"` → backbone, `"backbone.fpn"` → neck, `"head"` → head).
    var partPrefixes: [(prefix: String, part: DetectorPart)] { get }
}

extension Detector {
    /// Detections in original pixel coordinates for images `[3, H, W]` with values in [0, 1].
    public func callAsFunction(_ images: [Tensor]) -> [Detections] {
        let (batch, sizes) = transform(images)
        let detections = detect(batch: batch, imageSizes: sizes)
        return zip(detections, zip(sizes, images)).map { result, shapes in
            transform.rescaled(result, from: shapes.0, to: Size2(shapes.1.shape[1], shapes.1.shape[2]))
        }
    }

    /// The part of the layer at `path`, or nil if no prefix covers it.
    public func part(of path: String) -> DetectorPart? {
        partPrefixes
            .filter { path == $0.prefix || path.hasPrefix($0.prefix + ".") }
            .max { $0.prefix.count < $1.prefix.count }?.part
    }
}
