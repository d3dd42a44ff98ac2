import Data
import Foundation
import TestSupport
import XCTest

/// A corpus of malformed inputs: each must be refused with the file, the
/// 1-based line and what was expected — never a crash.
final class BadInputTests: XCTestCase {
    struct Case {
        var name: String
        var text: String
        var line: Int
        var says: String
    }

    let corpus: [Case] = [
        Case(name: "ratings.csv", text: "userId,movieId,rating,timestamp\n1,2,3.5\n", line: 2, says: "expected 4 comma-separated fields, found 3"),
        Case(name: "ratings.csv", text: "userId,movieId,rating,timestamp\n1,2,3.5,9\n1,2,NaN,9\n", line: 3, says: "not a finite number"),
        Case(name: "ratings.csv", text: "userId,movieId,rating,timestamp\n1,2,nan,9\n", line: 2, says: "not a finite number"),
        Case(name: "ratings.csv", text: "userId,movieId,rating,timestamp\n1,2,inf,9\n", line: 2, says: "not a finite number"),
        Case(name: "ratings.csv", text: "userId,movieId,rating,timestamp\n1,2,7,9\n", line: 2, says: "outside the csv scale"),
        Case(name: "ratings.csv", text: "userId,movieId,rating,timestamp\n1,2,0,9\n", line: 2, says: "outside the csv scale"),
        Case(name: "ratings.csv", text: "userId,movieId,rating,timestamp\n18446744073709551616,2,3,9\n", line: 2, says: "does not fit in 64 bits"),
        Case(name: "ratings.csv", text: "userId,movieId,rating,timestamp\n-1,2,3,9\n", line: 2, says: "not a non-negative integer"),
        Case(name: "ratings.csv", text: "userId,movieId,rating,timestamp\n1,abc,3,9\n", line: 2, says: "item ID 'abc'"),
        Case(name: "ratings.csv", text: "userId,movieId,rating,timestamp\n1,,3,9\n", line: 2, says: "empty item ID"),
        Case(name: "ratings.csv", text: "userId,movieId,rating,timestamp\n1,2,3,12.5\n", line: 2, says: "timestamp '12.5' is not an integer"),
        Case(name: "ratings.csv", text: "userId,movieId,rating,timestamp\n1,2,3,99999999999999999999\n", line: 2, says: "timestamp"),
        Case(name: "ratings.csv", text: "user,movie,rating,timestamp\n1,2,3,4\n", line: 1, says: "expected the header userId,movieId,rating,timestamp"),
        Case(name: "ratings.csv", text: "1,2,3,4\n", line: 1, says: "expected the header"),
        Case(name: "ratings.dat", text: "1::2::3::4\n\n1:2:3:4\n", line: 3, says: "expected 4 '::'-separated fields, found 1"),
        Case(name: "u.data", text: "1\t2\t3\t4\t5\n", line: 1, says: "expected 4 tab-separated fields, found 5"),
        Case(name: "u.data", text: "1\t2\t4.5\t4\n1\t2\t0.5\t4\n", line: 2, says: "outside the u.data scale"),
        Case(name: "x.inter", text: "user_id:token\titem_id:token\trating:float\n", line: 1, says: "expected a typed .inter header"),
        Case(name: "x.inter", text: "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t2\t3\t4.5\n", line: 2, says: "not an integral number"),
        Case(name: "x.inter", text: "user_id:token\titem_id:token\trating:float\ttimestamp:float\r\n1\t2\t3\t4\r\n1\t2\t3\r\n", line: 3, says: "found 3"),
    ]

    func testEveryMalformedLineIsAClearError() throws {
        for c in corpus {
            let path = try writeTemp(self, c.name, c.text)
            XCTAssertThrowsError(try RatingsReader.read(path: path), c.text) { error in
                let message = "\(error)"
                XCTAssertTrue(message.hasPrefix("\(path):\(c.line): "), "\(message) should name \(path):\(c.line)")
                XCTAssertTrue(message.contains(c.says), "'\(message)' should say '\(c.says)'")
            }
        }
    }

    func testSkipInvalidCountsAndKeepsTheRest() throws {
        let path = try writeTemp(self, "ratings.csv",
            "userId,movieId,rating,timestamp\n1,2,3.5,9\n1,2,NaN,9\nx,2,3,9\n2,3,4,10\n1,2,3\n")
        let (raw, report) = try RatingsReader.read(path: path, skipInvalid: true)
        XCTAssertEqual(raw.count, 2)
        XCTAssertEqual(report.skipped, 3)
        XCTAssertEqual(report.firstSkipped.count, 3)
        XCTAssertTrue(report.firstSkipped[0].contains(":3: "), report.firstSkipped[0])
        XCTAssertTrue(report.firstSkipped[2].contains(":6: "), report.firstSkipped[2])
    }

    func testSkipInvalidWithNothingValidIsAnError() throws {
        let path = try writeTemp(self, "u.data", "a\tb\tc\td\n")
        XCTAssertThrowsError(try RatingsReader.read(path: path, skipInvalid: true)) { error in
            XCTAssertTrue("\(error)".contains("every line was invalid"), "\(error)")
        }
    }

    func testEmptyHeaderOnlyMissingAndUnknown() throws {
        let empty = try writeTemp(self, "ratings.csv", "")
        XCTAssertThrowsError(try RatingsReader.read(path: empty)) { error in
            XCTAssertEqual("\(error)", "\(empty): the file is empty; expected MovieLens ratings", "names the file and what was expected")
        }
        XCTAssertThrowsError(try RatingsReader.read(path: empty)) { XCTAssertEqual($0 as? DataError, .emptyFile(path: empty)) }

        let headerOnly = try writeTemp(self, "ratings.csv", "userId,movieId,rating,timestamp\r\n\r\n")
        XCTAssertThrowsError(try RatingsReader.read(path: headerOnly)) { XCTAssertEqual($0 as? DataError, .noRecords(path: headerOnly)) }

        let blank = try writeTemp(self, "u.data", "\n\n  \n")
        XCTAssertThrowsError(try RatingsReader.read(path: blank)) { XCTAssertEqual($0 as? DataError, .noRecords(path: blank)) }

        XCTAssertThrowsError(try RatingsReader.read(path: "/nonexistent/ratings.csv")) {
            XCTAssertEqual($0 as? DataError, .missingFile(path: "/nonexistent/ratings.csv"))
        }
        let unknown = try writeTemp(self, "ratings.json", "{}")
        XCTAssertThrowsError(try RatingsReader.read(path: unknown)) {
            XCTAssertTrue("\($0)".contains("--format"), "\($0)")
        }
        let dir = try TestPaths.temporaryDirectory(self).path
        XCTAssertThrowsError(try RatingsReader.read(path: dir, format: .csv)) {
            XCTAssertTrue("\($0)".contains("directory"), "\($0)")
        }
    }

    /// Random bytes and random mutations of valid lines never crash the reader.
    func testFuzzedInputsNeverTrap() throws {
        var rng = SystemRandomNumberGenerator()
        let valid = "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n2,7,4,1260759179\n"
        let alphabet = Array("0123456789,.-:\t\r\n naNinfe+\u{FEFF}x".utf8)
        for round in 0..<300 {
            var bytes = Array(valid.utf8)
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[i] = alphabet.randomElement(using: &rng)!
                case 1: bytes.insert(alphabet.randomElement(using: &rng)!, at: i)
                default: if bytes.count > 1 { bytes.remove(at: i) }
                }
            }
            let url = try TestPaths.temporaryDirectory(self).appendingPathComponent("ratings.csv")
            try Data(bytes).write(to: url)
            for skip in [false, true] {
                do { _ = try RatingsReader.read(path: url.path, skipInvalid: skip) } catch is DataError {
                } catch { XCTFail("round \(round): unexpected error type \(error)") }
            }
        }
    }
}
