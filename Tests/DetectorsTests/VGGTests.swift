// VGG-16 features as torchvision's make_layers(cfgs["D"]): keys, pool positions, SSD's ceil-mode pool.
import Foundation
import Layers
import TensorCore
import Testing
@testable import Detectors

@Suite struct VGGTests {
    private struct Structure: Decodable {
        let pools: [Int]
        let ceilMode: [Int]
    }

    @Test func featuresHaveTorchvisionsKeysAndPools() throws {
        let url = SSDFixture.url("ssd", "vgg16_features_structure.json")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let keys = try SSDFixture.structure(fromJSON: try #require(object["keys"]))
        let vgg = VGG()
        // make_layers returns the Sequential itself: its keys are VGG's `features.*` without the prefix.
        expectSameStructure(vgg.features, keys)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let structure = try decoder.decode(Structure.self, from: Data(contentsOf: url))
        #expect(vgg.maxPoolIndices == structure.pools)
        #expect(vgg.featureChannels.last == 512)
        #expect(vgg.featureLayers.compactMap { ($0 as? MaxPool2d)?.ceilMode }.allSatisfy { !$0 })
        // SSD's extractor keeps features 0…22 and patches ceil_mode into the third pool.
        let extractor = SSDFeatureExtractorVGG()
        let ceil = extractor.features.layers.enumerated().compactMap { index, layer in
            (layer as? MaxPool2d)?.ceilMode == true ? index : nil
        }
        #expect(ceil == structure.ceilMode)
        #expect(extractor.features.layers.count == structure.pools[3])
    }

    @Test func ceilModePoolRoundsUp() {
        let input = Tensor(shape: [1, 1, 3, 3], scalars: (1...9).map(Float.init))
        let floor = MaxPool2d(kernelSize: 2, stride: 2)(input)
        let ceil = MaxPool2d(kernelSize: 2, stride: 2, ceilMode: true)(input)
        #expect(floor.shape == [1, 1, 1, 1] && floor.scalars == [5])
        // torch: the partial windows at the edge are kept.
        #expect(ceil.shape == [1, 1, 2, 2] && ceil.scalars == [5, 6, 8, 9])
    }

    @Test func widthMultiplierNarrowsEveryConv() {
        let vgg = VGG(widthMultiplier: 1.0 / 32)
        let widths = vgg.featureLayers.compactMap { ($0 as? Conv2d)?.outChannels }
        #expect(widths == [2, 2, 4, 4, 8, 8, 8, 16, 16, 16, 16, 16, 16])
    }
}
