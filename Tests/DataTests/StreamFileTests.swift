import Data
import Foundation
import Random
import TestSupport
import XCTest

final class StreamFileTests: XCTestCase {
    /// Random ratings with many timestamp ties, so stability matters.
    func randomRatings(_ n: Int, seed: UInt64) -> RawRatings {
        var rng = RandomStream(seed: seed, purpose: .test)
        var raw = RawRatings()
        for _ in 0..<n {
            raw.append(user: UInt64(rng.below(50)) * 1000 + 7, item: UInt64(rng.below(80)) + 1_000_000_000_000,
                       rating: Float(rng.below(10) + 1) / 2, timestamp: Int64(rng.below(30)))
        }
        return raw
    }

    func testRoundTripOrderRemappingAndFrequencies() throws {
        let raw = randomRatings(3000, seed: 1)
        let path = try TestPaths.temporaryDirectory(self).appendingPathComponent("s.stream").path
        let header = try StreamBuilder.write(raw, order: .time, seed: 0, source: "test", to: path)
        let s = try StreamFile(path: path)
        XCTAssertEqual(s.header, header)
        XCTAssertEqual(s.count, 3000)
        XCTAssertEqual(s.header.users, Set(raw.users).count)
        XCTAssertEqual(s.header.items, Set(raw.items).count)

        // Naive reference: stable sort by timestamp, then recount.
        let order = (0..<raw.count).sorted { (raw.timestamps[$0], $0) < (raw.timestamps[$1], $1) }
        var seenUsers = [UInt64: Int](), seenItems = [UInt64: Int]()
        var firstUsers = [UInt64](), firstItems = [UInt64]()
        for (k, src) in order.enumerated() {
            let ou = raw.users[src], oi = raw.items[src]
            if seenUsers[ou] == nil { firstUsers.append(ou) }
            if seenItems[oi] == nil { firstItems.append(oi) }
            seenUsers[ou, default: 0] += 1
            seenItems[oi, default: 0] += 1
            XCTAssertEqual(s.userIDs[Int(s.users[k])], ou, "record \(k)")
            XCTAssertEqual(s.itemIDs[Int(s.items[k])], oi, "record \(k)")
            XCTAssertEqual(Int(s.userFrequencies[k]), seenUsers[ou]!, "user frequency of record \(k)")
            XCTAssertEqual(Int(s.itemFrequencies[k]), seenItems[oi]!, "item frequency of record \(k)")
            XCTAssertEqual(s.ratings[k], raw.ratings[src])
            XCTAssertEqual(s.timestamps[k], raw.timestamps[src])
        }
        XCTAssertEqual(Array(s.userIDs), firstUsers, "dense IDs by first appearance")
        XCTAssertEqual(Array(s.itemIDs), firstItems, "dense IDs by first appearance")
    }

    func testWideTimestampRangeUsesTheGeneralStableSort() throws {
        var raw = RawRatings()
        let stamps: [Int64] = [Int64.max, Int64.min, 0, Int64.min, 5, Int64.max]
        for (i, t) in stamps.enumerated() { raw.append(user: UInt64(i), item: 1, rating: 3, timestamp: t) }
        let path = try TestPaths.temporaryDirectory(self).appendingPathComponent("w.stream").path
        try StreamBuilder.write(raw, order: .time, seed: 0, source: "t", to: path)
        let s = try StreamFile(path: path)
        XCTAssertEqual(Array(s.timestamps), [Int64.min, Int64.min, 0, 5, Int64.max, Int64.max])
        XCTAssertEqual(Array(s.userIDs), [1, 3, 2, 4, 0, 5], "ties keep input order")
    }

    func testShuffleIsDeterministicBySeed() throws {
        let raw = randomRatings(2000, seed: 2)
        let dir = try TestPaths.temporaryDirectory(self)
        func bytes(_ seed: UInt64, _ name: String) throws -> Data {
            let path = dir.appendingPathComponent(name).path
            try StreamBuilder.write(raw, order: .shuffle, seed: seed, source: "t", to: path)
            return try Data(contentsOf: URL(fileURLWithPath: path))
        }
        let a = try bytes(7, "a"), b = try bytes(7, "b"), c = try bytes(8, "c")
        XCTAssertEqual(a, b, "same seed, same bytes")
        XCTAssertNotEqual(a, c, "another seed, another order")
        let s = try StreamFile(path: dir.appendingPathComponent("a").path)
        XCTAssertEqual(s.header.order, .shuffle)
        XCTAssertEqual(s.header.seed, 7)
        XCTAssertEqual(Set((0..<s.count).map { s.ratings[$0] }), Set(raw.ratings))
        let sorted = (1..<s.count).allSatisfy { s.timestamps[$0 - 1] <= s.timestamps[$0] }
        XCTAssertFalse(sorted, "a shuffled stream is not in time order")
    }

    func testChecksumRefusesAlteredAndTruncatedFiles() throws {
        let raw = randomRatings(500, seed: 3)
        let dir = try TestPaths.temporaryDirectory(self)
        let path = dir.appendingPathComponent("s.stream").path
        try StreamBuilder.write(raw, order: .time, seed: 0, source: "t", to: path)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        XCTAssertNoThrow(try StreamFile(path: path))

        for offset in [20, 300, good.count / 2, good.count - 70] {
            var bad = good
            bad[offset] ^= 0x10
            let altered = dir.appendingPathComponent("altered-\(offset)").path
            try bad.write(to: URL(fileURLWithPath: altered))
            XCTAssertThrowsError(try StreamFile(path: altered), "flip at \(offset)") { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains("checksum mismatch") || message.contains("not a valid esapn stream"), message)
            }
        }
        let truncated = dir.appendingPathComponent("truncated").path
        try good.prefix(good.count - 64).write(to: URL(fileURLWithPath: truncated))
        XCTAssertThrowsError(try StreamFile(path: truncated)) { XCTAssertTrue("\($0)".contains("truncated"), "\($0)") }
        let tiny = dir.appendingPathComponent("tiny").path
        try good.prefix(100).write(to: URL(fileURLWithPath: tiny))
        XCTAssertThrowsError(try StreamFile(path: tiny)) { XCTAssertTrue("\($0)".contains("shorter than"), "\($0)") }
        let csv = try writeTemp(self, "ratings.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n")
        XCTAssertThrowsError(try StreamFile(path: csv)) { XCTAssertTrue("\($0)".contains("not a valid esapn stream"), "\($0)") }
    }

    func testRealMovieLens100kStream() throws {
        try requireFile(TestPaths.ml100k, howToGet: "run scripts/setup.sh to fetch MovieLens-100k")
        let (raw, _) = try RatingsReader.read(path: TestPaths.ml100k.path)
        let path = try TestPaths.temporaryDirectory(self).appendingPathComponent("ml.stream").path
        try StreamBuilder.write(raw, order: .time, seed: 0, source: "ml-100k", to: path)
        let s = try StreamFile(path: path)
        XCTAssertEqual(s.count, 100_000)
        XCTAssertEqual(s.header.users, 943)
        XCTAssertEqual(s.header.items, 1682)
        XCTAssertTrue((1..<s.count).allSatisfy { s.timestamps[$0 - 1] <= s.timestamps[$0] })
        let summary = StreamSummary(s)
        XCTAssertEqual(summary.userFrequency.min, 20, "every ml-100k user has at least 20 ratings")
        XCTAssertEqual(summary.userFrequency.max, 737)
        XCTAssertEqual(summary.ratingHistogram["4.0"]!, 0.34174, accuracy: 1e-9)
    }
}
