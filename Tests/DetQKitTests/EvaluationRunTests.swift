import COCO
import Foundation
import Testing
@testable import DetQKit

private func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("detq-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite struct EvaluationRunTests {
    @Test func shardsPartitionTheImagesAndLimitCutsEachShard() {
        let ids = [42, 7, 13, 99, 1, 5, 64]
        let shards = (0..<3).map { ImageSelection(shard: ($0, 3)).apply(to: ids) }
        #expect(shards[0] == [1, 13, 99])
        #expect(shards[1] == [5, 42])
        #expect(shards[2] == [7, 64])
        #expect(Set(shards.flatMap { $0 }) == Set(ids))
        #expect(ImageSelection(shard: (1, 3), limit: 1).apply(to: ids) == [5])
        #expect(ImageSelection(limit: 2).apply(to: ids) == [1, 5])
    }

    @Test func journalResumesAfterATornLine() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("r.json.partial").path
        let record = ResultRecord(image_id: 3, category_id: 1, bbox: [1, 2, 3, 4], score: 0.5)
        do {
            let journal = try ResultsJournal(path: path, resume: false)
            try journal.append(imageID: 3, results: [record])
            try journal.append(imageID: 4, results: [])
            journal.close()
        }
        // A kill in the middle of the next line.
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data("{\"image_id\": 5, \"resu".utf8))
        try handle.close()
        #expect(throws: EvaluationRunError.self) { try ResultsJournal(path: path, resume: false) }
        let resumed = try ResultsJournal(path: path, resume: true)
        #expect(resumed.done.keys.sorted() == [3, 4])
        #expect(resumed.done[3] == [record])
        try resumed.append(imageID: 5, results: [])
        resumed.close()
        let again = try ResultsJournal(path: path, resume: true)
        #expect(again.done.keys.sorted() == [3, 4, 5])
        again.close()
    }

    @Test func mergedShardsEvaluateAsOneRun() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let goldens = repositoryRoot.appendingPathComponent("eval/goldens/cocoeval")
        let groundTruth = try loadInstances(path: goldens.appendingPathComponent("mixed.gt.json").path)
        let all = try loadResults(path: goldens.appendingPathComponent("mixed.dt.json").path, groundTruth: groundTruth)
        let single = COCOEvaluator(groundTruth: groundTruth, results: all).run()
        // Split by shard of image id, write each shard, merge them back.
        var paths: [String] = []
        for index in 0..<3 {
            let ids = Set(ImageSelection(shard: (index, 3)).apply(to: groundTruth.images.map(\.id)))
            let records = all.detections.filter { ids.contains($0.imageId) }.map {
                ResultRecord(image_id: $0.imageId, category_id: $0.categoryId,
                             bbox: [$0.bbox.x, $0.bbox.y, $0.bbox.width, $0.bbox.height], score: $0.score)
            }
            let path = directory.appendingPathComponent("shard\(index).json").path
            try writeResults(records, to: path)
            paths.append(path)
        }
        let mergedPath = directory.appendingPathComponent("merged.json").path
        #expect(try mergeResults(paths, to: mergedPath) == all.detections.count)
        let merged = try loadResults(path: mergedPath, groundTruth: groundTruth)
        let evaluation = COCOEvaluator(groundTruth: groundTruth, results: merged).run()
        #expect(evaluation.stats == single.stats)
        // The same shard twice is refused, naming the image and both files.
        #expect {
            _ = try mergeResults([paths[0], paths[0]], to: mergedPath)
        } throws: { "\($0)".contains("shard0.json") && "\($0)".contains("is in both") }
        // A box that is not four numbers is refused, naming the file and the field; nothing is written.
        let bad = directory.appendingPathComponent("bad.json").path
        try Data(#"[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3], "score": 0.5}]"#.utf8).write(to: URL(fileURLWithPath: bad))
        let untouched = directory.appendingPathComponent("untouched.json").path
        #expect {
            _ = try mergeResults([paths[1], bad], to: untouched)
        } throws: { "\($0)" == "\(bad) is not a COCO results file: field '[0].bbox': bbox must be [x, y, width, height], got 3 numbers" }
        #expect(!FileManager.default.fileExists(atPath: untouched))
    }
}

@Suite struct AtomicWriteTests {
    @Test func replacesAnExistingFileAndLeavesNoTemporary() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("detq-atomic-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("out.json").path
        try writeAtomically(Data("first".utf8), to: path)
        try writeAtomically(Data("second".utf8), to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "second")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["out.json"])
        #expect(throws: (any Error).self) { try writeAtomically(Data("x".utf8), to: directory.path + "/missing/out.json") }
    }
}
