import ArgumentParser
import Foundation
import TensorCore

/// Options every subcommand takes.
struct GlobalOptions: ParsableArguments {
    @Option(help: "Threads for kernels and OpenBLAS (default: all cores).")
    var threads: Int?

    @Flag(help: "Print no progress.")
    var quiet = false

    func apply() throws {
        if let threads {
            guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
            Threads.set(threads)
        } else {
            Threads.set(Threads.count)
        }
    }
}

/// Which model and weights.
struct ModelOptions: ParsableArguments {
    @Option(help: "Model name (a folder of detectors/ with config.json).")
    var model: String

    @Option(help: "Weights: a PyTorch checkpoint (.pth, zip or legacy) or .safetensors.")
    var weights: String?

    @Option(help: "A modified copy of the model's config.json.")
    var config: String?
}

/// The calibration images of `quantize` and `sensitivity`.
struct CalibrationImageOptions: ParsableArguments {
    @Option(help: "Folder of calibration images (.jpg, .jpeg, .png).")
    var calibImages: String

    @Option(help: "Calibration images to use (a seeded choice when the folder has more).")
    var calibCount = 32

    @Option(help: "Seed of the image choice and of the patch sampling.")
    var seed: UInt64 = 0

    func validate() throws {
        guard calibCount >= 1 else { throw ValidationError("--calib-count must be at least 1, got \(calibCount)") }
    }
}

/// A COCO evaluation set: images, ground truth, and an optional prefix of it.
struct EvaluationSetOptions: ParsableArguments {
    @Option(help: "Folder of the images named by the annotations' file_name.")
    var images: String

    @Option(help: "COCO instances file (ground truth).")
    var annotations: String

    @Option(help: "Evaluate only the first N images (after sharding, where the command shards).")
    var limit: Int?

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, got \(limit)") }
    }
}

/// Refuses, before any work, an output file that could not be written at the end: its folder
/// must exist and be a folder, and the path must not be a folder.
func checkOutputFile(_ path: String?, option: String) throws {
    guard let path else { return }
    let url = URL(fileURLWithPath: path)
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
        throw ValidationError("\(option) \(path) is a folder, not a file")
    }
    let folder = url.deletingLastPathComponent().path
    guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw ValidationError("\(option) \(path): no folder \(folder) to write it in")
    }
}
