// Before any large allocation the trainer estimates what each rank needs and
// refuses a run that cannot fit, at once, with the estimate and what would
// make it fit (`--sizes 2,4,1000000` on ml-100k used to grow to all 24 GiB).
import Foundation
import TestSupport
import Training
import XCTest

final class MemoryPreflightTests: XCTestCase {
    static let ml100k = PreparedML100K()
    override class func tearDown() { ml100k.remove() }

    func testAHugeWidthIsRefusedInUnderASecond() throws {
        let stream = try Self.ml100k.stream()
        let start = Date()
        let r = try runEsapn(["train", "--data", stream, "--model", "esapn", "--sizes", "2,4,1000000",
                              "--output", try Self.ml100k.runDirectory("huge").path])
        let seconds = Date().timeIntervalSince(start)
        XCTAssertNotEqual(r.status, 0, r.report)
        for words in ["GiB per rank", "dense weights", "more ranks", "smaller --sizes"] {
            XCTAssert(r.stderr.contains(words), "the refusal should say '\(words)': \(r.report)")
        }
        XCTAssertLessThan(seconds, 1.0, "refused before anything large is allocated")
    }

    func testTheLimitIsTheUsersWhenGiven() throws {
        let stream = try Self.ml100k.stream()
        let refused = try runEsapn(["train", "--data", stream, "--model", "darts", "--limit", "2000", "--memory-limit", "0.01",
                                    "--output", try Self.ml100k.runDirectory("small-limit").path])
        XCTAssertNotEqual(refused.status, 0, refused.report)
        XCTAssert(refused.stderr.contains("--memory-limit"), refused.report)
        let fits = try runEsapn(["train", "--data", stream, "--model", "darts", "--limit", "2000", "--memory-limit", "1",
                                 "--quiet", "--output", try Self.ml100k.runDirectory("fits").path])
        XCTAssertEqual(fits.status, 0, fits.report)
    }

    /// The estimate is on the high side of what a run holds: rows at the
    /// widest size cover every model's rows, and it grows with the widths.
    func testTheEstimateCoversTheRowsAndGrowsWithTheWidths() {
        var c = TrainConfig()
        c.model = .darts
        let e = MemoryEstimate(config: c, users: 138_493, items: 26_744, ranks: 2)
        XCTAssertGreaterThanOrEqual(e.rowBytes, (138_493 + 26_744) / 2 * 222 * 12, "soft rows: 222 floats and two moments per ID")
        var wide = c
        wide.sizes = [2, 4, 8, 16, 64, 4096]
        XCTAssertGreaterThan(MemoryEstimate(config: wide, users: 138_493, items: 26_744, ranks: 2).total, 10 * e.total)
        XCTAssertLessThan(MemoryEstimate(config: c, users: 138_493, items: 26_744, ranks: 8).rowBytes, e.rowBytes / 3,
                          "more ranks split the rows")
    }
}
