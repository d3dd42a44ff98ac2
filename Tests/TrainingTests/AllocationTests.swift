// "The hot path allocates nothing per batch" (STYLE.md), checked on the
// release binary: the allocation counting library (AllocationCountingLibrary)
// is preloaded, and `esapn train --count-allocations` reads its counters
// after batch 1 (warm-up) and after the last batch of real ml-100k
// (200 batches of 500: 199 measured).
//
// With several ranks, Open MPI's own collectives allocate (each
// MPI_Allreduce mallocs a temporary buffer in coll/base: recursive doubling,
// Rabenseifner, ring); the library tells those calls apart by the caller's
// library, and esapn's own count must be zero. Open MPI's count is printed,
// and is the control that shows the counter sees allocations inside the
// measured window. (Before the slabs were reserved up front, P = 1 counted
// 16: four slab growths of RowStore.create.)
import Foundation
import TestSupport
import XCTest

final class AllocationTests: XCTestCase {
    static let ml100k = PreparedML100K()
    nonisolated(unsafe) static var library: URL?

    override class func tearDown() {
        ml100k.remove()
        if let library { try? FileManager.default.removeItem(at: library.deletingLastPathComponent()) }
        library = nil
        super.tearDown()
    }

    func countingLibrary() throws -> URL {
        if let library = Self.library { return library }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("esapn-countmalloc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let library = try AllocationCountingLibrary.build(in: dir)
        Self.library = library
        return library
    }

    /// Parses "hot-path allocations: N over B batches…; inside Open MPI: M…".
    func counts(_ result: ProcessResult, file: StaticString = #filePath, line: UInt = #line)
        -> (own: Int, batches: Int, inMPI: Int)? {
        XCTAssertEqual(result.status, 0, result.report, file: file, line: line)
        guard let text = result.stdout.split(separator: "\n").first(where: { $0.hasPrefix("hot-path allocations: ") }) else {
            XCTFail("no allocation count printed: \(result.report)", file: file, line: line)
            return nil
        }
        let numbers = text.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        // own, batches, [per-rank own…], inMPI, [per-rank inMPI…]
        let inMPIText = text.components(separatedBy: "inside Open MPI: ").last!
        guard numbers.count >= 3, let inMPI = Int(inMPIText.prefix(while: \.isNumber)) else {
            XCTFail("cannot parse '\(text)'", file: file, line: line)
            return nil
        }
        print(text)
        return (numbers[0], numbers[1], inMPI)
    }

    func testOneRankAllocatesNothingPerBatch() throws {
        let stream = try Self.ml100k.stream(), library = try countingLibrary()
        let result = try runEsapn(["train", "--data", stream, "--output", try Self.ml100k.runDirectory("p1").path,
                                   "--quiet", "--count-allocations"],
                                  environment: ["LD_PRELOAD": library.path, "OPENBLAS_NUM_THREADS": "1"])
        guard let c = counts(result) else { return }
        XCTAssertEqual(c.batches, 199)
        XCTAssertEqual(c.own, 0, "esapn allocated in the hot path (find the caller: gdb with a breakpoint on malloc "
                       + "after the first esapn_malloc_calls): \(result.stdout)")
        XCTAssertEqual(c.inMPI, 0, "one local rank makes no MPI call")
    }

    /// Under a shard budget that binds (rows evicted, freed pages trimmed, enlargements sorted by margin), still nothing.
    /// Haswell's kernels: OpenBLAS 0.3's SkylakeX small-matrix sgemm (sgemm_small_kernel_nn_SKYLAKEX) mallocs
    /// 1 KiB for some of the policy network's shapes, inside the library (seen with gdb on an AVX-512 EPYC).
    func testABudgetThatBindsAllocatesNothingPerBatch() throws {
        let stream = try Self.ml100k.stream(), library = try countingLibrary()
        for (model, mib) in [("fixed", "2.0"), ("esapn", "0.1")] {
            let output = try Self.ml100k.runDirectory("budget-\(model)")
            let result = try runEsapn(["train", "--data", stream, "--model", model, "--shard-budget", mib, "--output", output.path,
                                       "--quiet", "--count-allocations"],
                                      environment: ["LD_PRELOAD": library.path, "OPENBLAS_NUM_THREADS": "1",
                                                    "OPENBLAS_CORETYPE": "Haswell"])
            guard let c = counts(result) else { return }
            XCTAssertEqual(c.own, 0, "\(model) under --shard-budget \(mib) allocated in the hot path: \(result.stdout)")
            let results = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: output.appendingPathComponent("results.json")))
                                        as? [String: Any])
            let budget = try XCTUnwrap(results["budget"] as? [String: Any])
            let evictions = ["users", "items"].map { ((budget[$0] as? [String: Any])?["evictions"] as? Int) ?? 0 }.reduce(0, +)
            XCTAssertGreaterThan(evictions, 0, "\(model): the budget binds")
        }
    }

    func testTwoRanksAllocateNothingOutsideOpenMPI() throws {
        let stream = try Self.ml100k.stream(), library = try countingLibrary()
        let result = try MPIRun.runEsapn(np: 2, ["train", "--data", stream, "--output", try Self.ml100k.runDirectory("p2").path,
                                                 "--quiet", "--count-allocations"],
                                         mpirunArguments: ["-x", "LD_PRELOAD=\(library.path)"])
        guard let c = counts(result) else { return }
        XCTAssertEqual(c.batches, 199)
        XCTAssertEqual(c.own, 0, "esapn allocated in the hot path: \(result.stdout)")
        XCTAssertGreaterThan(c.inMPI, 0, "control: Open MPI 4.1's all-reduce allocates temporaries in the measured window, "
                             + "so a counter that sees nothing is broken")
    }

    func testCountingWithoutTheLibraryIsAClearError() throws {
        let stream = try Self.ml100k.stream()
        let output = try Self.ml100k.runDirectory("none")
        let result = try runEsapn(["train", "--data", stream, "--output", output.path, "--quiet", "--count-allocations"],
                                  environment: ["LD_PRELOAD": ""])
        XCTAssertEqual(result.status, 1, result.report)
        XCTAssertTrue(result.stderr.contains("--count-allocations needs the allocation counting library preloaded"), result.report)
        XCTAssertFalse(result.stderr.contains("Fatal error"), result.report)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output.path))
    }
}
