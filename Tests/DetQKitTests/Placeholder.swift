import Testing
import DetQKit
