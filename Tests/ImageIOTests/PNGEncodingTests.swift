// PNG encoding round trips and atomic PNG files.
import Foundation
import Testing
@testable import ImageIO

@Suite struct PNGEncodingTests {
    func randomImage(width: Int, height: Int, seed: UInt64) -> RGBImage {
        var random = TestRandom(seed: seed)
        return RGBImage(width: width, height: height,
                        pixels: (0..<width * height * 3).map { _ in UInt8(random.next(in: 0...255)) })
    }

    @Test(arguments: [(1, 1), (23, 17), (64, 3), (5, 130)])
    func encodeThenDecodeGivesTheSamePixels(width: Int, height: Int) throws {
        let image = randomImage(width: width, height: height, seed: UInt64(width * 1000 + height))
        let png = try encodePNG(image)
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        #expect(try decodeImage(png, source: "round trip", maxPixels: RGBImage.defaultMaxPixels) == image)
    }

    @Test func decodedVectorsReencodeLosslessly() throws {
        for name in ["png-palette8-trns.png", "png-rgba16-adam7.png", "jpeg-ycck.jpg"] {
            let image = try loadImage(at: Fixtures.vector(name))
            #expect(try decodeImage(try encodePNG(image), source: name, maxPixels: 10_000) == image, "\(name)")
        }
    }

    @Test func anEmptyImageCannotBeEncoded() {
        #expect(throws: ImageIOError.self) { try encodePNG(RGBImage(width: 0, height: 5)) }
    }

    @Test func writePNGIsAtomicAndReplacesAnExistingFile() throws {
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("imageio-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("out.png").path

        let first = randomImage(width: 9, height: 4, seed: 1)
        try writePNG(first, to: path)
        #expect(try loadImage(at: path) == first)
        let second = randomImage(width: 3, height: 11, seed: 2)
        try writePNG(second, to: path)
        #expect(try loadImage(at: path) == second)
        // no temporary file left behind
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["out.png"])
    }

    @Test func writingIntoAMissingFolderNamesThePath() throws {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("imageio-missing-\(UUID().uuidString)/out.png").path
        do {
            try writePNG(RGBImage(width: 2, height: 2), to: path)
            Issue.record("writing into a missing folder succeeded")
        } catch let error as ImageIOError {
            guard case .unwritableFile = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(error.description.contains(path))
        }
    }
}
