// Readers for COCO instances and results JSON files (pycocotools' COCO(...) and loadRes, bbox only).
import Foundation

/// Reads a COCO instances file (`{"images": [...], "annotations": [...], "categories": [...]}`).
///
/// Required: `images[].id`; `categories[].id` and `.name`; `annotations[].id`, `.image_id`,
/// `.category_id`, `.bbox` (4 numbers, `[x, y, w, h]`), `.area` and `.iscrowd` (0/1 or a bool).
/// Optional and type-checked when present: `images[].file_name`, `.width`, `.height`,
/// `categories[].supercategory`. Other keys (`info`, `licenses`, `segmentation`, ...) are skipped
/// after checking that they are valid JSON. Errors name the file and the field.
public func loadInstances(path: String) throws(COCOError) -> COCODataset {
    let data = try readFile(path)
    return try data.withUnsafeBufferPointer { (bytes) throws(COCOError) -> COCODataset in
        try parseInstances(bytes, file: path)
    }
}

/// Reads a COCO results file (`[{"image_id", "category_id", "bbox", "score"}, ...]`) and checks
/// it against `groundTruth` like pycocotools' `loadRes` (see `COCOResults`). All four fields are
/// required; other keys are skipped.
public func loadResults(path: String, groundTruth: COCODataset) throws(COCOError) -> COCOResults {
    let data = try readFile(path)
    let detections = try data.withUnsafeBufferPointer { (bytes) throws(COCOError) -> [COCODetection] in
        try parseResults(bytes, file: path)
    }
    return try COCOResults(detections: detections, groundTruth: groundTruth, source: path)
}

/// Parses the bytes of an instances file; `file` names it in errors.
public func parseInstances(_ bytes: UnsafeBufferPointer<UInt8>, file: String) throws(COCOError) -> COCODataset {
    var scanner = JSONScanner(bytes, file: file)
    var images: [COCOImage]?
    var annotations: [COCOAnnotation]?
    var categories: [COCOCategory]?
    try scanner.beginObject("the top level")
    var first = true
    while let key = try scanner.nextKey(&first) {
        if scanner.key(key, is: "images") {
            images = try readImages(&scanner)
        } else if scanner.key(key, is: "annotations") {
            annotations = try readAnnotations(&scanner)
        } else if scanner.key(key, is: "categories") {
            categories = try readCategories(&scanner)
        } else {
            try scanner.skipValue()
        }
    }
    try scanner.expectEnd()
    guard let images else { throw COCOError.missingField(file: file, field: "images") }
    guard let annotations else { throw COCOError.missingField(file: file, field: "annotations") }
    guard let categories else { throw COCOError.missingField(file: file, field: "categories") }
    return COCODataset(images: images, annotations: annotations, categories: categories)
}

/// Parses the bytes of a results file into detections (not yet checked against a ground truth).
public func parseResults(_ bytes: UnsafeBufferPointer<UInt8>, file: String) throws(COCOError) -> [COCODetection] {
    var scanner = JSONScanner(bytes, file: file)
    // A results file written with indentation has about 100 bytes per detection; reserve for that.
    var detections: [COCODetection] = []
    detections.reserveCapacity(bytes.count / 90)
    try scanner.beginArray("the top level", expected: "an array of result objects")
    var first = true
    while try scanner.nextElement(&first) {
        let index = detections.count
        try scanner.beginObject("[\(index)]")
        var imageId: Int?
        var categoryId: Int?
        var box: COCOBox?
        var score: Double?
        var firstKey = true
        while let key = try scanner.nextKey(&firstKey) {
            if scanner.key(key, is: "image_id") {
                imageId = try scanner.readInteger("[\(index)].image_id")
            } else if scanner.key(key, is: "category_id") {
                categoryId = try scanner.readInteger("[\(index)].category_id")
            } else if scanner.key(key, is: "bbox") {
                box = try scanner.readBox("[\(index)].bbox")
            } else if scanner.key(key, is: "score") {
                score = try scanner.readDouble("[\(index)].score")
            } else {
                try scanner.skipValue()
            }
        }
        guard let imageId else { throw COCOError.missingField(file: file, field: "[\(index)].image_id") }
        guard let categoryId else { throw COCOError.missingField(file: file, field: "[\(index)].category_id") }
        guard let box else { throw COCOError.missingField(file: file, field: "[\(index)].bbox") }
        guard let score else { throw COCOError.missingField(file: file, field: "[\(index)].score") }
        detections.append(COCODetection(imageId: imageId, categoryId: categoryId,
                                        bbox: box, score: score))
    }
    try scanner.expectEnd()
    return detections
}

// MARK: - Sections of an instances file

private func readImages(_ scanner: inout JSONScanner) throws(COCOError) -> [COCOImage] {
    var images: [COCOImage] = []
    try scanner.beginArray("images")
    var first = true
    while try scanner.nextElement(&first) {
        let index = images.count
        try scanner.beginObject("images[\(index)]")
        var id: Int?
        var image = COCOImage(id: 0)
        var firstKey = true
        while let key = try scanner.nextKey(&firstKey) {
            if scanner.key(key, is: "id") {
                id = try scanner.readInteger("images[\(index)].id")
            } else if scanner.key(key, is: "file_name") {
                image.fileName = try scanner.readString("images[\(index)].file_name")
            } else if scanner.key(key, is: "width") {
                image.width = try scanner.readInteger("images[\(index)].width")
            } else if scanner.key(key, is: "height") {
                image.height = try scanner.readInteger("images[\(index)].height")
            } else {
                try scanner.skipValue()
            }
        }
        guard let id else { throw COCOError.missingField(file: scanner.file, field: "images[\(index)].id") }
        image.id = id
        images.append(image)
    }
    return images
}

private func readCategories(_ scanner: inout JSONScanner) throws(COCOError) -> [COCOCategory] {
    var categories: [COCOCategory] = []
    try scanner.beginArray("categories")
    var first = true
    while try scanner.nextElement(&first) {
        let index = categories.count
        try scanner.beginObject("categories[\(index)]")
        var id: Int?
        var name: String?
        var supercategory: String?
        var firstKey = true
        while let key = try scanner.nextKey(&firstKey) {
            if scanner.key(key, is: "id") {
                id = try scanner.readInteger("categories[\(index)].id")
            } else if scanner.key(key, is: "name") {
                name = try scanner.readString("categories[\(index)].name")
            } else if scanner.key(key, is: "supercategory") {
                supercategory = try scanner.readString("categories[\(index)].supercategory")
            } else {
                try scanner.skipValue()
            }
        }
        guard let id else { throw COCOError.missingField(file: scanner.file, field: "categories[\(index)].id") }
        guard let name else { throw COCOError.missingField(file: scanner.file, field: "categories[\(index)].name") }
        categories.append(COCOCategory(id: id, name: name, supercategory: supercategory))
    }
    return categories
}

private func readAnnotations(_ scanner: inout JSONScanner) throws(COCOError) -> [COCOAnnotation] {
    var annotations: [COCOAnnotation] = []
    try scanner.beginArray("annotations")
    var first = true
    while try scanner.nextElement(&first) {
        let index = annotations.count
        try scanner.beginObject("annotations[\(index)]")
        var id: Int?
        var imageId: Int?
        var categoryId: Int?
        var box: COCOBox?
        var area: Double?
        var isCrowd: Bool?
        var firstKey = true
        while let key = try scanner.nextKey(&firstKey) {
            if scanner.key(key, is: "id") {
                id = try scanner.readInteger("annotations[\(index)].id")
            } else if scanner.key(key, is: "image_id") {
                imageId = try scanner.readInteger("annotations[\(index)].image_id")
            } else if scanner.key(key, is: "category_id") {
                categoryId = try scanner.readInteger("annotations[\(index)].category_id")
            } else if scanner.key(key, is: "bbox") {
                box = try scanner.readBox("annotations[\(index)].bbox")
            } else if scanner.key(key, is: "area") {
                area = try scanner.readDouble("annotations[\(index)].area")
            } else if scanner.key(key, is: "iscrowd") {
                isCrowd = try scanner.readFlag("annotations[\(index)].iscrowd")
            } else {
                try scanner.skipValue()
            }
        }
        let file = scanner.file
        guard let id else { throw COCOError.missingField(file: file, field: "annotations[\(index)].id") }
        guard let imageId else { throw COCOError.missingField(file: file, field: "annotations[\(index)].image_id") }
        guard let categoryId else { throw COCOError.missingField(file: file, field: "annotations[\(index)].category_id") }
        guard let box else { throw COCOError.missingField(file: file, field: "annotations[\(index)].bbox") }
        guard let area else { throw COCOError.missingField(file: file, field: "annotations[\(index)].area") }
        guard let isCrowd else { throw COCOError.missingField(file: file, field: "annotations[\(index)].iscrowd") }
        annotations.append(COCOAnnotation(id: id, imageId: imageId, categoryId: categoryId,
                                          bbox: box, area: area, isCrowd: isCrowd))
    }
    return annotations
}

/// The whole file as bytes (POSIX reads: no Foundation bridging, one copy).
private func readFile(_ path: String) throws(COCOError) -> [UInt8] {
    let descriptor = open(path, O_RDONLY)
    guard descriptor >= 0 else { throw COCOError.unreadableFile(path: path, reason: String(cString: strerror(errno))) }
    defer { close(descriptor) }
    var status = stat()
    guard fstat(descriptor, &status) == 0 else {
        throw COCOError.unreadableFile(path: path, reason: String(cString: strerror(errno)))
    }
    guard (status.st_mode & S_IFMT) == S_IFREG else { throw COCOError.unreadableFile(path: path, reason: "not a regular file") }
    let size = Int(status.st_size)
    var failure: Int32 = 0
    let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
        initialized = 0
        guard let base = buffer.baseAddress else { return }
        while initialized < size {
            let n = read(descriptor, base + initialized, size - initialized)
            if n < 0, errno == EINTR { continue }
            if n <= 0 {
                failure = n < 0 ? errno : EIO
                break
            }
            initialized += n
        }
    }
    if failure != 0 || bytes.count != size {
        throw COCOError.unreadableFile(path: path, reason: String(cString: strerror(failure != 0 ? failure : EIO)))
    }
    return bytes
}
