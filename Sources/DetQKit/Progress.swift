// Progress on stderr: a bar with count, rate and ETA on a terminal, plain lines otherwise.
import Foundation

/// Reports progress of `total` units of work on stderr. On a terminal it redraws one line
/// (count, rate, ETA); otherwise it prints a plain line about every 5 seconds; `quiet`
/// silences it. Work shorter than a second prints nothing.
public final class ProgressReporter: @unchecked Sendable {
    private let label: String
    private let total: Int
    private let quiet: Bool
    private let isTerminal = isatty(STDERR_FILENO) != 0
    private let start = Date()
    private var lastPrint = Date.distantPast
    private var done = 0
    private var printedAnything = false
    private let lock = NSLock()

    public init(_ label: String, total: Int, quiet: Bool) {
        self.label = label
        self.total = total
        self.quiet = quiet
    }

    /// Records `count` more finished units (thread-safe).
    public func advance(by count: Int = 1) {
        lock.lock()
        defer { lock.unlock() }
        done += count
        guard !quiet else { return }
        let now = Date()
        let elapsed = now.timeIntervalSince(start)
        let interval = isTerminal ? 0.2 : 5.0
        guard elapsed >= 1, now.timeIntervalSince(lastPrint) >= interval || done == total else { return }
        lastPrint = now
        printedAnything = true
        let rate = Double(done) / max(elapsed, 1e-9)
        let remaining = rate > 0 ? Double(max(0, total - done)) / rate : 0
        let line = "\(label) \(done)/\(total)  \(String(format: "%.2f", rate))/s  ETA \(Self.clock(remaining))"
        if isTerminal {
            let width = 24
            let filled = total > 0 ? width * done / total : width
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            FileHandle.standardError.write(Data("\r\(bar) \(line)\u{1B}[K".utf8))
        } else {
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }

    /// Ends the bar's line on a terminal.
    public func finish() {
        lock.lock()
        defer { lock.unlock() }
        if printedAnything && isTerminal && !quiet { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
            : String(format: "%d:%02d", s / 60, s % 60)
    }
}
