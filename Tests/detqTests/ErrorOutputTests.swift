// The command line's error contract (SPEC.md): every error is one `error: …` line on stderr
// and a non-zero exit status; help still prints. Runs the `detq` binary built next to the tests.
import Foundation
import Testing

/// Runs `detq arguments` and returns its exit status, stdout and stderr.
private func detq(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    // The test runner (a file on Linux) and `detq` are built into the same products folder.
    let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    let binary = runner.deletingLastPathComponent().appendingPathComponent("detq")
    guard FileManager.default.isExecutableFile(atPath: binary.path) else {
        throw CLIError(description: "no detq binary at \(binary.path) (test runner \(runner.path))")
    }
    let process = Process()
    process.executableURL = binary
    process.arguments = arguments
    let output = Pipe(), errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    let stdout = output.fileHandleForReading.readDataToEndOfFile()
    let stderr = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
}

private struct CLIError: Error, CustomStringConvertible { let description: String }

@Suite struct ErrorOutputTests {
    /// Usage and validation errors (ArgumentParser's): one line, status 64, where the help is.
    @Test(arguments: [
        (["bench", "--model", "fasterrcnn_mobilenet_v2_shapes", "--size", "0x0"],
         "error: --size must look like 800x1216, got '0x0' (detq bench --help)\n"),
        (["quantize", "--model", "m", "--weights", "w", "--calib-images", "x", "--method", "rtn", "--wbits", "9", "--abits", "8",
          "--out", "q.safetensors"], "error: invalid --wbits '9': bits must be in 2...8 (detq quantize --help)\n"),
        (["frobnicate"], "error: Unexpected argument 'frobnicate' (detq --help)\n"),
        // An output that could not be written at the end is refused before the work.
        (["quantize", "--model", "m", "--weights", "w", "--calib-images", "x", "--method", "rtn", "--wbits", "8", "--abits", "8",
          "--out", "/nonexistent-detq/q.safetensors"],
         "error: --out /nonexistent-detq/q.safetensors: no folder /nonexistent-detq to write it in (detq quantize --help)\n"),
        (["bench", "--model", "fasterrcnn_mobilenet_v2_shapes", "--size", "100000x100000"],
         "error: --size 100000x100000 has more than 89478485 pixels, the most detq reads in an image (detq bench --help)\n"),
    ])
    func usageErrorsAreOneLine(arguments: [String], expected: String) throws {
        let run = try detq(arguments)
        #expect(run.status == 64)
        #expect(run.stderr == expected)
        #expect(run.stdout.isEmpty)
    }

    /// An error from a running command (here a missing file): one line naming it, status 1.
    @Test func runErrorsAreOneLine() throws {
        let missing = "/nonexistent-\(UUID().uuidString)/instances.json"
        let run = try detq(["cocoeval", "--gt", missing, "--dt", missing])
        #expect(run.status == 1)
        #expect(run.stderr.hasPrefix("error: ") && run.stderr.contains(missing))
        #expect(run.stderr.filter { $0 == "\n" }.count == 1 && run.stderr.hasSuffix("\n"))
    }

    /// An output folder that cannot be made is refused before any work (no detections printed).
    @Test func drawFolderCheckedFirst() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("detq-draw-\(UUID().uuidString)").path
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let run = try detq(["detect", "--model", "fasterrcnn_mobilenet_v2_shapes", "--weights", "missing.safetensors",
                            "--draw", file, "image.jpg"])
        #expect(run.status == 1)
        #expect(run.stderr == "error: cannot create the folder \(file): a file of that name exists\n")
        #expect(run.stdout.isEmpty)
    }

    /// Help is not an error: it prints on stdout with status 0.
    @Test func helpPrints() throws {
        let run = try detq(["quantize", "--help"])
        #expect(run.status == 0)
        #expect(run.stdout.contains("USAGE: detq quantize"))
        #expect(run.stderr.isEmpty)
    }
}
