import Data
import Foundation
import TestSupport
import XCTest

/// Writes `text` to a file named `name` in a fresh temporary directory.
func writeTemp(_ test: XCTestCase, _ name: String, _ text: String) throws -> String {
    let url = try TestPaths.temporaryDirectory(test).appendingPathComponent(name)
    try Data(text.utf8).write(to: url)
    return url.path
}

final class ReaderTests: XCTestCase {
    func testCSVWithBOMCRLFHalfStarsAndTrailingBlankLines() throws {
        let path = try writeTemp(self, "ratings.csv",
            "\u{FEFF}userId,movieId,rating,timestamp\r\n1,31,2.5,1260759144\r\n1,1029,3.0,1260759179\r\n7,2,4.5,1\r\n\r\n\n")
        let (raw, report) = try RatingsReader.read(path: path)
        XCTAssertEqual(report.records, 3)
        XCTAssertEqual(raw.users, [1, 1, 7])
        XCTAssertEqual(raw.items, [31, 1029, 2])
        XCTAssertEqual(raw.ratings, [2.5, 3.0, 4.5])
        XCTAssertEqual(raw.timestamps, [1260759144, 1260759179, 1])
    }

    func testDatDoubleColon() throws {
        let path = try writeTemp(self, "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n")
        let (raw, _) = try RatingsReader.read(path: path)
        XCTAssertEqual(raw.users, [1, 1])
        XCTAssertEqual(raw.items, [1193, 661])
        XCTAssertEqual(raw.ratings, [5, 3])
        XCTAssertEqual(raw.timestamps, [978300760, 978302109])
    }

    func testUDataTabs() throws {
        let path = try writeTemp(self, "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
        let (raw, _) = try RatingsReader.read(path: path)
        XCTAssertEqual(raw.users, [196, 186])
        XCTAssertEqual(raw.items, [242, 302])
    }

    func testInterTypedHeaderAnyColumnOrderAndIntegralFloatTimestamps() throws {
        let path = try writeTemp(self, "x.inter",
            "timestamp:float\titem_id:token\textra:float\tuser_id:token\trating:float\n881250949.0\t242\t0.1\t196\t3\n8.8e8\t3\t0\t5\t4.0\n")
        let (raw, _) = try RatingsReader.read(path: path)
        XCTAssertEqual(raw.users, [196, 5])
        XCTAssertEqual(raw.items, [242, 3])
        XCTAssertEqual(raw.ratings, [3, 4])
        XCTAssertEqual(raw.timestamps, [881250949, 880000000])
    }

    func testFormatOverrideBeatsFileName() throws {
        let path = try writeTemp(self, "mydata.txt", "1\t2\t3\t4\n")
        XCTAssertThrowsError(try RatingsReader.read(path: path)) { error in
            XCTAssertEqual(error as? DataError, .unknownFormat(path: path))
        }
        let (raw, _) = try RatingsReader.read(path: path, format: .udata)
        XCTAssertEqual(raw.count, 1)
    }

    func testLargestUInt64IDIsAccepted() throws {
        let path = try writeTemp(self, "u.data", "18446744073709551615\t0\t5\t-5\n")
        let (raw, _) = try RatingsReader.read(path: path)
        XCTAssertEqual(raw.users, [UInt64.max])
        XCTAssertEqual(raw.items, [0])
        XCTAssertEqual(raw.timestamps, [-5])
    }

    func testRealMovieLens100k() throws {
        try requireFile(TestPaths.ml100k, howToGet: "run scripts/setup.sh (or scripts/fetch-ml100k.sh) to fetch MovieLens-100k")
        let (raw, report) = try RatingsReader.read(path: TestPaths.ml100k.path)
        XCTAssertEqual(report.records, 100_000)
        XCTAssertEqual(report.skipped, 0)
        XCTAssertEqual(Set(raw.users).count, 943)
        XCTAssertEqual(Set(raw.items).count, 1682)
        XCTAssertEqual(raw.ratings.filter { $0 > 3.5 }.count, 55_375)
    }

    /// ml-100k written in each MovieLens format reads back to the same records.
    func testFormatRoundTripOnRealData() throws {
        try requireFile(TestPaths.ml100k, howToGet: "run scripts/setup.sh to fetch MovieLens-100k")
        let (raw, _) = try RatingsReader.read(path: TestPaths.ml100k.path)
        let dir = try TestPaths.temporaryDirectory(self)
        func render(_ header: String?, _ sep: String, _ star: (Float) -> String) -> String {
            var lines: [String] = header.map { [$0] } ?? []
            for k in 0..<raw.count {
                lines.append("\(raw.users[k])\(sep)\(raw.items[k])\(sep)\(star(raw.ratings[k]))\(sep)\(raw.timestamps[k])")
            }
            return lines.joined(separator: "\n") + "\n"
        }
        let files: [(String, String)] = [
            ("ratings.csv", render("userId,movieId,rating,timestamp", ",", { String(format: "%.1f", $0) })),
            ("ratings.dat", render(nil, "::", { "\(Int($0))" })),
            ("u.data", render(nil, "\t", { "\(Int($0))" })),
        ]
        for (name, text) in files {
            let url = dir.appendingPathComponent(name)
            try Data(text.utf8).write(to: url)
            let (back, _) = try RatingsReader.read(path: url.path)
            XCTAssertEqual(back.users, raw.users, name)
            XCTAssertEqual(back.items, raw.items, name)
            XCTAssertEqual(back.ratings, raw.ratings, name)
            XCTAssertEqual(back.timestamps, raw.timestamps, name)
        }
    }
}
