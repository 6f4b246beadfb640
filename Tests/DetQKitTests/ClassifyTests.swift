import Foundation
import ImageIO
import Testing
@testable import DetQKit

/// The repository root, from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
let sharedData = repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/data")

struct ClassifyGolden: Decodable {
    struct Prediction: Decodable { var index: Int; var probability: Float }
    var photos: [String: [Prediction]]
}

@Suite struct ClassifyTests {
    /// torchvision 0.14's top-5 on real photos with the real MobileNetV2 checkpoint
    /// (eval/classify_parity.py wrote the golden).
    @Test func mobileNetV2MatchesTorchvisionOnPhotos() throws {
        let weights = sharedData.appendingPathComponent("weights/mobilenet_v2-b0353104.pth")
        guard FileManager.default.fileExists(atPath: weights.path) else {
            print("skipped: needs ../shared/data/weights (absent here)")
            return
        }
        let golden = try JSONDecoder().decode(
            ClassifyGolden.self,
            from: Data(contentsOf: repositoryRoot.appendingPathComponent("Tests/DetQKitTests/Fixtures/classify_golden.json")))
        let model = try ClassificationModel(
            model: "mobilenet_v2", weights: weights.path,
            configPath: repositoryRoot.appendingPathComponent("detectors/mobilenet_v2/config.json").path)
        for photo in ["coffee.png", "chelsea.png", "eagle.jpg", "horses.jpg"] {
            let image = try loadImage(at: sharedData.appendingPathComponent("photos/\(photo)").path)
            let top = topPredictions(model.probabilities(image), names: model.classNames, k: 5)
            let expected = try #require(golden.photos[photo])
            #expect(top.map(\.index) == expected.map(\.index), "\(photo)")
            for (mine, theirs) in zip(top, expected) {
                #expect(abs(mine.probability - theirs.probability) < 1e-4, "\(photo) class \(theirs.index)")
            }
        }
        #expect(model.classNames[967] == "espresso")
    }

    @Test func unknownModelNamesTheKnownOnes() {
        #expect {
            _ = try ModelCatalog.configURL(model: "no_such_model", configPath: nil)
        } throws: { error in
            "\(error)".contains("unknown model 'no_such_model'") && "\(error)".contains("mobilenet_v2")
        }
    }
}
