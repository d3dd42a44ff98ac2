import Foundation
import TestSupport
import XCTest

/// `esapn prepare` and `esapn inspect` as a user runs them.
final class PrepareCommandTests: XCTestCase {
    func testPrepareAndInspectRealMovieLens100k() throws {
        try requireFile(TestPaths.ml100k, howToGet: "run scripts/setup.sh to fetch MovieLens-100k")
        let out = try TestPaths.temporaryDirectory(self).appendingPathComponent("ml.stream").path
        let prep = try runEsapn(["prepare", TestPaths.ml100k.path, "--output", out])
        XCTAssertEqual(prep.status, 0, prep.stderr)
        let inspect = try runEsapn(["inspect", out, "--json"])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(json["records"] as? Int, 100_000)
        XCTAssertEqual(json["users"] as? Int, 943)
        XCTAssertEqual(json["items"] as? Int, 1682)
        XCTAssertEqual(json["checksumVerified"] as? Bool, true)
        let text = try runEsapn(["inspect", out])
        XCTAssertTrue(text.stdout.contains("records    100000"), text.stdout)
    }

    func testFailedPrepareLeavesNothingAndKeepsWhatExisted() throws {
        let dir = try TestPaths.temporaryDirectory(self)
        let good = dir.appendingPathComponent("ratings.csv")
        try Data("userId,movieId,rating,timestamp\n1,2,3.5,9\n".utf8).write(to: good)
        let bad = dir.appendingPathComponent("bad.csv")
        try Data("userId,movieId,rating,timestamp\n1,2,3.5,9\n1,2,99,9\n".utf8).write(to: bad)

        let fresh = dir.appendingPathComponent("fresh.stream").path
        let failed = try runEsapn(["prepare", bad.path, "-o", fresh])
        XCTAssertNotEqual(failed.status, 0)
        XCTAssertTrue(failed.stderr.contains("\(bad.path):3:"), failed.stderr)
        XCTAssertTrue(failed.stderr.contains("outside the csv scale"), failed.stderr)
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        XCTAssertEqual(Set(left), ["ratings.csv", "bad.csv"], "a failed prepare leaves nothing behind")

        let existing = dir.appendingPathComponent("existing.stream").path
        XCTAssertEqual(try runEsapn(["prepare", good.path, "-o", existing]).status, 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: existing))
        XCTAssertNotEqual(try runEsapn(["prepare", bad.path, "-o", existing]).status, 0)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: existing)), before, "the earlier stream is intact")

        let skipped = try runEsapn(["prepare", bad.path, "-o", fresh, "--skip-invalid"])
        XCTAssertEqual(skipped.status, 0, skipped.stderr)
        XCTAssertTrue(skipped.stdout.contains("skipped 1 invalid lines"), skipped.stdout)
    }

    func testClearErrorsForBadArguments() throws {
        let missing = try runEsapn(["prepare", "/nonexistent/ratings.csv", "-o", "/tmp/x.stream"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("/nonexistent/ratings.csv: no such file"), missing.stderr)

        let format = try runEsapn(["prepare", "x.csv", "-o", "/tmp/x.stream", "--format", "xml"])
        XCTAssertNotEqual(format.status, 0)
        XCTAssertTrue(format.stderr.contains("--format"), format.stderr)

        let notStream = try runEsapn(["inspect", "/nonexistent.stream"])
        XCTAssertNotEqual(notStream.status, 0)
        XCTAssertTrue(notStream.stderr.contains("no such file"), notStream.stderr)
        XCTAssertFalse(notStream.stderr.contains("Fatal error"), notStream.stderr)
    }
}
