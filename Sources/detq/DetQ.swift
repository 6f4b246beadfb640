// The detq command: one root with verb subcommands; each run() only calls library APIs.
import ArgumentParser
import DetQKit
import Foundation

@main
struct DetQ: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detq",
        abstract: "Post-training quantization of object detectors, on the CPU.",
        subcommands: [Classify.self, Detect.self, Eval.self, Merge.self, CocoEval.self, Convert.self, Bench.self,
                      Quantize.self, Compare.self, Sensitivity.self]
    )

    /// Parse errors, validation and help go through ArgumentParser; errors from a running
    /// command (a bad file, key or field) are one `error: …` line on stderr and exit status 1.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
                exit(withError: error)
            }
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            Foundation.exit(1)
        }
    }
}
