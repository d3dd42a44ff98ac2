// Accuracy against memory: the report's frontier (configurations grouped over
// seeds, the undominated ones marked) and the memory plan at N IDs.
import Analysis
import Training
import XCTest

final class FrontierTests: XCTestCase {
    func run(_ model: String, width: Int, seed: UInt64, accuracy: Double, peak: Int, budget: String? = nil) -> RunResults {
        var r = FakeRuns.results(model: model, task: "binary", seed: seed, ranks: 2, accuracy: accuracy)
        r.options["sizes"] = model == "fixed" ? "\(width)" : "2,4,8,16,64,128"
        if let budget { r.options["shard_budget_mib"] = budget }
        for i in r.memory.per_rank.indices { r.memory.per_rank[i].peak_resident_bytes = i == 0 ? peak : peak / 2 }
        return r
    }

    func testFrontierGroupsSeedsAndMarksTheUndominated() {
        let MiB = 1 << 20
        let runs = [
            run("fixed", width: 16, seed: 0, accuracy: 0.54, peak: MiB / 4), run("fixed", width: 16, seed: 1, accuracy: 0.56, peak: MiB / 4),
            run("fixed", width: 128, seed: 0, accuracy: 0.59, peak: 2 * MiB),
            run("esapn", width: 128, seed: 0, accuracy: 0.62, peak: 3 * MiB / 10, budget: "0.3"),
            run("esapn", width: 128, seed: 0, accuracy: 0.635, peak: 6 * MiB / 5),
            run("darts", width: 128, seed: 0, accuracy: 0.60, peak: 4 * MiB),
        ]
        let points = ReportRenderer.frontierPoints(runs)
        XCTAssertEqual(points.map(\.label), ["FIXED-16", "ESAPN @ 0.3 MiB", "ESAPN", "FIXED-128", "DARTS"], "ordered by memory")
        let fixed16 = points[0]
        XCTAssertEqual(fixed16.seeds, 2)
        XCTAssertEqual(fixed16.accuracy, 0.55, accuracy: 1e-12)
        XCTAssertEqual(fixed16.accuracyStd, (2 * 0.01 * 0.01).squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(fixed16.mibPerShard, 0.25, accuracy: 1e-12, "the largest rank's peak")
        XCTAssertEqual(points.map(\.onFrontier), [true, true, true, false, false], "FIXED-128 and DARTS are beaten on both")
        let text = ReportRenderer.frontier(runs: runs.map { LoadedRun(path: "x", results: $0) })
        XCTAssertTrue(text.contains("| ESAPN @ 0.3 MiB | 1 | 62.00% | 0.300 | ★ |"), text)
        XCTAssertTrue(text.contains("| FIXED-128 | 1 | 59.00% | 2.000 |  |"), text)
    }

    func testMemoryPlanCarriesTheRunsBytesPerIDToNIDs() throws {
        let r = FakeRuns.results(model: "esapn", task: "binary", ranks: 2)
        let plan = try XCTUnwrap(MemoryPlan(results: r))
        let live = r.memory.per_rank.reduce(0) { $0 + $1.rows_by_size.values.reduce(0, +) }
        let resident = r.memory.per_rank.reduce(0) { $0 + $1.resident_bytes }
        XCTAssertEqual(plan.bytesPerLiveID + MemoryPlan.indexBytesPerID, Double(resident) / Double(live), accuracy: 1e-9)
        let perID = plan.bytesPerLiveID + MemoryPlan.indexBytesPerID
        XCTAssertEqual(plan.perShard(ids: 1_000_000_000, shards: 64), 1e9 / 64 * perID, accuracy: 1)
        let budget = 2 << 30
        XCTAssertEqual(plan.shardsNeeded(ids: 1_000_000_000, budget: budget), Int((1e9 * perID / Double(budget)).rounded(.up)))
        XCTAssertNil(plan.shardsNeeded(ids: 10, budget: 1), "a budget below one ID holds none")
        let text = plan.table(ids: [100_000_000, 1_000_000_000], ranks: [8, 64], budget: budget, model: "esapn")
        XCTAssertTrue(text.contains("100M"), text)
        XCTAssertTrue(text.contains("1B"), text)
        XCTAssertTrue(text.contains("shards of 2.00 GiB"), text)
    }
}
