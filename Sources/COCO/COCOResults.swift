// COCO detection results, checked against the ground truth as pycocotools' loadRes does.

/// One detection in COCO results format: `{"image_id", "category_id", "bbox": [x, y, w, h], "score"}`.
public struct COCODetection: Equatable, Sendable {
    public var imageId: Int
    public var categoryId: Int
    public var bbox: COCOBox
    public var score: Double

    public init(imageId: Int, categoryId: Int, bbox: COCOBox, score: Double) {
        self.imageId = imageId
        self.categoryId = categoryId
        self.bbox = bbox
        self.score = score
    }
}

/// A results list whose every `imageId` is an image of the ground truth it was checked against.
/// As in pycocotools' `loadRes`, detection `i` (0-based, file order) has id `i + 1`, area
/// `bbox.width * bbox.height` and is not a crowd; detections of categories the ground truth does
/// not list are kept but never evaluated. An empty list is valid (every AP is 0 where there is
/// ground truth; pycocotools itself cannot load an empty list).
public struct COCOResults: Equatable, Sendable {
    public let detections: [COCODetection]

    /// Checks that every detection's image is in `groundTruth.images`; the error names `source`
    /// (a file name, or "results") and the first offending entry.
    public init(detections: [COCODetection], groundTruth: COCODataset, source: String = "results") throws(COCOError) {
        var known = Set<Int>(minimumCapacity: groundTruth.images.count)
        for image in groundTruth.images { known.insert(image.id) }
        if let index = detections.firstIndex(where: { !known.contains($0.imageId) }) {
            throw COCOError.unknownImage(file: source, field: "[\(index)].image_id", imageId: detections[index].imageId)
        }
        self.detections = detections
    }
}
