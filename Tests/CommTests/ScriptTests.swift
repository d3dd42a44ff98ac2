// scripts/fetch-movielens.sh, offline: a fake archive and checksum served
// from a file:// mirror exercise the argument handling, the MD5 check, the
// unpacking and the idempotent re-run.
import Foundation
import XCTest
import TestSupport

final class FetchMovieLensTests: XCTestCase {
    static let names = ["ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-latest-small", "ml-latest"]

    func testUnknownNameListsTheValidOnes() throws {
        let result = try runRepositoryScript("scripts/fetch-movielens.sh", ["ml-100k"])
        XCTAssertEqual(result.status, 2, result.report)
        XCTAssertTrue(result.stderr.contains("unknown data set 'ml-100k'"), result.report)
        for name in Self.names {
            XCTAssertTrue(result.stderr.contains(name), "the message lists \(name): \(result.report)")
        }
    }

    func testWithoutArgumentsPrintsUsage() throws {
        let result = try runRepositoryScript("scripts/fetch-movielens.sh", [])
        XCTAssertEqual(result.status, 2, result.report)
        XCTAssertTrue(result.stderr.contains("usage: scripts/fetch-movielens.sh NAME [DEST]"), result.report)
    }

    func testDownloadsVerifiesAndUnpacksThenSkipsWhenPresent() throws {
        let dir = try TestPaths.temporaryDirectory(self)
        let mirror = try makeMirror(in: dir, name: "ml-10m", topFolder: "ml-10M100K", checksumMatches: true)
        let dest = dir.appendingPathComponent("data/ml-10m")

        let first = try fetch("ml-10m", dest, mirror: mirror)
        XCTAssertEqual(first.status, 0, first.report)
        XCTAssertTrue(first.stdout.contains("verified"), first.report)
        let ratings = dest.appendingPathComponent("ratings.dat")
        XCTAssertEqual(try String(contentsOf: ratings, encoding: .utf8), Self.ratings,
                       "the archive's top folder is unpacked as DEST")
        XCTAssertEqual(try leftovers(in: dest.deletingLastPathComponent()), ["ml-10m"])

        let second = try fetch("ml-10m", dest, mirror: mirror)
        XCTAssertEqual(second.status, 0, second.report)
        XCTAssertTrue(second.stdout.contains("already unpacked and verified"), second.report)
        XCTAssertFalse(second.stdout.contains("downloading"), second.report)
    }

    func testPythonDownloaderWorksWithoutCurl() throws {
        let dir = try TestPaths.temporaryDirectory(self)
        let mirror = try makeMirror(in: dir, name: "ml-latest-small", topFolder: "ml-latest-small", checksumMatches: true)
        let dest = dir.appendingPathComponent("out")
        let result = try fetch("ml-latest-small", dest, mirror: mirror, extra: ["ESAPN_DOWNLOADER": "python"])
        XCTAssertEqual(result.status, 0, result.report)
        XCTAssertEqual(try String(contentsOf: dest.appendingPathComponent("ratings.dat"), encoding: .utf8), Self.ratings)
    }

    func testWrongChecksumFailsAndLeavesNothingBehind() throws {
        let dir = try TestPaths.temporaryDirectory(self)
        let mirror = try makeMirror(in: dir, name: "ml-1m", topFolder: "ml-1m", checksumMatches: false)
        let parent = dir.appendingPathComponent("data")
        let dest = parent.appendingPathComponent("ml-1m")
        let result = try fetch("ml-1m", dest, mirror: mirror)
        XCTAssertEqual(result.status, 1, result.report)
        XCTAssertTrue(result.stderr.contains("checksum did not match"), result.report)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dest.path), "no unpacked folder is left behind")
        XCTAssertEqual(try leftovers(in: parent), [], "no temporary folder is left behind")
    }

    func testMissingArchiveFailsClearly() throws {
        let dir = try TestPaths.temporaryDirectory(self)
        let dest = dir.appendingPathComponent("out")
        let result = try fetch("ml-25m", dest, mirror: dir.appendingPathComponent("empty-mirror"))
        XCTAssertEqual(result.status, 1, result.report)
        XCTAssertTrue(result.stderr.contains("could not download"), result.report)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dest.path))
    }

    // MARK: helpers

    static let ratings = "1::122::5::838985046\n1::185::5::838983525\n"

    private func fetch(_ name: String, _ dest: URL, mirror: URL, extra: [String: String] = [:]) throws -> ProcessResult {
        var environment = ["ESAPN_MOVIELENS_MIRROR": mirror.absoluteString]
        environment.merge(extra) { $1 }
        return try runRepositoryScript("scripts/fetch-movielens.sh", [name, dest.path], environment: environment)
    }

    /// A mirror folder holding NAME.zip (one top folder with ratings.dat) and
    /// NAME.zip.md5 in GroupLens's "MD5 (NAME.zip) = HEX" form.
    private func makeMirror(in dir: URL, name: String, topFolder: String, checksumMatches: Bool) throws -> URL {
        let source = dir.appendingPathComponent("source")
        let mirror = dir.appendingPathComponent("mirror")
        try FileManager.default.createDirectory(at: source.appendingPathComponent(topFolder), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: mirror, withIntermediateDirectories: true)
        try Self.ratings.write(to: source.appendingPathComponent("\(topFolder)/ratings.dat"), atomically: true, encoding: .utf8)
        let archive = mirror.appendingPathComponent("\(name).zip")
        let zip = try runProcess(URL(fileURLWithPath: "/usr/bin/env"),
                                 ["python3", "-m", "zipfile", "-c", archive.path, topFolder], currentDirectory: source)
        XCTAssertEqual(zip.status, 0, zip.report)
        let sum = try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["md5sum", archive.path])
        XCTAssertEqual(sum.status, 0, sum.report)
        var hex = String(sum.stdout.prefix(32))
        if !checksumMatches { hex = String(hex.reversed()) }
        try "MD5 (\(name).zip) = \(hex)\n".write(to: mirror.appendingPathComponent("\(name).zip.md5"),
                                                 atomically: true, encoding: .utf8)
        return mirror
    }

    /// Names in `dir`, hidden ones included, sorted; none if it does not exist.
    private func leftovers(in dir: URL) throws -> [String] {
        guard FileManager.default.fileExists(atPath: dir.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
    }
}
