// The MovieLens `ratings.csv` writer: a round trip, the rating format, and
// atomic replacement.
import Data
import Foundation
import Synth
import TestSupport
import XCTest

final class SynthCSVTests: XCTestCase {
    func testRoundTripThroughRatingsCSV() throws {
        let dir = try TestPaths.temporaryDirectory(self)
        let url = dir.appendingPathComponent("ratings.csv")
        let spec = SyntheticSpec(records: 3_000, users: 60, items: 400, minimumRatingsPerUser: 20,
                                 firstTimestamp: 789_652_004, lastTimestamp: 1_537_945_149)
        let raw = SyntheticGenerator(spec: spec, seed: 9).generate()
        try writeMovieLensCSV(raw, to: url)

        let text = try String(contentsOf: url, encoding: .utf8)
        XCTAssertTrue(text.hasSuffix("\n"))
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        XCTAssertEqual(lines.first, "userId,movieId,rating,timestamp")
        XCTAssertEqual(lines.count, raw.count + 1)
        var back = RawRatings(capacity: raw.count)
        for line in lines.dropFirst() {
            let f = line.split(separator: ",")
            XCTAssertEqual(f.count, 4, "line \(line)")
            guard f.count == 4, let u = UInt64(f[0]), let i = UInt64(f[1]), let r = Float(f[2]), let t = Int64(f[3]) else {
                return XCTFail("unparsable line \(line)")
            }
            // MovieLens prints one decimal: "4.0", "3.5".
            XCTAssertTrue(f[2].count == 3 && f[2].dropFirst().first == ".", "rating field \(f[2])")
            back.append(user: u, item: i, rating: r, timestamp: t)
        }
        XCTAssertEqual(back.users, raw.users)
        XCTAssertEqual(back.items, raw.items)
        XCTAssertEqual(back.ratings, raw.ratings)
        XCTAssertEqual(back.timestamps, raw.timestamps)
        XCTAssertTrue(text.contains(",3.5,") || text.contains(",4.5,"), "half stars should be written")
        // Only the target is left in the directory: the temporary file was renamed.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["ratings.csv"])
    }

    func testFormatsEdgeValues() throws {
        let dir = try TestPaths.temporaryDirectory(self)
        let url = dir.appendingPathComponent("edge.csv")
        var raw = RawRatings()
        raw.append(user: 0, item: UInt64.max, rating: 0.5, timestamp: 0)
        raw.append(user: 10, item: 100, rating: 5, timestamp: -12)
        raw.append(user: 7, item: 9, rating: 4.25, timestamp: Int64.max)
        try writeMovieLensCSV(raw, to: url)
        XCTAssertEqual(try String(contentsOf: url, encoding: .utf8), """
            userId,movieId,rating,timestamp
            0,18446744073709551615,0.5,0
            10,100,5.0,-12
            7,9,4.25,9223372036854775807

            """)
    }

    func testReplacesAnExistingFileWhole() throws {
        let dir = try TestPaths.temporaryDirectory(self)
        let url = dir.appendingPathComponent("ratings.csv")
        try Data(repeating: UInt8(ascii: "x"), count: 100_000).write(to: url)
        var raw = RawRatings()
        raw.append(user: 1, item: 2, rating: 3, timestamp: 4)
        try writeMovieLensCSV(raw, to: url)
        XCTAssertEqual(try String(contentsOf: url, encoding: .utf8), "userId,movieId,rating,timestamp\n1,2,3.0,4\n")
    }

    func testLargeOutputCrossesTheBufferBoundary() throws {
        // More than one 1 MiB buffer of output.
        let dir = try TestPaths.temporaryDirectory(self)
        let url = dir.appendingPathComponent("big.csv")
        let raw = SyntheticGenerator(spec: SyntheticSpec(records: 60_000, users: 500, items: 1_500), seed: 1).generate()
        try writeMovieLensCSV(raw, to: url)
        let text = try String(contentsOf: url, encoding: .utf8)
        XCTAssertGreaterThan(text.utf8.count, 1 << 20)
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.count, raw.count + 1)
        let k = 40_000
        XCTAssertEqual(String(lines[k + 1]),
                       "\(raw.users[k]),\(raw.items[k]),\(String(format: "%.1f", raw.ratings[k])),\(raw.timestamps[k])")
    }

    func testFailureLeavesNothingBehind() throws {
        let dir = try TestPaths.temporaryDirectory(self)
        let url = dir.appendingPathComponent("missing").appendingPathComponent("ratings.csv")
        var raw = RawRatings()
        raw.append(user: 1, item: 2, rating: 3, timestamp: 4)
        XCTAssertThrowsError(try writeMovieLensCSV(raw, to: url)) { error in
            XCTAssertTrue(error is DataError, "\(error)")
            XCTAssertTrue("\(error)".contains(url.path), "\(error)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }
}
