// swift-tools-version: 6.0
// detq: post-training quantization of object detectors, on the CPU.
import PackageDescription

let optimized: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]

let package = Package(
    name: "DetQ",
    products: [
        .executable(name: "detq", targets: ["detq"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C libraries, seen only by the module directly above them.
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG", pkgConfig: "libjpeg",
                       providers: [.apt(["libjpeg-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        .target(name: "CImageCodecs", dependencies: ["CJPEG", "CPNG"], path: "Sources/CImageCodecs"),
        // glibc's allocator settings (mallopt), for the command's process only.
        .systemLibrary(name: "CMalloc", path: "Sources/CMalloc"),

        // Swift modules; the graph is the architecture (see README).
        .target(name: "TensorCore", dependencies: ["CBLAS"]),
        .target(name: "ImageIO", dependencies: ["CImageCodecs"]),
        .target(name: "Checkpoints", dependencies: ["TensorCore"], exclude: ["README.md"]),
        .target(name: "Layers", dependencies: ["TensorCore", "Checkpoints"]),
        .target(name: "BoxOps", dependencies: ["TensorCore"], exclude: ["README.md"]),
        .target(name: "Detectors", dependencies: ["TensorCore", "Layers", "BoxOps"]),
        .target(name: "Quantization", dependencies: ["TensorCore", "Layers", "Checkpoints"]),
        .target(name: "COCO", exclude: ["README.md"]),
        .target(name: "DetQKit", dependencies: [
            "TensorCore", "ImageIO", "Checkpoints", "Layers", "BoxOps", "Detectors", "Quantization", "COCO",
        ]),
        .executableTarget(name: "detq", dependencies: [
            "DetQKit", "CMalloc", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore"], exclude: ["Fixtures"]),
        .testTarget(name: "ImageIOTests", dependencies: ["ImageIO"]),
        .testTarget(name: "CheckpointsTests", dependencies: ["Checkpoints", "TensorCore"], exclude: ["Fixtures"]),
        .testTarget(name: "LayersTests", dependencies: ["Layers", "TensorCore", "Checkpoints"]),
        .testTarget(name: "BoxOpsTests", dependencies: ["BoxOps", "TensorCore"], exclude: ["Fixtures"]),
        .testTarget(name: "DetectorsTests", dependencies: ["Detectors", "Layers", "BoxOps", "TensorCore", "Checkpoints"], exclude: ["Fixtures"]),
        .testTarget(name: "QuantizationTests", dependencies: ["Quantization", "Layers", "TensorCore"]),
        .testTarget(name: "COCOTests", dependencies: ["COCO", "TensorCore"]),
        .testTarget(name: "DetQKitTests", dependencies: ["DetQKit"], exclude: ["Fixtures"]),
        // Runs the built `detq` binary (the dependency makes sure it is built first).
        .testTarget(name: "detqTests", dependencies: ["detq"]),
    ]
)
