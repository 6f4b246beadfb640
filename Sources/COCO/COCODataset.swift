// COCO instances records (images, categories, box annotations), as pycocotools' COCO class reads them.

/// A box in COCO's `[x, y, width, height]` layout, in pixels (the top-left corner, then the size).
public struct COCOBox: Equatable, Sendable {
    public var x: Double
    public var y: Double
    public var width: Double
    public var height: Double

    public init(x: Double, y: Double, width: Double, height: Double) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }

    /// `width * height`, the area pycocotools' `loadRes` gives a detection.
    public var area: Double { width * height }
}

/// One entry of an instances file's `images` (only `id` is required; other fields are kept when present).
public struct COCOImage: Equatable, Sendable {
    public var id: Int
    public var fileName: String?
    public var width: Int?
    public var height: Int?

    public init(id: Int, fileName: String? = nil, width: Int? = nil, height: Int? = nil) {
        self.id = id
        self.fileName = fileName
        self.width = width
        self.height = height
    }
}

/// One entry of an instances file's `categories`.
public struct COCOCategory: Equatable, Sendable {
    public var id: Int
    public var name: String
    public var supercategory: String?

    public init(id: Int, name: String, supercategory: String? = nil) {
        self.id = id
        self.name = name
        self.supercategory = supercategory
    }
}

/// One ground-truth box annotation. `area` is the annotation's own `area` field (for instance
/// masks it is the mask area, not the box area); evaluation uses it for the area ranges.
public struct COCOAnnotation: Equatable, Sendable {
    public var id: Int
    public var imageId: Int
    public var categoryId: Int
    public var bbox: COCOBox
    public var area: Double
    public var isCrowd: Bool

    public init(id: Int, imageId: Int, categoryId: Int, bbox: COCOBox, area: Double, isCrowd: Bool = false) {
        self.id = id
        self.imageId = imageId
        self.categoryId = categoryId
        self.bbox = bbox
        self.area = area
        self.isCrowd = isCrowd
    }
}

/// A COCO instances file (ground truth): images, box annotations and categories, in file order.
/// Annotations of images or categories that are not listed are kept but never evaluated, as in
/// pycocotools.
public struct COCODataset: Equatable, Sendable {
    public var images: [COCOImage]
    public var annotations: [COCOAnnotation]
    public var categories: [COCOCategory]

    public init(images: [COCOImage], annotations: [COCOAnnotation], categories: [COCOCategory]) {
        self.images = images
        self.annotations = annotations
        self.categories = categories
    }
}
