// RunComparison and `esapn compare` on hand-written run folders: the first
// batch whose sizes digest differs, the loss differences before it, the final
// sizes; and loud errors for a missing or malformed file, or runs that are
// not comparable.
import Analysis
import Foundation
import TestSupport
import Training
import XCTest

final class RunComparisonTests: XCTestCase {
    /// A run folder: results.json from FakeRuns, batches.csv from (loss, correct of 500, digest) rows,
    /// final_sizes.csv from (side, dense ID, width) rows when given.
    func folder(_ root: URL, _ name: String, batches: [(Double, Int, String)], sizes: [(String, Int, Int)]?,
                testAccuracy: Double = 0.6, seed: UInt64 = 1) throws -> URL {
        let url = root.appendingPathComponent(name)
        try FakeRuns.write(FakeRuns.results(model: "esapn", task: "binary", seed: seed, accuracy: testAccuracy), to: url)
        var csv = ResultFiles.batchesHeader + "\n"
        for (b, row) in batches.enumerated() { csv += "\(b),500,\(row.0),\(Double(row.1) / 500),\(row.2),1000 1000\n" }
        try csv.write(to: url.appendingPathComponent(ResultFiles.batches), atomically: true, encoding: .utf8)
        if let sizes {
            csv = ResultFiles.finalSizesHeader + "\n"
            for (side, id, width) in sizes { csv += "\(side),\(1000 + id),\(id),\(width)\n" }
            try csv.write(to: url.appendingPathComponent(ResultFiles.finalSizes), atomically: true, encoding: .utf8)
        }
        return url
    }

    let sizes = [("users", 0, 2), ("users", 1, 4), ("items", 0, 128), ("items", 1, 16)]

    func testFindsTheFirstSizeDivergenceAndMeasuresBeforeAndAfter() throws {
        let root = try TestPaths.temporaryDirectory(self)
        let reference = try folder(root, "p1", batches: [(0.25, 300, "0000000a"), (0.24, 310, "0000000b"),
                                                           (0.23, 320, "0000000c"), (0.22, 330, "0000000d")],
                                   sizes: sizes)
        var other = sizes
        other[3].2 = 64
        let run = try folder(root, "p2", batches: [(0.25001, 300, "0000000a"), (0.2399, 312, "0000000b"),
                                                     (0.3, 280, "000000ff"), (0.22, 330, "0000000d")],
                             sizes: other, testAccuracy: 0.605)
        let c = try RunComparison(run: run.path, reference: reference.path)
        XCTAssertEqual(c.batches, 4)
        XCTAssertEqual(c.first_size_divergence, 2)
        XCTAssertEqual(c.max_loss_delta_before_divergence, 1e-4, accuracy: 1e-12)
        XCTAssertEqual(c.max_loss_share_before_divergence, 1e-4 / 0.24, accuracy: 1e-12)
        XCTAssertEqual(c.max_correct_delta_before_divergence, 2)
        XCTAssertEqual(c.max_loss_delta, 0.07, accuracy: 1e-12)
        XCTAssertEqual(c.test_accuracy_delta_points, 0.5, accuracy: 1e-9)
        XCTAssertEqual(c.ids, 4)
        XCTAssertEqual(c.ids_with_other_final_size, 1)
        XCTAssertEqual(c.finalSizeDifferenceShare, 0.25)
        XCTAssertTrue(c.summary.contains("first batch with another size: batch 2 of 4"), c.summary)

        let same = try RunComparison(run: reference.path, reference: reference.path)
        XCTAssertNil(same.first_size_divergence)
        XCTAssertEqual(same.max_loss_delta, 0)
        XCTAssertEqual(same.ids_with_other_final_size, 0)
    }

    func testMissingOrMalformedInputIsAnErrorNamingTheFile() throws {
        let root = try TestPaths.temporaryDirectory(self)
        let rows = [(0.25, 300, "0000000a"), (0.24, 310, "0000000b")]
        let reference = try folder(root, "p1", batches: rows, sizes: sizes)
        func message(_ run: URL) -> String {
            do {
                _ = try RunComparison(run: run.path, reference: reference.path)
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        // Sizes saved by one run only.
        let unsized = try folder(root, "unsized", batches: rows, sizes: nil)
        XCTAssertTrue(message(unsized).contains("unsized/final_sizes.csv"), message(unsized))
        XCTAssertTrue(message(unsized).contains("--save-sizes"), message(unsized))
        // No batches.csv.
        let noBatches = try folder(root, "no-batches", batches: rows, sizes: sizes)
        try FileManager.default.removeItem(at: noBatches.appendingPathComponent(ResultFiles.batches))
        XCTAssertTrue(message(noBatches).contains("no-batches/batches.csv: no such file"), message(noBatches))
        // A batches.csv of an older esapn, without the digest.
        let old = try folder(root, "old", batches: rows, sizes: sizes)
        try "batch,records,loss,accuracy\n0,500,0.25,0.6\n"
            .write(to: old.appendingPathComponent(ResultFiles.batches), atomically: true, encoding: .utf8)
        XCTAssertTrue(message(old).contains("sizes_digest"), message(old))
        // A malformed row.
        let bad = try folder(root, "bad", batches: [(0.25, 300, "0000000a"), (0.24, 310, "xyz")], sizes: sizes)
        XCTAssertTrue(message(bad).contains("bad/batches.csv: malformed results: line 3"), message(bad))
        // Fewer batches.
        let short = try folder(root, "short", batches: [rows[0]], sizes: sizes)
        XCTAssertTrue(message(short).contains("1 batches"), message(short))
        // Another seed: not the same experiment.
        let seed = try folder(root, "seed", batches: rows, sizes: sizes, seed: 2)
        XCTAssertTrue(message(seed).contains("seed is 2 against 1"), message(seed))
    }

    func testCompareCommandPrintsTheComparisonAndFailsOnBadInput() throws {
        let root = try TestPaths.temporaryDirectory(self)
        let reference = try folder(root, "p1", batches: [(0.25, 300, "0000000a")], sizes: sizes)
        let run = try folder(root, "p2", batches: [(0.25, 300, "0000000b")], sizes: sizes)
        var result = try runEsapn(["compare", run.path, reference.path])
        XCTAssertEqual(result.status, 0, result.report)
        XCTAssertTrue(result.stdout.contains("first batch with another size: batch 0 of 1"), result.stdout)
        result = try runEsapn(["compare", run.path, reference.path, "--json"])
        XCTAssertEqual(result.status, 0, result.report)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(json["first_size_divergence"] as? Int, 0)
        XCTAssertEqual(json["ids_with_other_final_size"] as? Int, 0)
        result = try runEsapn(["compare", root.appendingPathComponent("nowhere").path, reference.path])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("nowhere: no such file or directory"), result.stderr)
    }
}
