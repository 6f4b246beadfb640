// Decoding every codec vector against PIL, and every broken file into a named error.
import Foundation
import Testing
@testable import ImageIO

@Suite struct DecodingTests {
    @Test func decodesEveryVectorAsPILDoes() throws {
        let expected = try Fixtures.expected()
        #expect(expected.decodes.count >= 30)
        #expect(Set(expected.decodes.map(\.codec)) == ["jpeg", "png"])
        for vector in expected.decodes {
            let image = try loadImage(at: Fixtures.vector(vector.file))
            let reference = bytes(base64: vector.rgb_base64)
            #expect(image.width == vector.width && image.height == vector.height, "\(vector.file)")
            #expect(image.pixels.count == reference.count, "\(vector.file)")
            if vector.codec == "png" {
                #expect(image.pixels == reference, "\(vector.file): PNG must match PIL exactly")
            } else {
                let difference = maximumDifference(image.pixels, reference)
                #expect(difference <= Tolerance.jpegPixel, "\(vector.file): max difference \(difference)")
            }
        }
    }

    @Test func everyBrokenFileThrowsAnErrorNamingTheFile() throws {
        let expected = try Fixtures.expected()
        #expect(expected.failures.count >= 15)
        for failure in expected.failures {
            let path = Fixtures.vector(failure.file)
            do {
                let image = try loadImage(at: path)
                Issue.record("\(failure.file) decoded to \(image.width)x\(image.height) instead of failing")
            } catch let error as ImageIOError {
                #expect(error.description.contains(path), "\(error)")
                if !failure.message_contains.isEmpty {
                    #expect(error.description.contains(failure.message_contains), "\(failure.file): \(error)")
                }
                switch (failure.kind, error) {
                case ("corrupt", .corruptImage), ("unknownFormat", .unknownFormat):
                    break
                case ("tooManyPixels", .tooManyPixels(_, let width, let height, let limit)):
                    #expect(width == 30000 && height == 30000 && limit == RGBImage.defaultMaxPixels)
                default:
                    Issue.record("\(failure.file): expected \(failure.kind), got \(error)")
                }
            }
        }
    }

    @Test func theCodecIsChosenByMagicBytesNotTheExtension() throws {
        let named = try loadImage(at: Fixtures.vector("png-named-as.jpg"))
        let png = try loadImage(at: Fixtures.vector("png-rgb8.png"))
        #expect(named == png)
        let jpeg = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.vector("jpeg-baseline.jpg"))))
        let fromMemory = try decodeImage(jpeg, source: "memory.png", maxPixels: 1000)
        #expect(fromMemory == (try loadImage(at: Fixtures.vector("jpeg-baseline.jpg"))))
    }

    @Test(arguments: ["png-rgb8.png", "jpeg-baseline.jpg", "jpeg-progressive.jpg", "png-rgb8-adam7.png"])
    func thePixelLimitIsInclusiveAndConfigurable(file: String) throws {
        let path = Fixtures.vector(file)
        let image = try loadImage(at: path, maxPixels: 17 * 13)
        #expect(image.width == 17 && image.height == 13)
        #expect(throws: ImageIOError.tooManyPixels(path: path, width: 17, height: 13, limit: 17 * 13 - 1)) {
            try loadImage(at: path, maxPixels: 17 * 13 - 1)
        }
    }

    @Test func aMissingFileOrAFolderIsAnUnreadableFileError() throws {
        let missing = Fixtures.vector("no-such-file.png")
        do {
            _ = try loadImage(at: missing)
            Issue.record("loading a missing file succeeded")
        } catch let error as ImageIOError {
            guard case let .unreadableFile(path, reason) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(path == missing)
            #expect(reason.contains("No such file"))
            #expect(error.description.contains(missing))
        }
        let folder = Fixtures.codecVectors.path
        #expect(throws: ImageIOError.self) { try loadImage(at: folder) }
    }

    @Test(arguments: ["jpeg-gray.jpg", "jpeg-gray-progressive.jpg", "png-gray1.png", "png-gray16.png", "png-graya8.png"])
    func grayImagesReplicateTheirChannel(file: String) throws {
        let gray = try loadImage(at: Fixtures.vector(file))
        for index in stride(from: 0, to: gray.pixels.count, by: 3) {
            #expect(gray.pixels[index] == gray.pixels[index + 1] && gray.pixels[index] == gray.pixels[index + 2])
        }
    }
}
