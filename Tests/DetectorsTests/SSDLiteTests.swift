// SSDlite (MobileNetV3-Large) against torchvision 0.14: goldens from detectors/tools/make_ssd_goldens.py.
import Foundation
import Layers
import TensorCore
import Testing
@testable import Detectors

@Suite struct SSDLiteTests {
    @Test func matchesTorchvisionOnTheNarrowSSDlite() throws {
        try checkSSDAgainstGoldens(family: "ssdlite")
    }

    @Test func fullSizeModelHasTorchvisionsStateDict() throws {
        let url = SSDFixture.detectors.appendingPathComponent("ssdlite320_mobilenet_v3_large/config.json")
        let model = try makeDetector(try SSDFixture.config(at: url))
        expectSameStructure(model, try SSDFixture.structure("ssdlite", "ssdlite320_mobilenet_v3_large_structure.json"))
        let ssd = try #require(model as? SSD)
        // C4 expansion (672), reduced-tail last conv (480), then the extra blocks.
        #expect(ssd.backbone.outChannels == [672, 480, 512, 256, 256, 128])
        #expect(ssd.anchorGenerator.boxesPerLocation == Array(repeating: 6, count: 6))
        #expect(ssd.transform.fixedSize == Size2(320, 320))
    }

    @Test func fullSizeFeatureMapsAre20To1() throws {
        let mobileNet = MobileNetV3(variant: .large, numClasses: nil, widthMultiplier: 0.25, reducedTail: true)
        let extractor = try SSDLiteFeatureExtractorMobileNet(mobileNet: mobileNet, extraWidthMultiplier: 0.125,
                                                             normEps: 0.001)
        let maps = extractor.featureMaps(Tensor(zeros: [1, 3, 320, 320]))
        #expect(maps.map { $0.shape[2] } == [20, 10, 5, 3, 2, 1])
        #expect(maps.map { $0.shape[1] } == extractor.outChannels)
    }

    @Test func partsSplitBodyExtraAndHead() throws {
        let model = try makeDetector(try SSDFixture.config(at: SSDFixture.url("ssdlite", "config.json")))
        #expect(model.part(of: "backbone.features.0.13.0") == .backbone)
        #expect(model.part(of: "backbone.features.1.0.2.fc1") == .backbone)
        #expect(model.part(of: "backbone.extra.0.1.0") == .neck)
        #expect(model.part(of: "head.regression_head.module_list.0.1") == .head)
        for (path, module) in model.namedModules() where module is Conv2d {
            #expect(model.part(of: path) != nil, "\(path) has no part")
        }
    }

    @Test func rejectsABodyWithoutAStridedStage() throws {
        var config = try SSDFixture.config(at: SSDFixture.url("ssdlite", "config.json"))
        config.backbone.name = "mobilenet_v2"
        #expect(throws: UnsupportedModelError.self) { try makeDetector(config) }
        config = try SSDFixture.config(at: SSDFixture.url("ssdlite", "config.json"))
        config.defaultBoxes = nil
        #expect(throws: UnsupportedModelError.self) { try makeDetector(config) }
    }
}
