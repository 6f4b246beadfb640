// Tests of box areas, IoU, clipping, small-box removal and resizing (hand-computed).
import Testing
import TensorCore
@testable import BoxOps

@Suite("Box geometry")
struct BoxGeometryTests {
    @Test("IoU: overlap, touching, identical, contained")
    func iou() {
        let a = Tensor(shape: [2, 4], scalars: [0, 0, 10, 10, 2, 2, 4, 4])
        let b = Tensor(shape: [3, 4], scalars: [5, 5, 15, 15, 10, 0, 20, 10, 0, 0, 10, 10])
        let iou = boxIoU(a, b)
        #expect(iou.shape == [2, 3])
        // [0,0,10,10] vs [5,5,15,15]: intersection 25, union 100 + 100 - 25 = 175.
        // vs [10,0,20,10]: touching edges, 0. vs itself: 1.
        // [2,2,4,4] (area 4) lies inside [0,0,10,10]: 4 / 100; outside the other two.
        expectClose(iou.scalars, [25.0 / 175, 0, 1, 0, 0, 0.04], "iou")
        #expect(boxArea(a) == [100, 4])
    }

    @Test("clip to image, remove small boxes, resize")
    func clipRemoveResize() {
        let boxes = Tensor(shape: [3, 4], scalars: [-5, -1, 50, 30, 10, 12, 10.5, 40, 3, 4, 5, 4.009])
        // x to [0, 40], y to [0, 20].
        #expect(clipBoxesToImage(boxes, imageSize: Size2(20, 40)).scalars == [0, 0, 40, 20, 10, 12, 10.5, 20, 3, 4, 5, 4.009])
        // Widths 55, 0.5, 2 and heights 31, 28, 0.009: min size 1 keeps box 0, 0.5 keeps boxes 0 and 1.
        // Box 2's height is 4.009 - 4 in Float32 = 0.0089998245, below Float(0.009): removed, as
        // torchvision does (checked with torchvision.ops.remove_small_boxes).
        #expect(removeSmallBoxes(boxes, minSize: 1) == [0])
        #expect(removeSmallBoxes(boxes, minSize: 0.5) == [0, 1])
        #expect(removeSmallBoxes(boxes, minSize: 0.009) == [0, 1])
        #expect(removeSmallBoxes(boxes, minSize: 0.0089) == [0, 1, 2])
        // From 100 x 200 (h x w) to 50 x 300: x times 1.5, y times 0.5.
        let resized = resizeBoxes(Tensor(shape: [1, 4], scalars: [10, 20, 30, 40]), from: Size2(100, 200), to: Size2(50, 300))
        #expect(resized.scalars == [15, 10, 45, 20])
    }
}
