// The multi-rank contract (ARCHITECTURE §4) under mpirun, on real ml-100k
// (100,000 records, 200 batches of 500), --test-last 20000: a run on P ranks
// is compared with the 1-rank run by RunComparison (`esapn compare`).
//
// FIXED, DARTS and AutoEmb: P = 2, 3, 4 over shared memory (3 and 4
// oversubscribed on two cores) and P = 2, 3 over TCP on loopback give the
// 1-rank run's per-batch losses within 1e-5, accuracies within 2 records,
// and every ID's size. P ranks do the same arithmetic in another order
// (SyncBN's per-rank partial sums, MPI's sum of per-rank gradients, sgemm
// kernels chosen by row count): measured max |Δ batch loss| ≈ 1e-8…7e-8 over
// all 200 batches on every OpenBLAS kernel this CPU runs, at the 9 digits of
// batches.csv. A semantic error is orders of magnitude beyond it: BatchNorm
// with per-slice statistics changes batch losses by > 1e-3 at P = 2
// (ContractThreadedTests.testPerSliceBatchNormIsFarOutsideTheTolerance).
//
// ESAPN's decisions are discrete. An ID whose two policy logits (or whose
// sampled action's uniform draw and probability) tie within float noise goes
// one way on one run and the other way on another, and which IDs tie depends
// on P and on the BLAS kernel. So ESAPN's contract in a plain run (with
// --deterministic it is equality: ExactContractTests) is what holds by design,
// not by luck of rounding:
//   1. up to the first batch whose sizes_digest differs (batches.csv: a
//      P-independent digest of the sizes chosen in the batch), every batch's
//      loss agrees within ContractBounds.esapn.lossShare of the batch's loss,
//      and its correct records within .correctRecords. This is far wider
//      than the other models' 1e-5 because ESAPN's model amplifies rounding:
//      while the rows are narrower than a transform W_{k→k+1}'s input, they
//      reach only a subspace of it, and the gradient of W in the other
//      directions is zero but for rounding; Adam divides each element's
//      gradient by its own RMS, so those elements take steps of size lr
//      whose signs are rounding noise, and they matter once rows of the
//      wider widths arrive. Measured on ml-100k (Haswell against SkylakeX,
//      1 rank, same sizes in every batch): max |Δ batch loss| 2e-4 (binary)
//      and 1e-2 (multiclass); with the chain's gradients zeroed, as an
//      experiment, 9e-8 and 6e-6;
//   2. from there on, the test and overall accuracy agree within
//      .testAccuracyPoints and .overallAccuracyPoints, the losses within
//      .testLoss and .overallLoss;
//   3. the share of IDs whose final size differs stays under .finalSizeShare.
// Each bound is 3× the worst figure of scripts/contract-matrix.sh on the
// Cooperlake kernel (the library's own choice on AMD Zen 4/5), rounded up:
// 3 seeds × 2 tasks × P = 2, 3, 4 over shared memory. They hold unchanged on
// SkylakeX, Haswell and Sandybridge (BENCHMARKS.md has the matrix: the worst
// there is 0.0104 of a batch's loss and 0.0050 of the IDs). A bug that
// depends on P (testESAPNContractCatchesPlantedBugs) lands at least 10×
// beyond the final-size bound on this test's seed and task (at least 7× over
// the whole matrix).
import Analysis
import Embeddings
import Foundation
import TestSupport
import Training
import XCTest

/// What the contract allows between a P-rank run and the 1-rank run.
struct ContractBounds {
    /// Before the first batch in which some ID's size differs: |Δ batch loss|
    /// within `loss` + `lossShare` × the batch's loss, and `correctRecords`.
    var loss = 0.0
    var lossShare = 0.0
    var correctRecords: Double
    /// From the first size divergence on: test and overall accuracy, in points
    /// (percent); test and overall loss; the share of IDs whose final size differs.
    var testAccuracyPoints: Double
    var overallAccuracyPoints: Double
    var testLoss: Double
    var overallLoss: Double
    var finalSizeShare: Double
    /// Whether any batch's sizes may differ at all.
    var sizesMayDiverge: Bool

    /// FIXED, DARTS, AutoEmb: float noise only, every size identical.
    static let exact = ContractBounds(loss: 1e-5, correctRecords: 2, testAccuracyPoints: 0.01, overallAccuracyPoints: 0.01,
                                      testLoss: 1e-5, overallLoss: 1e-5, finalSizeShare: 0, sizesMayDiverge: false)
    /// ESAPN, derived with scripts/contract-matrix.sh (see the header and BENCHMARKS.md).
    /// 3× the worst on Cooperlake (18 comparisons: loss share 0.0066, 4 records, test accuracy 0.11 points,
    /// overall 0.024, test loss 4.0e-4, overall 8e-5, final-size share 0.0027), rounded up.
    static let esapn = ContractBounds(lossShare: 0.02, correctRecords: 20, testAccuracyPoints: 0.4,
                                      overallAccuracyPoints: 0.08, testLoss: 2e-3, overallLoss: 3e-4,
                                      finalSizeShare: 0.008, sizesMayDiverge: true)

    /// One figure of a comparison against its bound.
    struct Check {
        var name: String
        var measured: Double
        var bound: Double
        var passes: Bool { measured <= bound }
        /// How many times the bound the figure is (∞ when the bound is 0 and the figure is not).
        var ratio: Double { bound > 0 ? measured / bound : (measured > 0 ? .infinity : 0) }
    }

    /// Prints the comparison and fails the test for every bound it is over.
    func assertHeld(_ c: RunComparison, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        print("\(label):\n\(c.summary)")
        for check in checks(c) where !check.passes {
            XCTFail("\(label): \(check.name) is \(check.measured), over the bound \(check.bound)\n\(c.summary)",
                    file: file, line: line)
        }
    }

    func checks(_ c: RunComparison) -> [Check] {
        // Before the first divergence, the worst excess of |Δ loss| over its allowance, as a share of it.
        let lossBound = loss > 0 ? loss : lossShare
        let lossMeasured = loss > 0 ? c.max_loss_delta_before_divergence : c.max_loss_share_before_divergence
        // Exact models must not diverge at all; ESAPN's sizes may (near-ties), so the check is theirs only.
        let divergence = sizesMayDiverge ? [] : [
            Check(name: "a batch whose sizes differ (1: yes)", measured: c.first_size_divergence == nil ? 0 : 1, bound: 0),
        ]
        return divergence + [
            Check(name: "batches with other record counts", measured: Double(c.batches_with_other_records), bound: 0),
            Check(name: loss > 0 ? "|Δ batch loss| before the first size divergence"
                                 : "|Δ batch loss| / loss before the first size divergence",
                  measured: lossMeasured, bound: lossBound),
            Check(name: "|Δ correct records| per batch before the first size divergence",
                  measured: c.max_correct_delta_before_divergence, bound: correctRecords),
            Check(name: "|Δ test accuracy| (points)", measured: abs(c.test_accuracy_delta_points), bound: testAccuracyPoints),
            Check(name: "|Δ overall accuracy| (points)", measured: abs(c.overall_accuracy_delta_points),
                  bound: overallAccuracyPoints),
            Check(name: "|Δ test loss|", measured: abs(c.test_loss_delta), bound: testLoss),
            Check(name: "|Δ overall loss|", measured: abs(c.overall_loss_delta), bound: overallLoss),
            Check(name: "share of IDs with another final size", measured: c.finalSizeDifferenceShare, bound: finalSizeShare),
        ]
    }
}

final class ContractTests: XCTestCase {
    static let testLast = 20000

    static let ml100k = PreparedML100K()
    nonisolated(unsafe) static var references: [String: URL] = [:]

    override class func tearDown() {
        ml100k.remove()
        references = [:]
        super.tearDown()
    }

    func arguments(model: String, task: String, output: URL) throws -> [String] {
        ["train", "--data", try Self.ml100k.stream(), "--model", model, "--task", task, "--test-last", "\(Self.testLast)",
         "--save-sizes", "--quiet", "--output", output.path]
    }

    /// The P = 1 run, without mpirun (the local communicator), once per model and task.
    func reference(_ model: String, _ task: String) throws -> URL {
        if let run = Self.references[model + task] { return run }
        let output = try Self.ml100k.runDirectory("p1-\(model)-\(task)")
        let result = try runEsapn(try arguments(model: model, task: task, output: output),
                                  environment: ["OPENBLAS_NUM_THREADS": "1"])
        XCTAssertEqual(result.status, 0, result.report)
        let run = try RunFolder(output)
        XCTAssertEqual(run.number("ranks"), 1)
        XCTAssertEqual(run.batches.count, 200)
        Self.references[model + task] = output
        return output
    }

    /// Runs `model` on P ranks and compares it with the 1-rank run.
    func comparison(model: String, task: String, transport: MPITransport, ranks np: Int, fault: String? = nil,
                    file: StaticString = #filePath, line: UInt = #line) throws -> RunComparison {
        let reference = try reference(model, task)
        let output = try Self.ml100k.runDirectory("p\(np)-\(transport)-\(model)-\(task)-\(fault ?? "")")
        let arguments = try arguments(model: model, task: task, output: output)
        let result = try MPIRun.runEsapn(np: np, transport: transport, arguments,
                                         environment: fault.map { [InjectedFault.environmentVariable: $0] } ?? [:])
        XCTAssertEqual(result.status, 0, result.report, file: file, line: line)
        let run = try RunFolder(output, file: file, line: line)
        XCTAssertEqual(run.number("ranks"), Double(np), file: file, line: line)
        XCTAssertEqual(run.number("test.records"), Double(Self.testLast), file: file, line: line)
        // The ranks' rows add up to the whole table the run reports.
        let perRank = try XCTUnwrap((run.results["memory"] as? [String: Any])?["per_rank"] as? [[String: Any]],
                                    "results.json has no memory.per_rank", file: file, line: line)
        XCTAssertEqual(perRank.count, np, "one memory entry per rank", file: file, line: line)
        let floats = try perRank.map { try XCTUnwrap($0["value_floats"] as? Int, "per_rank entry without value_floats") }
        XCTAssertEqual(floats.reduce(0, +), Int(run.number("memory.total_dims")), file: file, line: line)
        return try RunComparison(run: output.path, reference: reference.path)
    }

    func check(model: String = "fixed", task: String, transport: MPITransport, ranks: [Int],
               bounds: ContractBounds = .exact, file: StaticString = #filePath, line: UInt = #line) throws {
        for np in ranks {
            let c = try comparison(model: model, task: task, transport: transport, ranks: np, file: file, line: line)
            let label = "\(model) \(task) P=\(np) over \(transport)"
            bounds.assertHeld(c, label, file: file, line: line)
            XCTAssertNotNil(c.ids, "\(label): final_sizes.csv missing", file: file, line: line)
        }
    }

    func testBinaryOverSharedMemory() throws { try check(task: "binary", transport: .sharedMemory, ranks: [2, 3, 4]) }
    func testBinaryOverTCPLoopback() throws { try check(task: "binary", transport: .tcpLoopback, ranks: [2, 3]) }
    func testMulticlassOverSharedMemory() throws { try check(task: "multiclass", transport: .sharedMemory, ranks: [2, 3, 4]) }
    func testMulticlassOverTCPLoopback() throws { try check(task: "multiclass", transport: .tcpLoopback, ranks: [2, 3]) }

    /// ESAPN: the policy runs at the owners on P-independent states and draws.
    func testESAPNBinary() throws {
        try check(model: "esapn", task: "binary", transport: .sharedMemory, ranks: [2, 3], bounds: .esapn)
    }
    func testESAPNMulticlassOverTCPLoopback() throws {
        try check(model: "esapn", task: "multiclass", transport: .tcpLoopback, ranks: [3], bounds: .esapn)
    }
    /// The soft baselines: architecture weights at the owners, gradients returned with the rows.
    func testDARTSBinary() throws { try check(model: "darts", task: "binary", transport: .sharedMemory, ranks: [3]) }
    func testAutoEmbBinary() throws { try check(model: "autoemb", task: "binary", transport: .sharedMemory, ranks: [3]) }

    /// A bug that depends on P, planted in the policy or in the exchange
    /// (ESAPN_INJECT_FAULT, Embeddings/FaultSeam.swift), fails ESAPN's contract by at least 10×
    /// one of its bounds: the bounds are loose enough for rounding, not for bugs.
    func testESAPNContractCatchesPlantedBugs() throws {
        for fault in ["action-keyed-by-local-id", "owner-drops-last-ranks-losses", "owner-drops-later-ranks-frequency"] {
            let c = try comparison(model: "esapn", task: "binary", transport: .sharedMemory, ranks: 2, fault: fault)
            let checks = ContractBounds.esapn.checks(c)
            let worst = try XCTUnwrap(checks.max { $0.ratio < $1.ratio })
            print("planted \(fault): \(worst.name) is \(worst.measured), \(worst.ratio)× its bound \(worst.bound)\n\(c.summary)")
            XCTAssertGreaterThanOrEqual(worst.ratio, 10, "planted \(fault) is not caught by a wide margin:\n\(c.summary)")
        }
    }
}
