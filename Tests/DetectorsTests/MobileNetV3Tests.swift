// MobileNetV3 against torchvision 0.14: state-dict structure of five variants and a dilated Small classifier run.
import Checkpoints
import Foundation
import Layers
import TensorCore
import Testing
@testable import Detectors

@Suite struct MobileNetV3Tests {
    private struct Variant {
        let variant: MobileNetV3.Variant
        let widthMult: Double
        let reducedTail: Bool
        let dilated: Bool
        let keys: [(key: String, shape: [Int])]
        let stageIndices: [Int]
        let featureChannels: [Int]
    }

    private func variants() throws -> [Variant] {
        let url = SSDFixture.url("ssdlite", "mobilenet_v3_structure.json")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [[String: Any]])
        return try rows.map { row in
            let name = try #require(row["variant"] as? String)
            return Variant(variant: try #require(MobileNetV3.Variant(rawValue: name)),
                    widthMult: try #require(row["width_mult"] as? Double),
                    reducedTail: try #require(row["reduced_tail"] as? Bool),
                    dilated: try #require(row["dilated"] as? Bool),
                    keys: try SSDFixture.structure(fromJSON: try #require(row["keys"])),
                    stageIndices: try #require(row["stage_indices"] as? [Int]),
                    featureChannels: try #require(row["feature_channels"] as? [Int]))
        }
    }

    @Test func variantsHaveTorchvisionsStructure() throws {
        let all = try variants()
        #expect(all.count == 5)
        for v in all {
            let net = MobileNetV3(variant: v.variant, numClasses: 1000, widthMultiplier: v.widthMult,
                                  reducedTail: v.reducedTail, dilated: v.dilated)
            expectSameStructure(net, v.keys)
            #expect(net.stageIndices == v.stageIndices, "\(v.variant) \(v.widthMult)")
            #expect(net.featureChannels == v.featureChannels, "\(v.variant) \(v.widthMult)")
        }
    }

    @Test func largeStagesAreTheDetectionCuts() {
        let net = MobileNetV3(numClasses: nil)
        #expect(net.stageIndices == [2, 4, 7, 13])
        #expect(net.features.layers.count == 17)
        #expect(net.featureChannels[13] == 160 && net.featureChannels[16] == 960)
        #expect(net.children.map(\.name) == ["features"])
    }

    @Test func dilatedSmallClassifierMatchesTorchvision() throws {
        let net = MobileNetV3(variant: .small, numClasses: 10, widthMultiplier: 0.25, reducedTail: true, dilated: true)
        let path = SSDFixture.url("ssdlite", "mobilenet_v3_small_dilated.safetensors").path
        try net.load(from: ParameterLoader(try readSafeTensors(at: path), source: path))
        let goldens = try SSDGoldens(family: "ssdlite", name: "mobilenet_v3_small_dilated_goldens")
        let input = SSDFixture.patternImage(channels: 3, height: 64, width: 64).reshaped([1, 3, 64, 64])
        var x = input
        for (index, layer) in net.featureLayers.enumerated() {
            x = layer(x)
            if goldens.entries["features.\(index)"] != nil {
                try goldens.expectMatches(x, "features.\(index)")
            }
        }
        // Dilation keeps the last stage at stride 16 (64 / 16); the reduced tail's last conv has
        // 6 · make_divisible(96 / 2 · 0.25, 8) = 96 channels.
        #expect(x.shape == [1, 96, 4, 4])
        let logits = net(input)
        let expected = try goldens.tensor("logits")
        #expect(logits.shape == expected.shape)
        let difference = zip(logits.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? .infinity
        #expect(difference <= 1e-4 * max(1, expected.scalars.map(abs).max() ?? 1), "logits differ by \(difference)")
    }
}
