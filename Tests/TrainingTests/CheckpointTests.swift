// Checkpoints and resume (`--checkpoint-dir/--checkpoint-every/--resume`), on
// real ml-100k's first 30,000 records (60 batches), through the binary:
// resuming on the same number of ranks gives the uninterrupted run's
// batches.csv, by_frequency.csv, final_sizes.csv and results.json (but
// throughput and memory, which the OS measures) bit for bit; resuming on
// another number of ranks re-shards the rows and meets the multi-rank
// contract against the uninterrupted run; the newest K checkpoints are kept;
// a damaged checkpoint or another task is refused with a message naming what
// is wrong.
import Analysis
import Embeddings
import Foundation
import TestSupport
import Training
import XCTest

final class CheckpointTests: XCTestCase {
    static let ml100k = PreparedML100K()
    override class func tearDown() { ml100k.remove() }

    func train(_ np: Int, _ args: [String], environment: [String: String] = [:],
               file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        let all = ["train", "--data", try Self.ml100k.stream(), "--limit", "30000", "--test-last", "8000", "--quiet"] + args
        return np == 1 ? try runEsapn(all, environment: environment)
            : try MPIRun.runEsapn(np: np, all, environment: environment, file: file, line: line)
    }

    /// `train` that must succeed.
    func trainOK(_ np: Int, _ args: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try train(np, args, file: file, line: line)
        XCTAssertEqual(r.status, 0, r.report, file: file, line: line)
    }

    func assertSameRun(_ a: URL, _ b: URL, file: StaticString = #filePath, line: UInt = #line) throws {
        for name in ["batches.csv", "by_frequency.csv", "final_sizes.csv"] {
            let x = try Data(contentsOf: a.appendingPathComponent(name)), y = try Data(contentsOf: b.appendingPathComponent(name))
            XCTAssertEqual(x, y, "\(name) differs between \(a.lastPathComponent) and \(b.lastPathComponent)", file: file, line: line)
        }
        func results(_ u: URL) throws -> NSDictionary {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: u.appendingPathComponent("results.json")))
                                       as? [String: Any], file: file, line: line)
            XCTAssertNotNil(object["test"], "results.json has no test metrics", file: file, line: line)
            return object.filter { $0.key != "throughput" && $0.key != "memory" } as NSDictionary
        }
        XCTAssertEqual(try results(a), try results(b), "results.json differs", file: file, line: line)
    }

    func checkResume(model: String, task: String, np: Int) throws {
        let base = try Self.ml100k.runDirectory("ck-\(model)-\(np)")
        let common = ["--model", model, "--task", task, "--save-sizes"]
        let reference = base.appendingPathComponent("reference"), checkpoints = base.appendingPathComponent("checkpoints")
        try trainOK(np, common + ["--output", reference.path])
        try trainOK(np, common + ["--output", base.appendingPathComponent("with-checkpoints").path,
                                  "--checkpoint-dir", checkpoints.path, "--checkpoint-every", "15"])
        try assertSameRun(reference, base.appendingPathComponent("with-checkpoints"))
        let kept = try FileManager.default.contentsOfDirectory(atPath: checkpoints.path).sorted()
        XCTAssertEqual(kept, ["checkpoint-00000030", "checkpoint-00000045"], "the newest two of 15, 30, 45 are kept")
        // The newest checkpoint (from the folder), and an older one named explicitly.
        for (source, name) in [(checkpoints.path, "newest"), (checkpoints.appendingPathComponent("checkpoint-00000030").path, "older")] {
            let out = base.appendingPathComponent("resumed-\(name)")
            let resumed = try train(np, common + ["--output", out.path, "--resume", source])
            XCTAssertEqual(resumed.status, 0, resumed.report)
            try assertSameRun(reference, out)
        }
    }

    func testSameRanksResumeIsBitIdenticalESAPNOneRank() throws { try checkResume(model: "esapn", task: "binary", np: 1) }
    func testSameRanksResumeIsBitIdenticalESAPNTwoRanks() throws { try checkResume(model: "esapn", task: "multiclass", np: 2) }
    func testSameRanksResumeIsBitIdenticalDARTSThreeRanks() throws { try checkResume(model: "darts", task: "binary", np: 3) }

    func testDamagedOrMismatchedCheckpointsAreRefused() throws {
        let base = try Self.ml100k.runDirectory("ck-refused")
        let checkpoints = base.appendingPathComponent("checkpoints")
        try trainOK(2, ["--model", "esapn", "--output", base.appendingPathComponent("run").path,
                        "--checkpoint-dir", checkpoints.path, "--checkpoint-every", "20", "--keep-checkpoints", "1"])
        let folder = checkpoints.appendingPathComponent("checkpoint-00000040")
        let shard = folder.appendingPathComponent("rank-00001-of-00002.safetensors")

        func refused(_ np: Int, _ args: [String], _ words: [String], _ what: String, line: UInt = #line) throws {
            let out = base.appendingPathComponent("refused-\(UUID().uuidString)")
            let r = try train(np, ["--model", "esapn", "--output", out.path, "--resume", checkpoints.path] + args)
            XCTAssertNotEqual(r.status, 0, "\(what): \(r.report)", line: line)
            for w in words { XCTAssert(r.stderr.contains(w), "\(what): stderr should say '\(w)': \(r.report)", line: line) }
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("results.json").path), what, line: line)
        }
        try refused(2, ["--task", "multiclass"], ["other settings", "task"], "another task")

        let good = try Data(contentsOf: shard)
        var altered = good
        altered[altered.count - 3] ^= 0x40
        try altered.write(to: shard)
        try refused(2, [], ["rank-00001-of-00002.safetensors", "checksum"], "an altered byte")
        try good.prefix(good.count - 100).write(to: shard)
        try refused(2, [], ["rank-00001-of-00002.safetensors", "corrupt"], "a truncated shard")
        try FileManager.default.removeItem(at: shard)
        try refused(2, [], ["rank-00001-of-00002.safetensors", "missing"], "a missing shard")
        try good.write(to: shard)
        let r = try train(2, ["--model", "esapn", "--output", base.appendingPathComponent("restored").path, "--resume", checkpoints.path])
        XCTAssertEqual(r.status, 0, "the repaired checkpoint resumes: \(r.report)")
        try Data("{ not json".utf8).write(to: folder.appendingPathComponent("manifest.json"))
        try refused(2, [], ["manifest.json", "corrupt"], "a corrupt manifest")
    }

    func testCheckpointFlagsNeedEachOther() throws {
        let r = try train(1, ["--output", "/tmp/unused", "--checkpoint-every", "5"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssert(r.stderr.contains("--checkpoint-dir"), r.report)
        let missing = try train(1, ["--output", "/tmp/unused", "--resume", "/nonexistent/checkpoints"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssert(missing.stderr.contains("/nonexistent/checkpoints"), missing.report)
    }

    /// A signal that reaches one rank only (SIGUSR1, as mpirun forwards it;
    /// SIGTERM and SIGINT are handled alike) stops both ranks after the same
    /// batch with a checkpoint and exit status 75; resuming from it gives the
    /// uninterrupted run bit for bit.
    func testASignalToOneRankStopsAllAfterACheckpoint() throws {
        let base = try Self.ml100k.runDirectory("ck-signal")
        let common = ["train", "--data", try Self.ml100k.stream(), "--test-last", "20000", "--model", "esapn", "--save-sizes", "--quiet"]
        let reference = base.appendingPathComponent("reference"), checkpoints = base.appendingPathComponent("checkpoints")
        var r = try MPIRun.runEsapn(np: 2, common + ["--output", reference.path])
        XCTAssertEqual(r.status, 0, r.report)

        let run = base.appendingPathComponent("signalled")
        let mpirun = try MPIRun.mpirun(), esapn = try MPIRun.esapn()
        let process = Process()
        process.executableURL = mpirun
        process.arguments = MPIRun.arguments(np: 2, transport: .sharedMemory) + [esapn.path] + common
            + ["--output", run.path, "--checkpoint-dir", checkpoints.path, "--checkpoint-every", "3"]
        process.standardOutput = FileHandle.nullDevice
        let err = Pipe()
        process.standardError = err
        try process.run()
        // Once training is under way (a first checkpoint exists), signal the rank that writes `run` last in `ps`.
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: checkpoints.appendingPathComponent("checkpoint-00000003/manifest.json").path) {
            XCTAssert(Date() < deadline && process.isRunning, "no first checkpoint")
            if Date() >= deadline || !process.isRunning { return }
            usleep(20_000)
        }
        let ranks = try runProcess(URL(fileURLWithPath: "/usr/bin/pgrep"), ["-f", "esapn train .*output \(run.path)"])
        let pids = ranks.stdout.split(separator: "\n").compactMap { Int32($0) }.filter { $0 != process.processIdentifier }
        guard let rank = pids.last, pids.count >= 2 else {
            process.terminate()
            return XCTFail("both ranks should be found: \(ranks.report)")
        }
        kill(rank, SIGUSR1)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertNotEqual(process.terminationStatus, 0, stderr)
        XCTAssert(stderr.contains("stopped by a signal after batch"), stderr)
        XCTAssert(stderr.contains("--resume"), stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.appendingPathComponent("results.json").path))

        let resumed = base.appendingPathComponent("resumed")
        r = try MPIRun.runEsapn(np: 2, common + ["--output", resumed.path, "--resume", checkpoints.path])
        XCTAssertEqual(r.status, 0, r.report)
        try assertSameRun(reference, resumed)
    }

    /// A checkpoint of a 2-rank run resumed on 3 ranks and on 1: every row,
    /// every ID's state and the metric totals move to their new owners, and
    /// the result meets the multi-rank contract against the uninterrupted
    /// 2-rank run (FIXED/DARTS/AutoEmb: float noise; ESAPN: its bounds).
    func testResumingOnAnotherNumberOfRanksReshards() throws {
        for (model, bound) in [("darts", 1e-5), ("esapn", 2e-2)] {
            let base = try Self.ml100k.runDirectory("ck-reshard-\(model)")
            let common = ["--model", model, "--save-sizes"]
            let reference = base.appendingPathComponent("two-ranks"), checkpoints = base.appendingPathComponent("checkpoints")
            try trainOK(2, common + ["--output", reference.path, "--checkpoint-dir", checkpoints.path, "--checkpoint-every", "30"])
            for np in [3, 1] {
                let out = base.appendingPathComponent("resumed-on-\(np)")
                try trainOK(np, common + ["--output", out.path, "--resume", checkpoints.appendingPathComponent("checkpoint-00000030").path])
                let c = try RunComparison(run: out.path, reference: reference.path)
                XCTAssertEqual(c.batches_with_other_records, 0)
                let loss = model == "esapn" ? c.max_loss_share_before_divergence : c.max_loss_delta
                XCTAssertLessThanOrEqual(loss, bound, "\(model) 2 → \(np) ranks: \(c.summary)")
                XCTAssertLessThanOrEqual(abs(c.test_accuracy_delta_points), model == "esapn" ? 0.4 : 1e-3, c.summary)
                XCTAssertLessThanOrEqual(c.finalSizeDifferenceShare, model == "esapn" ? 0.008 : 0, c.summary)
                print("resume \(model) 2 → \(np) ranks: \(c.summary)")
            }
        }
    }

    /// --checkpoint-minutes: rank 0's clock decides, every rank takes the
    /// checkpoint after the same batch, and taking them changes nothing.
    func testCheckpointsOnAClock() throws {
        let base = try Self.ml100k.runDirectory("ck-clock")
        let common = ["--model", "esapn", "--save-sizes"]
        try trainOK(2, common + ["--output", base.appendingPathComponent("reference").path])
        let checkpoints = base.appendingPathComponent("checkpoints")
        try trainOK(2, common + ["--output", base.appendingPathComponent("clocked").path, "--checkpoint-dir", checkpoints.path,
                                 "--checkpoint-minutes", "0.002", "--keep-checkpoints", "1000"])
        let taken = try FileManager.default.contentsOfDirectory(atPath: checkpoints.path).filter { $0.hasPrefix("checkpoint-") }
        XCTAssertGreaterThanOrEqual(taken.count, 2, "a checkpoint every 0.12 s over a run of several seconds: \(taken)")
        for folder in taken {
            XCTAssert(FileManager.default.fileExists(atPath: checkpoints.appendingPathComponent(folder).appendingPathComponent("manifest.json").path),
                      "\(folder) is complete on every rank")
        }
        try assertSameRun(base.appendingPathComponent("reference"), base.appendingPathComponent("clocked"))
    }

    /// A NaN in one rank's row (planted in batch 5) is caught in that batch on
    /// every rank, the run stops naming the row's ID, and the checkpoint before
    /// it stays intact: resuming from it without the fault gives the clean run.
    func testANaNStopsTheRunAndTheLastCheckpointStaysIntact() throws {
        let base = try Self.ml100k.runDirectory("ck-nan")
        let common = ["--model", "esapn", "--save-sizes"]
        try trainOK(2, common + ["--output", base.appendingPathComponent("clean").path])
        let checkpoints = base.appendingPathComponent("checkpoints")
        var r = try train(2, common + ["--output", base.appendingPathComponent("faulty").path, "--checkpoint-dir", checkpoints.path,
                                       "--checkpoint-every", "3"],
                  environment: [InjectedFault.environmentVariable: InjectedFault.nanAtBatch5.rawValue])
        XCTAssertNotEqual(r.status, 0, r.report)
        XCTAssert(r.stderr.contains("NaN or Inf reached the gradients in batch 5"), r.report)
        XCTAssert(r.stderr.contains("user ") && r.stderr.contains("'s row"), "names the row: \(r.report)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: base.appendingPathComponent("faulty/results.json").path))
        r = try train(2, common + ["--output", base.appendingPathComponent("resumed").path, "--resume", checkpoints.path])
        XCTAssertEqual(r.status, 0, r.report)
        XCTAssert(r.stderr.isEmpty || !r.stderr.contains("error"), r.report)
        try assertSameRun(base.appendingPathComponent("clean"), base.appendingPathComponent("resumed"))
    }
}
