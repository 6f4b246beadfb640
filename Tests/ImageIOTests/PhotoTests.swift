// The real photos in ../shared/data/photos against PIL's decode and torchvision's transform.
import Foundation
import Testing
@testable import ImageIO

@Suite(.enabled(if: Fixtures.photosAvailable, "needs ../shared/data/photos (absent here)"))
struct PhotoTests {
    @Test func decodesEveryPhotoAsPILDoes() throws {
        let goldens = try Fixtures.photoGoldens()
        let files = try FileManager.default.contentsOfDirectory(atPath: Fixtures.photos.path)
        #expect(goldens.photos.count == 13 && Set(goldens.photos.map(\.file)).isSubset(of: files))
        for photo in goldens.photos {
            let image = try loadImage(at: Fixtures.photos.appendingPathComponent(photo.file).path)
            #expect(image.width == photo.width && image.height == photo.height, "\(photo.file)")
            let isPNG = photo.file.hasSuffix(".png")
            // 16 x 16 grid at ((2i + 1) * W / 32, (2j + 1) * H / 32)
            var grid: [UInt8] = []
            for j in 0..<16 {
                for i in 0..<16 {
                    let pixel = image.pixel(x: (2 * i + 1) * image.width / 32, y: (2 * j + 1) * image.height / 32)
                    grid += [pixel.0, pixel.1, pixel.2]
                }
            }
            let difference = maximumDifference(grid, bytes(base64: photo.grid_16x16_rgb_base64))
            #expect(difference <= (isPNG ? 0 : Tolerance.jpegPixel), "\(photo.file): grid difference \(difference)")
            for channel in 0..<3 {
                let sum = stride(from: channel, to: image.pixels.count, by: 3).reduce(0) { $0 + Int(image.pixels[$1]) }
                let mean = Double(sum) / Double(image.width * image.height)
                #expect(abs(mean - photo.channel_means[channel]) <= (isPNG ? 1e-4 : Tolerance.jpegMean),
                        "\(photo.file) channel \(channel): mean \(mean) vs \(photo.channel_means[channel])")
            }
        }
    }

    @Test func imagenetPreprocessOfEveryPhotoMatchesTorchvision() throws {
        let goldens = try Fixtures.photoGoldens()
        for photo in goldens.photos {
            let image = try loadImage(at: Fixtures.photos.appendingPathComponent(photo.file).path)
            let tensor = imagenetPreprocess(image)
            #expect(tensor.count == 3 * 224 * 224)
            let isPNG = photo.file.hasSuffix(".png")
            let (values, means) = compare(tensor, with: photo.preprocess)
            #expect(values <= (isPNG ? Tolerance.tensorExact : Tolerance.jpegTensor), "\(photo.file): \(values)")
            #expect(means <= (isPNG ? 1e-6 : Double(Tolerance.jpegTensor)), "\(photo.file): \(means)")
        }
    }
}
