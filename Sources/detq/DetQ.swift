import ArgumentParser
import DetQKit

@main
struct DetQ: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detq",
        abstract: "Post-training quantization of object detectors, on the CPU.",
        subcommands: [CocoEval.self]
    )
}
