// The scaling model (issue 10): its α–β fit, each term of a prediction, and
// `esapn bench-comm` / `esapn plan` end to end under mpirun.
import Analysis
import Foundation
import TestSupport
import Training
import XCTest

final class ScalingModelTests: XCTestCase {
    static let ml100k = PreparedML100K()

    override class func tearDown() {
        ml100k.remove()
        super.tearDown()
    }

    /// Points made from the model's own forms give back their α and β.
    func testFitRecoversAlphaAndBeta() {
        let P = 4, alpha = 20e-6, beta = 0.8e-9
        var points: [CommCalibration.Point] = []
        for bytes in [8, 128, 2048, 32768, 524288] {
            points.append(.init(kind: .allReduce, bytes: bytes, seconds: 2 * alpha + 1.5 * Double(bytes) * beta))
            points.append(.init(kind: .allToAllV, bytes: bytes, seconds: 3 * alpha + 3 * Double(bytes) * 2 * beta))
        }
        let link = CommCalibration(name: "test", ranks: P, points: points).link
        assertClose(link.allReduce.alpha, alpha, rtol: 1e-9)
        assertClose(link.allReduce.beta, beta, rtol: 1e-9)
        assertClose(link.allToAllV.alpha, alpha, rtol: 1e-9)
        assertClose(link.allToAllV.beta, 2 * beta, rtol: 1e-9)
    }

    func workload() -> Workload {
        Workload(model: "esapn", batch: 500, ranks: 2, replicatedSeconds: 0.001, slicedSeconds: 0.010,
                 sgemmFlop: 0, allReduceCalls: 4, allReduceBytes: 400_000, allToAllCalls: 2, allToAllVCalls: 2,
                 allToAllVSliceBytes: 100_000, overlappableSeconds: 0.002)
    }

    /// Each term as the header of ScalingModel.swift writes it.
    func testPredictionTerms() {
        let link = LinkCost(name: "l", allReduce: CostTerm(alpha: 10e-6, beta: 1e-9), allToAllV: CostTerm(alpha: 20e-6, beta: 2e-9))
        let model = ScalingModel(workload: workload(), link: link) { _ in 1e11 }
        let one = model.predict(ranks: 1)
        assertClose(one.computeSeconds, 0.001 + 0.020, rtol: 1e-12)
        XCTAssertEqual(one.communicationSeconds, 0)

        let four = model.predict(ranks: 4)
        assertClose(four.computeSeconds, 0.001 + 0.005, rtol: 1e-12)
        // 4 all-reduce × 2 steps × 10 µs; 2 all-to-all × 2 steps × 20 µs; 2 all-to-all-v × 3 × 20 µs.
        assertClose(four.latencySeconds, 4 * 2 * 10e-6 + 2 * 2 * 20e-6 + 2 * 3 * 20e-6, rtol: 1e-12)
        // 2·3/4 × 400 kB × 1 ns; the slice of 4 ranks is half the slice of 2, 3/4 of it leaves the rank, 2 ns/B.
        assertClose(four.bandwidthSeconds, 1.5 * 400_000 * 1e-9 + 0.75 * 50_000 * 2e-9, rtol: 1e-12)
        XCTAssertEqual(four.recordsPerSecond, 500 / four.batchSeconds)

        let fused = model.predict(ranks: 4, change: .oneCallPerStep)
        assertClose(four.latencySeconds - fused.latencySeconds, (2 * 2 * 20e-6 + 2 * 3 * 20e-6) / 2, rtol: 1e-9)
        let cached = model.predict(ranks: 4, change: .noExchange)
        assertClose(cached.latencySeconds, 4 * 2 * 10e-6, rtol: 1e-12)
        assertClose(cached.bandwidthSeconds, 1.5 * 400_000 * 1e-9, rtol: 1e-12)
        let overlapped = model.predict(ranks: 4, change: .overlap)
        // The dense all-reduce (2 steps, 1.5 × 400 kB) fits in the row optimizer's and metrics' 1 ms at 4 ranks.
        assertClose(overlapped.hiddenSeconds, 2 * 10e-6 + 1.5 * 400_000 * 1e-9, rtol: 1e-12)

        // A bigger batch: the sliced compute and the exchange bytes grow with it, the all-reduce does not.
        let big = model.predict(ranks: 4, batch: 5000)
        assertClose(big.computeSeconds, 0.001 + 0.050, rtol: 1e-12)
        assertClose(big.bandwidthSeconds, 1.5 * 400_000 * 1e-9 + 0.75 * 500_000 * 2e-9, rtol: 1e-12)

        // All ranks on a 2-core machine: 4 ranks take twice the compute.
        let shared = ScalingModel(workload: workload(), link: link, sharedCores: 2) { _ in 1e11 }
        assertClose(shared.predict(ranks: 4).computeSeconds, 2 * 0.006, rtol: 1e-12)
    }

    /// Slow links keep one rank best; free links let the largest P win;
    /// the slice's sgemm rate is the one measured on its row count.
    func testWhereThroughputPeaks() {
        let slow = ScalingModel(workload: workload(), link: LinkCost(name: "slow", alpha: 1e-2, gigabits: 0.01, efficiency: 1)) { _ in 1e11 }
        XCTAssertEqual(slow.bestRanks(from: [1, 2, 4, 8]), 1)
        XCTAssertEqual(slow.collectivesDominate(from: [1, 2, 4, 8]), 2)
        let free = ScalingModel(workload: workload(), link: LinkCost(name: "free", alpha: 0, gigabits: 1e9, efficiency: 1)) { _ in 1e11 }
        XCTAssertEqual(free.bestRanks(from: [1, 2, 4, 8]), 8)
        XCTAssertNil(free.collectivesDominate(from: [1, 2, 4, 8]))

        var w = workload()
        w.sgemmFlop = 1e9
        // sgemm half as fast on 125 rows as on 250: the 4-rank slice's sgemm takes as long as the 2-rank one's.
        let model = ScalingModel(workload: w, link: LinkCost(name: "free", alpha: 0, gigabits: 1e9, efficiency: 1)) { $0 >= 250 ? 1e11 : 5e10 }
        let sgemm2 = 1e9 / 2 / 1e11
        assertClose(model.predict(ranks: 4).computeSeconds, 0.001 + (0.010 - sgemm2) / 2 + sgemm2, rtol: 1e-12)
    }

    /// bench-comm measures a link; plan reads it and a profiled run, and sets the measured run beside the model.
    func testBenchCommAndPlanEndToEnd() throws {
        let dir = try TestPaths.temporaryDirectory(self)
        let run = dir.appendingPathComponent("run").path
        let trained = try MPIRun.runEsapn(np: 2, ["train", "--data", try Self.ml100k.stream(), "--model", "fixed",
                                                  "--limit", "20000", "--quiet", "--profile", "--output", run])
        XCTAssertEqual(trained.status, 0, trained.report)
        let calibration = dir.appendingPathComponent("link.json").path
        let bench = try MPIRun.runEsapn(np: 2, ["bench-comm", "--max-bytes", "8192", "--seconds-per-size", "0.05",
                                                "--output", calibration, "--name", "shared memory"])
        XCTAssertEqual(bench.status, 0, bench.report)
        XCTAssertTrue(bench.stdout.contains("fit: all-reduce α"), bench.report)
        let link = try JSONDecoder().decode(CommCalibration.self, from: Data(contentsOf: URL(fileURLWithPath: calibration)))
        XCTAssertEqual(link.ranks, 2)
        XCTAssertEqual(link.points.filter { $0.kind == .allToAllV }.map(\.bytes), [8, 32, 128, 512, 2048, 8192])
        XCTAssertTrue(link.points.allSatisfy { $0.seconds > 0 && $0.seconds < 0.1 }, "\(link.points)")

        let plan = try runEsapn(["plan", "--run", run, "--calibration", calibration, "--ranks", "1,2,4", "--compare", run])
        XCTAssertEqual(plan.status, 0, plan.report)
        for expected in ["plan: fixed from", "shared memory: all-reduce α", "throughput peaks at P =",
                         "with one-call-per-step: peaks at P =", "measured \(run): 2 ranks"] {
            XCTAssertTrue(plan.stdout.contains(expected), "plan should print '\(expected)':\n\(plan.stdout)")
        }
        // The model, given the very link the run used, lands near the run it was made from.
        let line = try XCTUnwrap(plan.stdout.split(separator: "\n").first { $0.contains("measured") })
        let percent = try XCTUnwrap(Double(line.split(separator: "(").last!.dropLast(2)))
        XCTAssertLessThan(abs(percent), 25, "model against the run it was made from: \(line)")

        let presets = try runEsapn(["plan", "--run", run, "--network", "25GbE", "--batch", "500,5000"])
        XCTAssertEqual(presets.status, 0, presets.report)
        XCTAssertTrue(presets.stdout.contains("25GbE: all-reduce α 15.0 µs") && presets.stdout.contains("batch 5000"), presets.stdout)
    }

    /// What a user gets wrong is named with the fix.
    func testPlanAndBenchCommRefuseBadInput() throws {
        let dir = try TestPaths.temporaryDirectory(self)
        let run = dir.appendingPathComponent("unprofiled").path
        let trained = try runEsapn(["train", "--data", try Self.ml100k.stream(), "--model", "fixed", "--limit", "2000",
                                    "--quiet", "--output", run])
        XCTAssertEqual(trained.status, 0, trained.report)
        let noProfile = try runEsapn(["plan", "--run", run])
        XCTAssertNotEqual(noProfile.status, 0)
        XCTAssertTrue(noProfile.stderr.contains("has no profile") && noProfile.stderr.contains("--profile"), noProfile.report)

        let unknown = try runEsapn(["plan", "--run", run, "--network", "100GbE"])
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.stderr.contains("1GbE, 10GbE, 25GbE, IB-HDR"), unknown.report)

        let missing = try runEsapn(["plan", "--run", dir.appendingPathComponent("nowhere").path])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("nowhere"), missing.report)

        let badRanks = try runEsapn(["plan", "--run", run, "--ranks", "1,0"])
        XCTAssertNotEqual(badRanks.status, 0)
        XCTAssertTrue(badRanks.stderr.contains("--ranks '1,0'"), badRanks.report)

        let badCalibration = dir.appendingPathComponent("bad.json")
        try Data("{}".utf8).write(to: badCalibration)
        let notCalibration = try runEsapn(["plan", "--run", run, "--calibration", badCalibration.path])
        XCTAssertNotEqual(notCalibration.status, 0)
        XCTAssertTrue(notCalibration.stderr.contains("is not a bench-comm file"), notCalibration.report)

        let alone = try runEsapn(["bench-comm"])
        XCTAssertEqual(alone.status, 2, alone.report)
        XCTAssertTrue(alone.stderr.contains("run it under mpirun"), alone.report)
    }
}
