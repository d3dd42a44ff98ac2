import XCTest
final class CommTestsPlaceholder: XCTestCase { func testBuilds() { XCTAssertTrue(true) } }
