// Box outlines, clipping and label tags drawn by drawBoxes.
import Testing
@testable import ImageIO

@Suite struct BoxDrawingTests {
    let red: (UInt8, UInt8, UInt8) = (255, 0, 0)

    func isColor(_ pixel: (UInt8, UInt8, UInt8), _ color: (UInt8, UInt8, UInt8)) -> Bool {
        pixel == color
    }

    @Test func outlinePixelsTakeTheColourAndTheInsideStaysUntouched() {
        var image = RGBImage(width: 50, height: 40)
        drawBoxes(on: &image, boxes: [(x1: 10, y1: 10, x2: 30, y2: 20, label: "", color: red)], lineWidth: 2)
        // columns 10 ... 29 and rows 10 ... 19, two pixels thick, inward
        for y in 10...19 {
            #expect(isColor(image.pixel(x: 10, y: y), red) && isColor(image.pixel(x: 11, y: y), red))
            #expect(isColor(image.pixel(x: 29, y: y), red) && isColor(image.pixel(x: 28, y: y), red))
            #expect(isColor(image.pixel(x: 9, y: y), (0, 0, 0)) && isColor(image.pixel(x: 30, y: y), (0, 0, 0)))
        }
        for x in 10...29 {
            #expect(isColor(image.pixel(x: x, y: 10), red) && isColor(image.pixel(x: x, y: 11), red))
            #expect(isColor(image.pixel(x: x, y: 19), red) && isColor(image.pixel(x: x, y: 18), red))
            #expect(isColor(image.pixel(x: x, y: 9), (0, 0, 0)) && isColor(image.pixel(x: x, y: 20), (0, 0, 0)))
        }
        for y in 12...17 {
            for x in 12...27 { #expect(isColor(image.pixel(x: x, y: y), (0, 0, 0))) }
        }
        let painted = stride(from: 0, to: image.pixels.count, by: 3).filter { image.pixels[$0] == 255 }.count
        #expect(painted == 20 * 10 - 16 * 6)
    }

    @Test func boxesPartlyOutsideAreClippedAndBadBoxesAreSkipped() {
        var image = RGBImage(width: 30, height: 20)
        drawBoxes(on: &image, boxes: [
            (x1: -10, y1: -10, x2: 12.5, y2: 8.2, label: "", color: red),
            (x1: 25, y1: 15, x2: 1e9, y2: 1e30, label: "", color: (0, 255, 0)),
            (x1: 40, y1: 5, x2: 50, y2: 10, label: "right of the image", color: (0, 0, 255)),
            (x1: 100, y1: 100, x2: 200, y2: 200, label: "outside", color: (0, 0, 255)),
            (x1: .nan, y1: 0, x2: 5, y2: 5, label: "nan", color: (0, 0, 255)),
            (x1: 0, y1: 0, x2: .infinity, y2: 5, label: "inf", color: (0, 0, 255)),
        ], lineWidth: 1)
        // first box: right edge at column ceil(12.5) - 1 = 12, bottom edge at row 8
        #expect(isColor(image.pixel(x: 12, y: 3), red))
        #expect(isColor(image.pixel(x: 5, y: 8), red))
        #expect(isColor(image.pixel(x: 13, y: 3), (0, 0, 0)))
        // second box: left edge at 25, top edge at 15, the rest clipped
        #expect(isColor(image.pixel(x: 25, y: 18), (0, 255, 0)))
        #expect(isColor(image.pixel(x: 28, y: 15), (0, 255, 0)))
        // the skipped and invisible boxes painted nothing blue, not even a tag
        #expect(!stride(from: 0, to: image.pixels.count, by: 3).contains { image.pixels[$0 + 2] == 255 })
    }

    @Test func tagsOfBoxesPartlyOutsideStayInTheImage() {
        var image = RGBImage(width: 30, height: 20)
        drawBoxes(on: &image, boxes: [(x1: 20, y1: -5, x2: 45, y2: 10, label: "long label", color: red)], lineWidth: 1)
        // the tag cannot fit (61 px): it starts at column 0, inside the box's rows (top < 0)
        #expect(isColor(image.pixel(x: 0, y: 0), red))
        #expect(isColor(image.pixel(x: 29, y: 8), red))
    }

    @Test func aLabelTagIsFilledWithTheBoxColourAndHoldsReadableText() {
        var image = RGBImage(width: 100, height: 60)
        drawBoxes(on: &image, boxes: [(x1: 20, y1: 30, x2: 90, y2: 55, label: "cat 0.97", color: (255, 255, 0))])
        // tag above the box: rows 30 - 9 ... 29, from column 20; yellow is light, so black ink
        let tag = (21...29).flatMap { y in (20..<(20 + 8 * 6 + 1)).map { x in image.pixel(x: x, y: y) } }
        let ink = tag.filter { isColor($0, (0, 0, 0)) }.count
        let fill = tag.filter { isColor($0, (255, 255, 0)) }.count
        #expect(ink > 30 && fill > ink && ink + fill == tag.count)
        // different text draws differently
        var other = RGBImage(width: 100, height: 60)
        drawBoxes(on: &other, boxes: [(x1: 20, y1: 30, x2: 90, y2: 55, label: "dog 0.97", color: (255, 255, 0))])
        #expect(other != image)
    }

    @Test func aTagWithNoRoomAboveGoesInsideTheBoxAndDarkColoursGetWhiteInk() {
        var image = RGBImage(width: 60, height: 40)
        drawBoxes(on: &image, boxes: [(x1: 5, y1: 2, x2: 50, y2: 35, label: "A", color: (0, 0, 128))], lineWidth: 1)
        // "A" is drawn at (5 + 1, 2 + 1): its top row .###. lights columns 7 ... 9
        #expect(isColor(image.pixel(x: 7, y: 3), (255, 255, 255)))
        #expect(isColor(image.pixel(x: 6, y: 3), (0, 0, 128)))
    }

    @Test func everyGlyphIsSevenRowsOfFiveColumnsAndAllDiffer() {
        #expect(BitmapFont.drawings.count == 95)
        for drawing in BitmapFont.drawings {
            let rows = drawing.split(separator: " ")
            #expect(rows.count == 7 && rows.allSatisfy { $0.count == 5 && $0.allSatisfy { "#.".contains($0) } }, "\(drawing)")
        }
        #expect(Set(BitmapFont.rows).count == 95)
        #expect(BitmapFont.glyph(for: "é") == BitmapFont.glyph(for: "?"))
    }
}
