import ArgumentParser
import Checkpoints

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a PyTorch checkpoint (.pth, zip or legacy) to .safetensors with the same key names.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The checkpoint to read.")
    var input: String

    @Argument(help: "The .safetensors file to write.")
    var output: String

    func validate() throws {
        try checkOutputFile(output, option: "the output")
    }

    func run() throws {
        try global.apply()
        try convertCheckpoint(from: input, to: output)
    }
}
