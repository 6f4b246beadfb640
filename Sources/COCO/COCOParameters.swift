// The default bbox parameters of pycocotools' COCOeval (Params.setDetParams).

/// An area range `[lower, upper]` (both inclusive) in square pixels, with pycocotools' label.
public struct COCOAreaRange: Equatable, Sendable {
    public let label: String
    public let lower: Double
    public let upper: Double

    /// Whether `area` falls outside the range (pycocotools: `area < lower or area > upper`).
    @inline(__always)
    func excludes(_ area: Double) -> Bool { area < lower || area > upper }
}

/// The evaluation parameters: pycocotools' defaults for `iouType='bbox'`.
public struct COCOParameters: Equatable, Sendable {
    /// T = 10 thresholds: `np.linspace(.5, 0.95, 10)` (0.5, 0.55, ..., 0.95 as NumPy builds them).
    public let iouThresholds: [Double]
    /// R = 101 thresholds: `np.linspace(.0, 1.00, 101)`.
    public let recallThresholds: [Double]
    /// A = 4 ranges: all `[0, 1e10]`, small `[0, 32²]`, medium `[32², 96²]`, large `[96², 1e10]`.
    public let areaRanges: [COCOAreaRange]
    /// M = 3 limits on detections per image: 1, 10, 100 (the last also truncates each image's list).
    public let maxDetections: [Int]

    /// pycocotools' defaults.
    public static let standard = COCOParameters()

    private init() {
        // int(np.round((0.95 - .5) / .05)) + 1 and int(np.round((1.00 - .0) / .01)) + 1
        iouThresholds = numpyLinspace(0.5, 0.95, count: Int(((0.95 - 0.5) / 0.05).rounded()) + 1)
        recallThresholds = numpyLinspace(0.0, 1.0, count: Int(((1.0 - 0.0) / 0.01).rounded()) + 1)
        areaRanges = [
            COCOAreaRange(label: "all", lower: 0, upper: 1e10),
            COCOAreaRange(label: "small", lower: 0, upper: 32 * 32),
            COCOAreaRange(label: "medium", lower: 32 * 32, upper: 96 * 96),
            COCOAreaRange(label: "large", lower: 96 * 96, upper: 1e10),
        ]
        maxDetections = [1, 10, 100]
    }
}
