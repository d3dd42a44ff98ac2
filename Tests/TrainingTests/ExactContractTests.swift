// The contract of --deterministic (issue 12), tightened from a tolerance to
// equality: on real ml-100k (200 batches of 500, --test-last 20000), a run
// on P processes and the run on 1 process, both as C = 4 logical ranks, have
// byte-identical batches.csv (every batch's loss and correct records),
// by_frequency.csv, final_sizes.csv and results.json metrics. Every model
// (ESAPN, whose discrete decisions made its sizes depend on P before, FIXED,
// DARTS, AutoEmb), seeds 0, 7 and 11, P = 2, 3, 4 over shared memory and over
// TCP; ESAPN's multiclass task at P = 3; and ESAPN on the first 500,000
// records of the ml-latest preset at P = 2. scripts/exact-check.sh runs the
// same matrix outside the suite (BENCHMARKS.md has its figures).
import Foundation
import TestSupport
import Training
import XCTest

final class ExactContractTests: XCTestCase {
    static let ml100k = PreparedML100K()

    override class func tearDown() {
        ml100k.remove()
        super.tearDown()
    }

    func arguments(_ model: String, task: String = "binary", seed: Int, logical: Int = 4, output: URL) throws -> [String] {
        ["train", "--data", try Self.ml100k.stream(), "--model", model, "--task", task, "--seed", "\(seed)",
         "--test-last", "20000", "--save-sizes", "--quiet", "--deterministic", "--logical-ranks", "\(logical)",
         "--output", output.path]
    }

    /// One process, no mpirun.
    func reference(_ model: String, task: String = "binary", seed: Int, logical: Int = 4,
                   file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        let output = try Self.ml100k.runDirectory("exact-p1-\(model)-\(task)-\(seed)-c\(logical)")
        let result = try runEsapn(try arguments(model, task: task, seed: seed, logical: logical, output: output),
                                  environment: ["OPENBLAS_NUM_THREADS": "1"])
        XCTAssertEqual(result.status, 0, result.report, file: file, line: line)
        return output
    }

    /// The first output of `run` that is not byte-identical to `reference`'s, or nil.
    /// `resumed`: `run` was resumed from a checkpoint, so its slabs hold its rows
    /// packed, without the holes ESAPN's enlargements left (memory.resident_bytes is not compared).
    func firstDifference(_ run: URL, _ reference: URL, resumed: Bool = false) throws -> String? {
        for name in ["batches.csv", "by_frequency.csv", "final_sizes.csv"] {
            let a = try Data(contentsOf: run.appendingPathComponent(name))
            let b = try Data(contentsOf: reference.appendingPathComponent(name))
            if a != b { return name }
        }
        let a = try RunFolder(run), b = try RunFolder(reference)
        for key in ["ranks", "records", "test.accuracy", "test.loss", "test.records", "overall.accuracy", "overall.loss",
                    "memory.total_dims", "memory.ratio"] + (resumed ? [] : ["memory.resident_bytes"])
        where a.number(key) != b.number(key) {
            return "results.json \(key)"
        }
        let x = try JSONSerialization.data(withJSONObject: a.results["sizes"] as Any, options: .sortedKeys)
        let y = try JSONSerialization.data(withJSONObject: b.results["sizes"] as Any, options: .sortedKeys)
        return x == y ? nil : "results.json sizes"
    }

    func check(_ model: String, task: String = "binary", seeds: [Int] = [0, 7, 11], ranks: [Int] = [2, 3, 4],
               transports: [MPITransport] = [.sharedMemory, .tcpLoopback],
               file: StaticString = #filePath, line: UInt = #line) throws {
        for seed in seeds {
            let reference = try reference(model, task: task, seed: seed, file: file, line: line)
            for transport in transports { for np in ranks {
                let output = try Self.ml100k.runDirectory("exact-p\(np)-\(transport)-\(model)-\(task)-\(seed)")
                let result = try MPIRun.runEsapn(np: np, transport: transport,
                                                 try arguments(model, task: task, seed: seed, output: output))
                XCTAssertEqual(result.status, 0, result.report, file: file, line: line)
                let run = try RunFolder(output, file: file, line: line)
                XCTAssertEqual(run.number("processes"), Double(np), file: file, line: line)
                XCTAssertEqual(run.number("ranks"), 4, "the results are those of the 4 logical ranks", file: file, line: line)
                let difference = try firstDifference(output, reference)
                XCTAssertNil(difference, "\(model) \(task) seed \(seed): P = \(np) over \(transport) is not the bits of "
                             + "P = 1: \(difference ?? "")", file: file, line: line)
            } }
        }
    }

    func testESAPNSizesAreTheSameBitsOnAnyNumberOfProcesses() throws { try check("esapn") }
    func testFIXED() throws { try check("fixed") }
    func testDARTS() throws { try check("darts") }
    func testAutoEmb() throws { try check("autoemb") }
    func testESAPNMulticlass() throws {
        try check("esapn", task: "multiclass", seeds: [0], ranks: [3], transports: [.sharedMemory])
    }

    /// The scale the tool is for: ESAPN on the first 500,000 records of the
    /// ml-latest preset (1,000 batches; the last 100,000 records are the test
    /// part), 1 process against 2.
    func testESAPNOnTheMLLatestPrefix() throws {
        let directory = try Self.ml100k.runDirectory("exact-ml-latest")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let stream = directory.appendingPathComponent("ml-latest-500k.stream").path
        let synth = try runEsapn(["synth", "--preset", "ml-latest", "--records", "500000", "--seed", "1", "--output", stream])
        XCTAssertEqual(synth.status, 0, synth.report)
        func arguments(_ output: URL) -> [String] {
            ["train", "--data", stream, "--model", "esapn", "--test-last", "100000", "--save-sizes", "--quiet",
             "--deterministic", "--output", output.path]
        }
        let one = directory.appendingPathComponent("p1"), two = directory.appendingPathComponent("p2")
        let reference = try runEsapn(arguments(one), environment: ["OPENBLAS_NUM_THREADS": "1"])
        XCTAssertEqual(reference.status, 0, reference.report)
        let run = try MPIRun.runEsapn(np: 2, transport: .sharedMemory, arguments(two))
        XCTAssertEqual(run.status, 0, run.report)
        XCTAssertEqual(try RunFolder(two).batches.count, 1000)
        let difference = try firstDifference(two, one)
        XCTAssertNil(difference, "ESAPN on the ml-latest prefix: P = 2 is not the bits of P = 1: \(difference ?? "")")
    }

    /// A checkpoint holds the logical ranks' shards, so a run stopped on 2
    /// processes resumes on 3 (or 1) and ends with the bits of the run that never stopped.
    func testResumesOnAnotherNumberOfProcessesBitForBit() throws {
        let whole = try reference("esapn", seed: 0)
        let directory = try Self.ml100k.runDirectory("exact-resume")
        let checkpoints = directory.appendingPathComponent("checkpoints")
        let first = try MPIRun.runEsapn(np: 2, transport: .sharedMemory, try arguments(
            "esapn", seed: 0, output: directory.appendingPathComponent("p2")) + [
            "--checkpoint-dir", checkpoints.path, "--checkpoint-every", "100"])
        XCTAssertEqual(first.status, 0, first.report)
        let after100 = checkpoints.appendingPathComponent("checkpoint-00000100").path
        XCTAssertTrue(FileManager.default.fileExists(atPath: after100), "no checkpoint after batch 100 in \(checkpoints.path)")
        for np in [3, 1] {
            let resumed = directory.appendingPathComponent("resumed-on-\(np)")
            let arguments = try arguments("esapn", seed: 0, output: resumed) + ["--resume", after100]
            let result = np == 1 ? try runEsapn(arguments, environment: ["OPENBLAS_NUM_THREADS": "1"])
                                 : try MPIRun.runEsapn(np: np, transport: .sharedMemory, arguments)
            XCTAssertEqual(result.status, 0, result.report)
            let difference = try firstDifference(resumed, whole, resumed: true)
            XCTAssertNil(difference, "resumed on \(np) process(es) from a 2-process checkpoint: \(difference ?? "") differs "
                         + "from the run that never stopped")
        }
    }

    /// The comparison can fail: with another number of logical ranks the
    /// slices, the owners and the order of every sum change, and so do the bits.
    func testAnotherNumberOfLogicalRanksGivesOtherBits() throws {
        let four = try reference("esapn", seed: 7)
        let three = try reference("esapn", seed: 7, logical: 3)
        XCTAssertEqual(try firstDifference(three, four), "batches.csv")
    }

    /// More processes than logical ranks is refused before any collective, with the fix.
    func testMoreProcessesThanLogicalRanksIsRefused() throws {
        let output = try Self.ml100k.runDirectory("exact-refused")
        let result = try MPIRun.runEsapn(np: 3, transport: .sharedMemory,
                                         try arguments("fixed", seed: 0, logical: 2, output: output))
        XCTAssertEqual(result.status, 1, result.report)
        XCTAssertTrue(result.stderr.contains("--deterministic runs as 2 logical ranks, fewer than the 3 processes "
                                                    + "started: add --logical-ranks 3"), result.report)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output.appendingPathComponent("results.json").path))
    }

    /// The CPU list a process may run on, which decides the warning that its logical ranks would share cores.
    func testCPUListsAreCounted() {
        XCTAssertEqual(ProcessMemory.cpuCount(list: "0-1"), 2)
        XCTAssertEqual(ProcessMemory.cpuCount(list: " 3\n"), 1)
        XCTAssertEqual(ProcessMemory.cpuCount(list: "0-3,8,10-11"), 7)
        XCTAssertNil(ProcessMemory.cpuCount(list: ""))
        XCTAssertNil(ProcessMemory.cpuCount(list: "3-1"))
        XCTAssertNil(ProcessMemory.cpuCount(list: "a-b"))
        XCTAssertNotNil(ProcessMemory.allowedCPUs(), "no Cpus_allowed_list in /proc/self/status")
    }

    /// A process that hosts more logical ranks than it has CPUs says so, with the fix.
    func testAProcessWithFewerCPUsThanLogicalRanksIsWarned() throws {
        guard let taskset = MPIRun.executableOnPath("taskset") else {
            return XCTFail("taskset not found on PATH: install util-linux")
        }
        let output = try Self.ml100k.runDirectory("exact-one-cpu")
        let result = try runProcess(taskset, ["-c", "0", try MPIRun.esapn().path] + (try arguments(
            "fixed", seed: 0, logical: 2, output: output)) + ["--limit", "25000"],
                                    environment: ["OPENBLAS_NUM_THREADS": "1"])
        XCTAssertEqual(result.status, 0, result.report)
        XCTAssertTrue(result.stderr.contains("esapn: warning: process 0 hosts 2 logical ranks but may run on 1 CPU; give it 2 "
                                             + "(mpirun --bind-to none, or --map-by slot:PE=2), or start more processes"),
                      result.report)
    }

    func testBadLogicalRankSettingsAreRefusedWithTheFix() throws {
        let output = try Self.ml100k.runDirectory("exact-flag")
        let stream = try Self.ml100k.stream()
        for (arguments, message) in [
            (["--logical-ranks", "4"], "--logical-ranks is a setting of --deterministic: add --deterministic"),
            (["--deterministic", "--logical-ranks", "0"], "--logical-ranks takes a positive number, got 0"),
            (["--deterministic", "--logical-ranks", "600"],
             "--logical-ranks 600 is more than --batch-size 500: every logical rank needs records of every batch; use at most 500"),
        ] {
            let result = try runEsapn(["train", "--data", stream, "--output", output.path] + arguments)
            XCTAssertNotEqual(result.status, 0, result.report)
            XCTAssertTrue(result.stderr.contains(message), "\(arguments): \(result.report)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: output.appendingPathComponent("results.json").path))
        }
    }
}
