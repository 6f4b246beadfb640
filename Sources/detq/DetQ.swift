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
                      Quantize.self]
    )

    /// Parse errors and help go through ArgumentParser; errors from a running command are one
    /// `error: …` line on stderr and exit status 1.
    static func main() {
        var command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            exit(withError: error)
        }
        do {
            try command.run()
        } catch let error as CleanExit {
            exit(withError: error)
        } catch let error as ExitCode {
            exit(withError: error)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            Foundation.exit(1)
        }
    }
}
