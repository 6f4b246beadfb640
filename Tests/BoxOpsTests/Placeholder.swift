import Testing
@testable import BoxOps
