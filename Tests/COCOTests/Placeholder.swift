import Testing
@testable import COCO
