// The JSON readers: valid files in all their variants, and every kind of bad input named precisely.
import Foundation
import Testing
@testable import COCO

func instances(_ text: String, file: String = "gt.json") throws(COCOError) -> COCODataset {
    let bytes = Array(text.utf8)
    return try bytes.withUnsafeBufferPointer { (buffer) throws(COCOError) -> COCODataset in
        try parseInstances(buffer, file: file)
    }
}

func detections(_ text: String, file: String = "dt.json") throws(COCOError) -> [COCODetection] {
    let bytes = Array(text.utf8)
    return try bytes.withUnsafeBufferPointer { (buffer) throws(COCOError) -> [COCODetection] in
        try parseResults(buffer, file: file)
    }
}

/// The error a throwing call gives (nil if none or not a COCOError).
func error<T>(_ body: () throws -> T) -> COCOError? {
    do {
        _ = try body()
        return nil
    } catch {
        return error as? COCOError
    }
}

let minimalAnnotation = #"{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "area": 12, "iscrowd": 0}"#

func instancesText(annotation: String = minimalAnnotation) -> String {
    #"{"images": [{"id": 1}], "categories": [{"id": 1, "name": "a"}], "annotations": ["# + annotation + "]}"
}

@Suite struct LoaderTests {
    @Test func readsAllFieldsAndSkipsOthers() throws {
        let text = """
            {"info": {"year": 2017, "nested": [1, 2.5e-3, {"a": null}, true, false, "x\\u00e9"]},
             "licenses": [],
             "images": [{"id": 7, "file_name": "a\\/b.jpg", "width": 640, "height": 480, "license": 3},
                        {"height": 10, "id": 9.0}],
             "categories": [{"supercategory": "animal", "id": 18, "name": "caf\\u00e9 \\"dog\\" \\ud83d\\udc36"}],
             "annotations": [{"segmentation": [[1, 2, 3, 4, 5, 6]], "area": 1234.5, "iscrowd": 1,
                              "image_id": 7, "bbox": [1.5, -2, 3e1, 4E-1], "category_id": 18, "id": 0,
                              "ignore": 1},
                             {"id": 2, "image_id": 9, "category_id": 18, "bbox": [0, 0, 1, 1], "area": 1,
                              "iscrowd": false}]}
            """
        let dataset = try instances(text)
        #expect(dataset.images == [COCOImage(id: 7, fileName: "a/b.jpg", width: 640, height: 480),
                                   COCOImage(id: 9, height: 10)])
        #expect(dataset.categories == [COCOCategory(id: 18, name: "café \"dog\" 🐶", supercategory: "animal")])
        #expect(dataset.annotations == [
            COCOAnnotation(id: 0, imageId: 7, categoryId: 18, bbox: COCOBox(x: 1.5, y: -2, width: 30, height: 0.4),
                           area: 1234.5, isCrowd: true),
            COCOAnnotation(id: 2, imageId: 9, categoryId: 18, bbox: COCOBox(x: 0, y: 0, width: 1, height: 1),
                           area: 1, isCrowd: false),
        ])
    }

    @Test func lastDuplicateKeyWinsAndEscapedKeysMatch() throws {
        let dataset = try instances(#"{"images": [{"id": 1, "id": 2}], "categories": [], "annotations": [], "im\u0061ges": [{"id": 3}]}"#)
        #expect(dataset.images.map(\.id) == [3])
        let again = try instances(#"{"images": [{"id": 1, "id": 2}], "categories": [], "annotations": []}"#)
        #expect(again.images.map(\.id) == [2])
    }

    @Test func readsResults() throws {
        let list = try detections(#"[{"image_id": 1, "category_id": 3, "bbox": [1, 2, 3.5, 4], "score": 0.25, "id": 99, "area": 5},{"score":1,"bbox":[0,0,0,0],"category_id":-1,"image_id":2}]"#)
        #expect(list == [COCODetection(imageId: 1, categoryId: 3, bbox: COCOBox(x: 1, y: 2, width: 3.5, height: 4), score: 0.25),
                         COCODetection(imageId: 2, categoryId: -1, bbox: COCOBox(x: 0, y: 0, width: 0, height: 0), score: 1)])
        #expect(try detections(" [ ] \n").isEmpty)
    }

    @Test(arguments: [
        ("", 1, 1), ("{", 1, 2), (#"{"a": [1,]}"#, 1, 10), (#"{"images": NaN}"#, 1, 12),
        (#"{"a": 01}"#, 1, 8), (#"{"images": "abc}"#, 1, 12), ("{\"images\": \"a\tb\"}", 1, 14),
        (#"{"images": [], } "#, 1, 16), (#"{"images": []} x"#, 1, 16), ("{\n  \"a\": tru}", 2, 8),
        (#"{"a": "\x"}"#, 1, 8), (#"{"a": 1.}"#, 1, 9), (#"{"a": -}"#, 1, 8), (#"{"a": 1e}"#, 1, 9),
        (#"{"a" 1}"#, 1, 6), (#"{1: 2}"#, 1, 2), ("\u{FEFF}{}", 1, 1), (#"{"a": "\ud83d\u12"}"#, 1, 14),
    ])
    func malformedJSONNamesFileLineAndColumn(_ text: String, _ line: Int, _ column: Int) {
        let found = error { try instances(text, file: "bad.json") }
        guard case let .malformedJSON(file, foundLine, foundColumn, _) = found else {
            Issue.record("expected malformed JSON for \(text.debugDescription), got \(String(describing: found))")
            return
        }
        #expect(file == "bad.json")
        #expect(foundLine == line && foundColumn == column, "\(text.debugDescription): \(found!)")
    }

    @Test func missingFieldsAreNamed() {
        #expect(error { try instances(#"{"images": [], "categories": []}"#) }
                == .missingField(file: "gt.json", field: "annotations"))
        #expect(error { try instances(#"{"images": [{"id": 1}, {"width": 3}], "categories": [], "annotations": []}"#) }
                == .missingField(file: "gt.json", field: "images[1].id"))
        #expect(error { try instances(#"{"images": [], "categories": [{"id": 1}], "annotations": []}"#) }
                == .missingField(file: "gt.json", field: "categories[0].name"))
        for field in ["id", "image_id", "category_id", "bbox", "area", "iscrowd"] {
            let annotation = minimalAnnotation.replacingOccurrences(of: "\"\(field)\":", with: "\"other_\(field)\":")
            #expect(error { try instances(instancesText(annotation: annotation)) }
                    == .missingField(file: "gt.json", field: "annotations[0].\(field)"))
        }
        for field in ["image_id", "category_id", "bbox", "score"] {
            let result = #"{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}"#
                .replacingOccurrences(of: "\"\(field)\":", with: "\"x\":")
            #expect(error { try detections("[\(result)]") } == .missingField(file: "dt.json", field: "[0].\(field)"))
        }
    }

    @Test func mistypedFieldsAreNamed() {
        #expect(error { try instances("[]") } == .invalidField(file: "gt.json", field: "the top level", expected: "an object"))
        #expect(error { try detections("{}") }
                == .invalidField(file: "dt.json", field: "the top level", expected: "an array of result objects"))
        #expect(error { try instances(#"{"images": {}, "categories": [], "annotations": []}"#) }
                == .invalidField(file: "gt.json", field: "images", expected: "an array"))
        #expect(error { try instances(#"{"images": [{"id": "1"}], "categories": [], "annotations": []}"#) }
                == .invalidField(file: "gt.json", field: "images[0].id", expected: "an integer"))
        #expect(error { try instances(#"{"images": [{"id": 1.5}], "categories": [], "annotations": []}"#) }
                == .invalidField(file: "gt.json", field: "images[0].id", expected: "an integer"))
        #expect(error { try instances(#"{"images": [], "categories": [{"id": 1, "name": 5}], "annotations": []}"#) }
                == .invalidField(file: "gt.json", field: "categories[0].name", expected: "a string"))
        let cases: [(String, String, String)] = [
            (#""bbox": [1, 2, 3]"#, "annotations[0].bbox", "an array of 4 numbers"),
            (#""bbox": [1, 2, 3, 4, 5]"#, "annotations[0].bbox", "an array of 4 numbers"),
            (#""bbox": [1, 2, null, 4]"#, "annotations[0].bbox[2]", "a number"),
            (#""bbox": "1 2 3 4""#, "annotations[0].bbox", "an array of 4 numbers"),
            (#""area": null"#, "annotations[0].area", "a number"),
            (#""iscrowd": "no""#, "annotations[0].iscrowd", "0, 1, true or false"),
        ]
        for (replacement, field, expected) in cases {
            let key = replacement.prefix { $0 != ":" }
            let annotation = minimalAnnotation.replacingOccurrences(
                of: #"\#(key): [^,}]*(\][^,}]*)?"#, with: replacement, options: .regularExpression)
            #expect(error { try instances(instancesText(annotation: annotation)) }
                    == .invalidField(file: "gt.json", field: field, expected: expected), "\(annotation)")
        }
        #expect(error { try detections(#"[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": "high"}]"#) }
                == .invalidField(file: "dt.json", field: "[0].score", expected: "a number"))
        #expect(error { try detections(#"[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 1}, 5]"#) }
                == .invalidField(file: "dt.json", field: "[1]", expected: "an object"))
    }

    @Test func aBadValueInsideAMistypedFieldIsStillMalformedJSON() {
        guard case .malformedJSON = error({ try instances(#"{"images": [{"id": [1,]}]}"#) }) else {
            Issue.record("a syntax error must win over a type error")
            return
        }
    }

    @Test func resultsOnUnknownImagesAreAnErrorNamingTheId() throws {
        let dataset = try instances(instancesText())
        let list = [COCODetection(imageId: 1, categoryId: 1, bbox: COCOBox(x: 0, y: 0, width: 1, height: 1), score: 1),
                    COCODetection(imageId: 42, categoryId: 1, bbox: COCOBox(x: 0, y: 0, width: 1, height: 1), score: 1)]
        #expect(error { try COCOResults(detections: list, groundTruth: dataset, source: "r.json") }
                == .unknownImage(file: "r.json", field: "[1].image_id", imageId: 42))
        #expect(COCOError.unknownImage(file: "r.json", field: "[1].image_id", imageId: 42).description.contains("42"))
        #expect(try COCOResults(detections: [], groundTruth: dataset).detections.isEmpty)
    }

    @Test func filesThatCannotBeReadAreNamed() throws {
        let missing = "/nonexistent/instances.json"
        guard case let .unreadableFile(path, _) = error({ try loadInstances(path: missing) }) else {
            Issue.record("expected unreadableFile")
            return
        }
        #expect(path == missing)
        guard case .unreadableFile = error({ try loadInstances(path: NSTemporaryDirectory()) }) else {
            Issue.record("a folder is not an instances file")
            return
        }
    }

    @Test func errorMessagesAreOneLineNamingFileAndField() {
        let message = COCOError.missingField(file: "gt.json", field: "annotations[3].area").description
        #expect(message == "gt.json: missing field annotations[3].area")
        #expect(!COCOError.malformedJSON(file: "a", line: 2, column: 3, message: "m").description.contains("\n"))
    }
}

@Suite struct NumberTests {
    /// Every number form a JSON writer produces reads as the nearest Double, the same as Swift's
    /// own correctly rounded parser gives (an independent implementation).
    @Test func numbersRoundCorrectly() throws {
        var generator = SystemRandomNumberGenerator()
        var texts = ["0", "-0", "1", "-1", "0.1", "0.30000000000000004", "123.45677947998047", "9007199254740993",
                     "18446744073709551615", "18446744073709551616", "1e22", "1e23", "1.7976931348623157e308",
                     "2.2250738585072014e-308", "4.9e-324", "1e-400", "1e400", "123456789012345678901234567890",
                     "0.000000000000000000000000000001", "1.00000000000000011102230246251565404236316680908203125",
                     "1.000000000000000111022302462515654042363166809082031251", "7.0e0", "100E-2", "5e+3"]
        for _ in 0..<3000 {
            let value = Double(bitPattern: generator.next() & 0x7FEF_FFFF_FFFF_FFFF)
            texts.append(value.description)
            let float = Float(bitPattern: UInt32(truncatingIfNeeded: generator.next()) & 0x7F7F_FFFF)
            texts.append(Double(float).description)  // float32 values as Python writes them
            texts.append(String(Double.random(in: 0..<1000, using: &generator)))
            texts.append(String(format: "%.3f", Double.random(in: -1000..<1000, using: &generator)))
        }
        let body = texts.map { "[\($0), 0, 0, 0]" }
        let json = "[" + body.map { #"{"image_id": 1, "category_id": 1, "score": 0, "bbox": \#($0)}"# }
            .joined(separator: ",") + "]"
        let parsed = try detections(json)
        try #require(parsed.count == texts.count)
        for (text, detection) in zip(texts, parsed) {
            let expected = try #require(Double(text))
            #expect(detection.bbox.x.bitPattern == expected.bitPattern, "\(text)")
        }
    }

    @Test func integersAreExactOrRejected() throws {
        let big = try instances(#"{"images": [{"id": 9223372036854775807}, {"id": -9223372036854775808}, {"id": 1e3}], "categories": [], "annotations": []}"#)
        #expect(big.images.map(\.id) == [Int.max, Int.min, 1000])
        #expect(error { try instances(#"{"images": [{"id": 9223372036854775808}], "categories": [], "annotations": []}"#) }
                == .invalidField(file: "gt.json", field: "images[0].id", expected: "an integer"))
    }
}
