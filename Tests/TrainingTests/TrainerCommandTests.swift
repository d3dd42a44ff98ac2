// `esapn train` as users and scripts run it (ARCHITECTURE §7), on a small
// synthetic stream: the run folder's files and keys, reproducibility, the row
// optimizer option, final sizes, and clear errors (never a Swift trap).
import Data
import Foundation
import TestSupport
import XCTest

final class TrainerCommandTests: XCTestCase {
    var directory: URL!
    var stream: String!
    var raw: RawRatings!

    override func setUpWithError() throws {
        try MPIRun.esapn()
        directory = try TestPaths.temporaryDirectory(self)
        stream = directory.appendingPathComponent("synthetic.stream").path
        raw = try SyntheticStream.write(to: stream)
    }

    /// Runs `esapn train --data STREAM --output RUN --quiet ARGUMENTS…` and returns the run folder.
    func train(_ run: String, _ arguments: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> RunFolder {
        let output = directory.appendingPathComponent(run)
        let result = try runEsapn(["train", "--data", stream, "--output", output.path, "--quiet"] + arguments,
                                  environment: ["OPENBLAS_NUM_THREADS": "1"])
        XCTAssertEqual(result.status, 0, result.report, file: file, line: line)
        return try RunFolder(output, file: file, line: line)
    }

    // MARK: - The run folder

    func testTheRunFolderHoldsTheDocumentedFilesAndKeys() throws {
        let run = try train("run", ["--batch-size", "450", "--test-last", "700", "--save-sizes", "--seed", "9"])
        let s = try StreamFile(path: stream)
        let ids = s.header.users + s.header.items

        // results.json: at least the keys of ARCHITECTURE §7, with the run's values.
        let r = run.results
        XCTAssertEqual(r["model"] as? String, "fixed")
        XCTAssertEqual(r["task"] as? String, "binary")
        XCTAssertEqual(run.number("ranks"), 1)
        XCTAssertEqual(run.number("seed"), 9)
        XCTAssertEqual(run.number("records"), 3000)
        for part in ["test", "overall"] {
            for key in ["records", "accuracy", "loss"] { XCTAssertFalse(run.number("\(part).\(key)").isNaN, "\(part).\(key)") }
        }
        XCTAssertEqual(run.number("test.records"), 700)
        XCTAssertEqual(run.number("overall.records"), 3000)
        XCTAssertGreaterThan(run.number("throughput.records_per_second"), 0)
        XCTAssertGreaterThan(run.number("throughput.wall_seconds"), 0)
        XCTAssertEqual(run.number("memory.total_dims"), Double(ids * 128))
        XCTAssertEqual(run.number("memory.fixed_dims"), Double(ids * 128))
        XCTAssertEqual(run.number("memory.ratio"), 1)
        let perRank = try XCTUnwrap((r["memory"] as? [String: Any])?["per_rank"] as? [[String: Any]])
        XCTAssertEqual(perRank.count, 1)
        XCTAssertEqual(perRank[0]["rank"] as? Int, 0)
        XCTAssertEqual(perRank[0]["rows_by_size"] as? [String: Int], ["128": ids])
        XCTAssertEqual(perRank[0]["value_floats"] as? Int, ids * 128)
        let resident = try XCTUnwrap(perRank[0]["resident_bytes"] as? Int)
        XCTAssertGreaterThanOrEqual(resident, ids * 128 * 12, "values and two Adam moments at least")
        let sizes = try XCTUnwrap(r["sizes"] as? [String: [String: Int]])
        XCTAssertEqual(sizes["users"], ["128": s.header.users])
        XCTAssertEqual(sizes["items"], ["128": s.header.items])

        // batches.csv: one row per batch of 450, the last one short.
        XCTAssertEqual(run.batches.count, Int((3000.0 / 450).rounded(.up)))
        XCTAssertEqual(run.batches.map(\.batch), Array(0..<7))
        XCTAssertEqual(run.batches.map(\.records), [450, 450, 450, 450, 450, 450, 300])
        let lossSum = run.batches.reduce(0) { $0 + $1.loss * Double($1.records) }
        XCTAssertEqual(lossSum / 3000, run.number("overall.loss"), accuracy: 1e-7)

        // by_frequency.csv: users and items, frequencies 1…100.
        let byFrequency = try run.lines("by_frequency.csv")
        XCTAssertEqual(byFrequency.first, "side,frequency,records,accuracy,loss,mean_size")
        XCTAssertEqual(byFrequency.count, 1 + 200)
        let keys = byFrequency.dropFirst().map { $0.split(separator: ",").prefix(2).joined(separator: ",") }
        XCTAssertEqual(keys, ["users", "items"].flatMap { side in (1...100).map { "\(side),\($0)" } })

        // final_sizes.csv: every user and every item once, with its original ID.
        let finalSizes = try run.lines("final_sizes.csv")
        XCTAssertEqual(finalSizes.first, "side,original_id,dense_id,width")
        XCTAssertEqual(finalSizes.count, 1 + ids)
        var seen: [String: Set<Int>] = [:]
        for row in finalSizes.dropFirst() {
            let f = row.split(separator: ",").map(String.init)
            XCTAssertEqual(f.count, 4, row)
            let dense = Int(f[2])!
            XCTAssertTrue(seen[f[0], default: []].insert(dense).inserted, "\(f[0]) \(dense) listed twice")
            let original = f[0] == "users" ? s.userIDs[dense] : s.itemIDs[dense]
            XCTAssertEqual(f[1], String(original), row)
            XCTAssertEqual(f[3], "128", row)
        }
        XCTAssertEqual(seen["users"], Set(0..<s.header.users))
        XCTAssertEqual(seen["items"], Set(0..<s.header.items))
        XCTAssertEqual(Set(s.userIDs), Set(raw.users), "original user IDs come back")
    }

    func testWithoutSaveSizesThereIsNoFinalSizesFile() throws {
        let run = try train("run")
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.url.appendingPathComponent("final_sizes.csv").path))
        XCTAssertEqual(run.number("test.records"), 750, "default test part: the last 25%")
        XCTAssertEqual(run.batches.count, 6)
    }

    // MARK: - Reproducibility and options

    func testTheSameSeedGivesIdenticalNumbersAndAnotherSeedDoesNot() throws {
        let a = try train("a", ["--seed", "3"]), b = try train("b", ["--seed", "3"]), c = try train("c", ["--seed", "4"])
        XCTAssertEqual(a.resultsWithoutTiming, b.resultsWithoutTiming, "results.json, timing aside")
        XCTAssertEqual(try a.lines("batches.csv"), try b.lines("batches.csv"))
        XCTAssertEqual(try a.lines("by_frequency.csv"), try b.lines("by_frequency.csv"))
        XCTAssertNotEqual(a.number("overall.loss"), c.number("overall.loss"), "the seed matters")
        XCTAssertNotEqual(a.batches[0].loss, c.batches[0].loss, "another seed, other initial weights")
    }

    /// Catch-up Adam moves rows on their momentum while untouched; lazy Adam does
    /// not. They agree until a row is read after missing a step (batch 2 at
    /// the earliest), then differ.
    func testCatchUpAndLazyRowOptimizersDiffer() throws {
        let catchUp = try train("catch-up", ["--row-optimizer", "catch-up"])
        let lazy = try train("lazy", ["--row-optimizer", "lazy"])
        let byDefault = try train("default")
        XCTAssertEqual(byDefault.batches.map(\.loss), catchUp.batches.map(\.loss), "catch-up is the default")
        XCTAssertEqual(catchUp.batches[0].loss, lazy.batches[0].loss, "batch 0: nothing to catch up")
        XCTAssertEqual(catchUp.batches[1].loss, lazy.batches[1].loss, "batch 1: rows missed no step yet")
        let later = zip(catchUp.batches.dropFirst(2), lazy.batches.dropFirst(2)).map { abs($0.loss - $1.loss) }
        XCTAssertGreaterThan(later.max()!, 1e-6, "the row optimizers differ once rows miss steps: \(later)")
        XCTAssertNotEqual(catchUp.number("overall.loss"), lazy.number("overall.loss"))
        XCTAssertEqual((lazy.results["options"] as? [String: String])?["row_optimizer"], "lazy")
    }

    // MARK: - Errors: a clear message, a non-zero exit, no trap, no output

    func expectFailure(_ arguments: [String], mentions expected: [String], np: Int? = nil,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let output = directory.appendingPathComponent("failed-\(UUID().uuidString)")
        let command = ["train", "--output", output.path, "--quiet"] + arguments
        let result: ProcessResult
        if let np {
            result = try MPIRun.runEsapn(np: np, command, file: file, line: line)
        } else {
            result = try runEsapn(command)
        }
        XCTAssertNotEqual(result.status, 0, result.report, file: file, line: line)
        XCTAssertNotEqual(result.status, 124, "timed out: \(result.report)", file: file, line: line)
        for text in expected {
            XCTAssertTrue(result.stderr.contains(text), "stderr should say '\(text)': \(result.report)", file: file, line: line)
        }
        for trap in ["Fatal error", "Illegal instruction", "Segmentation fault", "Stack dump", "backtrace"] {
            XCTAssertFalse(result.stderr.contains(trap), "a trap, not a clear error: \(result.report)", file: file, line: line)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: output.path), "no run folder after a failure", file: file, line: line)
    }

    func testAMissingOrUnreadableStreamIsAClearError() throws {
        let missing = directory.appendingPathComponent("nowhere.stream").path
        try expectFailure(["--data", missing], mentions: [missing, "no such file"])
        try expectFailure(["--data", directory.path], mentions: [directory.path, "directory"])
        let empty = directory.appendingPathComponent("empty.stream").path
        XCTAssertTrue(FileManager.default.createFile(atPath: empty, contents: Data()))
        try expectFailure(["--data", empty], mentions: [empty, "not a valid esapn stream"])
        let notAStream = directory.appendingPathComponent("ratings.stream").path
        try String(repeating: "1\t2\t3\t4\n", count: 100).write(toFile: notAStream, atomically: true, encoding: .utf8)
        try expectFailure(["--data", notAStream], mentions: [notAStream, "wrong magic bytes"])
    }

    func testACorruptedStreamIsRefused() throws {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: stream))
        // One bit of a rating in the body.
        let s = try StreamFile(path: stream)
        bytes[s.layout.rating + 4 * 1234 + 1] ^= 0x10
        let corrupted = directory.appendingPathComponent("corrupted.stream").path
        try bytes.write(to: URL(fileURLWithPath: corrupted))
        try expectFailure(["--data", corrupted], mentions: [corrupted, "checksum mismatch", "corrupted"])
        // A truncated file.
        let truncated = directory.appendingPathComponent("truncated.stream").path
        try bytes.prefix(bytes.count - 100).write(to: URL(fileURLWithPath: truncated))
        try expectFailure(["--data", truncated], mentions: [truncated, "truncated"])
    }

    func testMoreRanksThanRecordsIsAClearErrorOnEveryRank() throws {
        let tiny = directory.appendingPathComponent("two.stream").path
        try SyntheticStream.write(to: tiny, records: 2, users: 2, items: 2)
        try expectFailure(["--data", tiny], mentions: ["3 ranks for 2 records", "at most 2 ranks"], np: 3)
    }

    func testBatchSizeUnderTheRanksIsAClearError() throws {
        try expectFailure(["--data", stream, "--batch-size", "2"], mentions: ["--batch-size 2 is smaller than the 3 ranks"], np: 3)
    }

    func testMoreRanksThanIDsIsAClearError() throws {
        let few = directory.appendingPathComponent("few-users.stream").path
        try SyntheticStream.write(to: few, records: 50, users: 2, items: 5)
        try expectFailure(["--data", few], mentions: ["3 ranks for 2 users and 5 items", "at most 2 ranks"], np: 3)
    }

    func testAStreamFromANewerFormatIsAClearError() throws {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: stream))
        bytes[8] = UInt8(StreamHeader.version + 1)  // the format version, little-endian u32 at offset 8
        let newer = directory.appendingPathComponent("newer.stream").path
        try bytes.write(to: URL(fileURLWithPath: newer))
        try expectFailure(["--data", newer], mentions: [newer, "format version \(StreamHeader.version + 1) is newer", "update esapn"])
    }

    func testBadSizesAreAClearError() throws {
        try expectFailure(["--data", stream, "--sizes", "2,x,8"], mentions: ["--sizes takes comma-separated integers", "2,x,8"])
        try expectFailure(["--data", stream, "--sizes", ""], mentions: ["--sizes"])
        try expectFailure(["--data", stream, "--sizes", "8,4,16"], mentions: ["--sizes must be positive and strictly increasing", "8,4,16"])
        try expectFailure(["--data", stream, "--sizes", "0,4"], mentions: ["--sizes must be positive"])
        try expectFailure(["--data", stream, "--sizes", "4,4"], mentions: ["strictly increasing"])
    }

    func testTestLastOutOfRangeIsAClearError() throws {
        for bad in ["0", "-5", "3001"] {
            try expectFailure(["--data", stream, "--test-last=\(bad)"], mentions: ["--test-last must be within 1…3000", "got \(bad)"])
        }
        // With --limit, the range is the records trained on.
        try expectFailure(["--data", stream, "--limit", "1000", "--test-last", "1500"], mentions: ["within 1…1000"])
    }
}
