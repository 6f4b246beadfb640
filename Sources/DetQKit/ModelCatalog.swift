// Finds model descriptions (detectors/<name>/config.json) and reads them.
import Foundation

/// An error in a model description or in locating one.
public struct ModelDescriptionError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Where model descriptions live: `$DETQ_HOME/detectors`, `./detectors`, or the
/// `detectors` folder above the running executable (a build inside the repository).
public enum ModelCatalog {
    /// The `detectors` folder in use, if any.
    public static func detectorsRoot() -> URL? {
        let fileManager = FileManager.default
        var candidates: [URL] = []
        if let home = ProcessInfo.processInfo.environment["DETQ_HOME"] {
            candidates.append(URL(fileURLWithPath: home).appendingPathComponent("detectors"))
        }
        candidates.append(URL(fileURLWithPath: fileManager.currentDirectoryPath).appendingPathComponent("detectors"))
        var directory = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath()
            .deletingLastPathComponent()
        for _ in 0..<6 {
            candidates.append(directory.appendingPathComponent("detectors"))
            directory = directory.deletingLastPathComponent()
        }
        return candidates.first { url in
            var isDirectory: ObjCBool = false
            return fileManager.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
        }
    }

    /// The config file for `model`, or `configPath` when given.
    public static func configURL(model: String, configPath: String?) throws -> URL {
        if let configPath { return URL(fileURLWithPath: configPath) }
        guard let root = detectorsRoot() else {
            throw ModelDescriptionError(
                "no detectors/ folder found for model '\(model)': run from the detq checkout, set DETQ_HOME, or pass --config")
        }
        let url = root.appendingPathComponent(model).appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: url.path) else {
            let known = (try? FileManager.default.contentsOfDirectory(atPath: root.path))?
                .filter { FileManager.default.fileExists(atPath: root.appendingPathComponent($0 + "/config.json").path) }
                .sorted() ?? []
            throw ModelDescriptionError("unknown model '\(model)' (no \(url.path)); known: \(known.joined(separator: ", "))")
        }
        return url
    }

    /// Decodes a snake_case JSON config file into `T`, naming the file and field on error.
    public static func decode<T: Decodable>(_ type: T.Type, from url: URL) throws -> T {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw ModelDescriptionError("cannot read \(url.path): \(error.localizedDescription)")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            return try decoder.decode(T.self, from: data)
        } catch {
            throw ModelDescriptionError("\(url.path): \(describeDecodingFailure(error))")
        }
    }

    /// Reads a class-name list (one per line) that sits next to the detectors folder's configs.
    public static func classNames(file: String, relativeTo configURL: URL) throws -> [String] {
        let candidates = [
            configURL.deletingLastPathComponent().appendingPathComponent(file),
            configURL.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(file),
        ]
        guard let url = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) else {
            throw ModelDescriptionError("\(configURL.path): class_names file '\(file)' not found")
        }
        let text = try String(contentsOf: url, encoding: .utf8)
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        return lines
    }
}
