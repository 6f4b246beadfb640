import ArgumentParser
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
