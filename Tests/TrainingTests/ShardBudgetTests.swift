// `--shard-budget MIB` through the binary, on real ml-100k's first 30,000
// records (60 batches): every rank's resident embedding bytes stay within the
// budget at the end of every batch for every model (batches.csv), and the
// budget binds (rows are evicted, or ESAPN's enlargements refused); exact mode
// under a budget gives the same bits on 1, 2 and 3 processes; a resume under
// a budget is bit for bit, and on fewer ranks the budget is applied again and
// says what it evicted; a budget too small for one batch is refused at once.
import Foundation
import TestSupport
import XCTest

final class ShardBudgetTests: XCTestCase {
    static let ml100k = PreparedML100K()
    override class func tearDown() { ml100k.remove() }

    func train(_ np: Int, _ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        let all = ["train", "--data", try Self.ml100k.stream(), "--limit", "30000", "--test-last", "8000", "--quiet"] + args
        return np == 1 ? try runEsapn(all) : try MPIRun.runEsapn(np: np, all, file: file, line: line)
    }

    func trainOK(_ np: Int, _ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> RunFolder {
        let r = try train(np, args, file: file, line: line)
        XCTAssertEqual(r.status, 0, r.report, file: file, line: line)
        let output = try XCTUnwrap(args.firstIndex(of: "--output").map { args[$0 + 1] }, file: file, line: line)
        return try RunFolder(URL(fileURLWithPath: output), file: file, line: line)
    }

    /// The budget held at every batch end on every rank, and what results.json says of it.
    /// `from`: the first batch whose figures are known (a resume on another number of ranks starts the table there).
    func assertHeld(_ run: RunFolder, mib: Double, ranks: Int, from: Int = 0, file: StaticString = #filePath, line: UInt = #line) throws {
        let limit = Int(mib * 1_048_576)
        XCTAssertEqual(run.number("budget.limit_bytes"), Double(limit), file: file, line: line)
        XCTAssertEqual(run.results["budget"].flatMap { ($0 as? [String: Any])?["held"] as? Bool }, true, file: file, line: line)
        for b in run.batches where b.batch >= from {
            XCTAssertEqual(b.resident.count, ranks, "batch \(b.batch): one figure per rank", file: file, line: line)
            for (r, bytes) in b.resident.enumerated() {
                XCTAssertGreaterThan(bytes, 0, "batch \(b.batch) rank \(r)", file: file, line: line)
                XCTAssertLessThanOrEqual(bytes, limit, "batch \(b.batch) rank \(r): \(bytes) bytes over the budget", file: file, line: line)
            }
        }
        let perRank = try XCTUnwrap((run.results["memory"] as? [String: Any])?["per_rank"] as? [[String: Any]], file: file, line: line)
        for m in perRank {
            let peak = try XCTUnwrap(m["peak_resident_bytes"] as? Int, file: file, line: line)
            XCTAssertLessThanOrEqual(peak, limit, file: file, line: line)
            XCTAssertEqual(peak, run.batches.map { $0.resident[m["rank"] as! Int] }.max(), "the peak is the largest batch end",
                           file: file, line: line)
        }
    }

    /// Every model holds a budget that binds (about half of its shard's table on this prefix or less; batches of 100).
    func testTheBudgetHoldsAtEveryBatchForEveryModel() throws {
        let base = try Self.ml100k.runDirectory("budget-models")
        for (model, mib) in [("fixed", 0.5), ("esapn", 0.04), ("darts", 0.8), ("autoemb", 0.8)] {
            let run = try trainOK(2, ["--model", model, "--shard-budget", "\(mib)", "--batch-size", "100",
                                      "--output", base.appendingPathComponent(model).path])
            try assertHeld(run, mib: mib, ranks: 2)
            let evictions = run.number("budget.users.evictions") + run.number("budget.items.evictions")
            let refused = run.number("budget.users.refused_enlargements") + run.number("budget.items.refused_enlargements")
            XCTAssertGreaterThan(evictions + refused, 0, "\(model): the budget binds")
            if model != "esapn" {
                XCTAssertGreaterThan(evictions, 0, "\(model): rows are evicted")
                XCTAssertGreaterThan(run.number("budget.users.readmissions") + run.number("budget.items.readmissions"), 0,
                                     "\(model): evicted IDs come back as new rows")
            }
        }
    }

    /// A budget that holds every ID at the smallest width: ESAPN evicts nothing, the budget binds on its enlargements.
    func testESAPNUnderARoomyBudgetRefusesEnlargementsAndEvictsNothing() throws {
        let out = try Self.ml100k.runDirectory("budget-roomy").appendingPathComponent("esapn")
        let run = try trainOK(1, ["--model", "esapn", "--shard-budget", "0.3", "--output", out.path])
        try assertHeld(run, mib: 0.3, ranks: 1)
        XCTAssertEqual(run.number("budget.users.evictions") + run.number("budget.items.evictions"), 0)
        XCTAssertGreaterThan(run.number("budget.items.refused_enlargements"), 0)
    }

    /// --deterministic: the budget is per logical rank, so 1, 2 and 3 processes give the same bits, resident bytes included.
    func testExactModeUnderABudgetIsTheSameOnOneTwoAndThreeProcesses() throws {
        let base = try Self.ml100k.runDirectory("budget-exact")
        var reference: Data?
        for np in [1, 2, 3] {
            let out = base.appendingPathComponent("p\(np)")
            // Batches of 100: the least budget holds 200 new IDs, far fewer than the IDs a logical rank owns.
            let run = try trainOK(np, ["--model", "esapn", "--deterministic", "--logical-ranks", "3", "--shard-budget", "0.03",
                                       "--batch-size", "100", "--save-sizes", "--output", out.path])
            try assertHeld(run, mib: 0.03, ranks: 3)
            XCTAssertGreaterThan(run.number("budget.users.evictions") + run.number("budget.items.evictions"), 0, "the budget evicts")
            let bits = try ["batches.csv", "by_frequency.csv", "final_sizes.csv"].map { try Data(contentsOf: out.appendingPathComponent($0)) }
                .reduce(Data(), +)
            if let reference { XCTAssertEqual(bits, reference, "\(np) processes differ from 1") } else { reference = bits }
        }
    }

    /// A resume under a budget is bit for bit; on fewer ranks the budget is applied again and says what it evicted.
    func testResumeUnderABudget() throws {
        let base = try Self.ml100k.runDirectory("budget-resume")
        let common = ["--model", "esapn", "--shard-budget", "0.1", "--save-sizes"]
        let reference = base.appendingPathComponent("reference"), checkpoints = base.appendingPathComponent("checkpoints")
        _ = try trainOK(3, common + ["--output", reference.path, "--checkpoint-dir", checkpoints.path, "--checkpoint-every", "30"])
        let resumed = base.appendingPathComponent("resumed")
        _ = try trainOK(3, common + ["--output", resumed.path, "--resume", checkpoints.appendingPathComponent("checkpoint-00000030").path])
        for name in ["batches.csv", "by_frequency.csv", "final_sizes.csv"] {
            XCTAssertEqual(try Data(contentsOf: reference.appendingPathComponent(name)),
                           try Data(contentsOf: resumed.appendingPathComponent(name)), "\(name): a resume under a budget is bit for bit")
        }
        // Three shards' rows into one of the same budget: they do not all fit.
        let one = base.appendingPathComponent("on-one")
        let r = try train(1, common + ["--progress", "always", "--output", one.path,
                                       "--resume", checkpoints.appendingPathComponent("checkpoint-00000030").path])
        XCTAssertEqual(r.status, 0, r.report)
        XCTAssertTrue(r.stderr.contains("least recently seen rows were evicted"), r.stderr)
        let run = try RunFolder(one)
        XCTAssertGreaterThan(run.number("budget.evicted_at_resume"), 0)
        try assertHeld(run, mib: 0.1, ranks: 1, from: 30)
        XCTAssertEqual(run.batches.filter { $0.batch < 30 }.map(\.resident), [[Int]](repeating: [0], count: 30),
                       "batches before a resume on other ranks have no per-rank figures")
    }

    /// A budget below one batch's IDs at the smallest width is refused at once, with the figure and the fix; nothing is written.
    func testABudgetTooSmallForOneBatchIsRefused() throws {
        let out = try Self.ml100k.runDirectory("budget-refused").appendingPathComponent("run")
        let r = try train(2, ["--model", "esapn", "--shard-budget", "0.01", "--output", out.path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--shard-budget 0.01 MiB cannot hold one batch"), r.stderr)
        XCTAssertTrue(r.stderr.contains("use --shard-budget 0."), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("results.json").path))
        for bad in ["0", "-1", "nan"] {
            let b = try train(1, ["--shard-budget=" + bad, "--output", out.path])
            XCTAssertNotEqual(b.status, 0)
            XCTAssertTrue(b.stderr.contains("--shard-budget takes a positive number of MiB"), "\(bad): \(b.stderr)")
        }
    }
}
