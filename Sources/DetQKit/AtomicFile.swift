// Results are written whole or not at all: a temporary name in the same folder, then rename.
import Foundation

/// Writes `data` to `path` through a temporary file in the same folder and a rename, so a
/// reader never sees half a file.
public func writeAtomically(_ data: Data, to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let temporary = url.deletingLastPathComponent()
        .appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)")
    do {
        try data.write(to: temporary)
        // rename(2) replaces an existing file atomically (FileManager's replaceItemAt does not
        // on Linux).
        guard rename(temporary.path, url.path) == 0 else {
            throw ModelDescriptionError(String(cString: strerror(errno)))
        }
    } catch {
        try? FileManager.default.removeItem(at: temporary)
        throw ModelDescriptionError("cannot write \(path): \(error.localizedDescription)")
    }
}

/// Creates the output folder `path` (and its parents) if missing; an error names it and why.
public func createOutputDirectory(_ path: String) throws {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
        guard isDirectory.boolValue else { throw ModelDescriptionError("cannot create the folder \(path): a file of that name exists") }
        return
    }
    do {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
        throw ModelDescriptionError("cannot create the folder \(path): \(error.localizedDescription)")
    }
}

/// Encodes `value` as pretty, key-sorted JSON.
public func encodeJSON<T: Encodable>(_ value: T) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return try encoder.encode(value)
}
