// scripts/plot.py on fake run folders: every figure is a PNG, figures without
// data are skipped with a note, bad input is a clear error; and on run folders
// `esapn train --sizes` wrote: the widths come from the runs. Needs matplotlib
// (`pip install -r scripts/requirements.txt`); without it these tests fail.
import Foundation
import TestSupport
import Training
import XCTest

final class PlotScriptTests: XCTestCase {
    static let script = TestPaths.packageRoot.appendingPathComponent("scripts/plot.py")
    static let pngMagic: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    private func python(_ arguments: [String]) throws -> ProcessResult {
        try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["python3"] + arguments,
                       environment: ["MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"])
    }

    /// Fails (never skips) when matplotlib is missing, saying how to install it.
    private func requireMatplotlib(file: StaticString = #filePath, line: UInt = #line) throws {
        let probe = try python(["-c", "import matplotlib"])
        if probe.status != 0 {
            XCTFail("matplotlib is missing for python3: pip install -r scripts/requirements.txt (\(probe.stderr))",
                    file: file, line: line)
            throw XCTSkip("unreachable: failed above")
        }
    }

    private func plot(_ runs: [URL], _ output: URL) throws -> ProcessResult {
        try python([Self.script.path] + runs.map(\.path) + ["--output", output.path])
    }

    private func assertPNG(_ url: URL, file: StaticString = #filePath, line: UInt = #line) {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            XCTFail("\(url.lastPathComponent) was not written", file: file, line: line)
            return
        }
        XCTAssertEqual(Array(data.prefix(8)), Self.pngMagic, "\(url.lastPathComponent) is not a PNG", file: file, line: line)
        XCTAssertGreaterThan(data.count, 10_000, "\(url.lastPathComponent) is suspiciously small", file: file, line: line)
    }

    /// --frontier: accuracy against MiB per shard, and memory over the stream with and without a budget.
    func testDrawsTheFrontierAndTheMemoryOverTheStream() throws {
        try requireMatplotlib()
        let root = try TestPaths.temporaryDirectory(self)
        var runs: [URL] = []
        for (name, model, width, budget, accuracy) in [("fixed-16", "fixed", 16, nil, 0.55), ("fixed-128", "fixed", 128, nil, 0.59),
                                                      ("esapn", "esapn", 128, nil, 0.63), ("esapn-b", "esapn", 128, "0.3", 0.62)] as [(String, String, Int, String?, Double)] {
            for seed: UInt64 in [0, 1] {
                var r = FakeRuns.results(model: model, task: "binary", seed: seed, accuracy: accuracy + 0.002 * Double(seed))
                r.options["sizes"] = model == "fixed" ? "\(width)" : "2,4,8,16,64,128"
                if let budget { r.options["shard_budget_mib"] = budget }
                let dir = root.appendingPathComponent("runs/\(name)-s\(seed)")
                try FakeRuns.write(r, to: dir)
                runs.append(dir)
            }
        }
        let output = root.appendingPathComponent("figures")
        let result = try python([Self.script.path] + runs.map(\.path) + ["--output", output.path, "--frontier"])
        XCTAssertEqual(result.status, 0, result.report)
        assertPNG(output.appendingPathComponent("frontier.png"))
        assertPNG(output.appendingPathComponent("memory_over_stream.png"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: output.path).sorted(),
                       ["frontier.png", "memory_over_stream.png"], "only the frontier's figures")
    }

    func testDrawsEveryFigureForThePaperRuns() throws {
        try requireMatplotlib()
        let root = try TestPaths.temporaryDirectory(self)
        var runs = try FakeRuns.writePaperRuns(in: root.appendingPathComponent("runs"))
        let seed2 = root.appendingPathComponent("runs/esapn-binary-seed2")
        try FakeRuns.write(FakeRuns.results(model: "esapn", task: "binary", seed: 2, accuracy: 0.731), to: seed2)
        runs.append(seed2)
        let output = root.appendingPathComponent("figures")
        let result = try plot(runs, output)
        XCTAssertEqual(result.status, 0, result.stderr)
        let expected = ["batches_binary.png", "batches_multiclass.png", "figure4_binary.png", "figure4_multiclass.png",
                        "figure5.png", "memory_per_shard.png"]
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: output.path).sorted(), expected,
                       "exactly the figures, no temporary files")
        for name in expected { assertPNG(output.appendingPathComponent(name)) }
        XCTAssertFalse(result.stdout.contains("skipped"), result.stdout)
    }

    func testSkipsFigure5WithoutAnAdaptiveRun() throws {
        try requireMatplotlib()
        let root = try TestPaths.temporaryDirectory(self)
        let fixed = root.appendingPathComponent("fixed")
        try FakeRuns.write(FakeRuns.results(model: "fixed", task: "multiclass", ranks: 3), to: fixed)
        let output = root.appendingPathComponent("figures")
        let result = try plot([fixed], output)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("figure5.png skipped"), result.stdout)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: output.path).sorted(),
                       ["batches_multiclass.png", "figure4_multiclass.png", "memory_per_shard.png"])
        assertPNG(output.appendingPathComponent("memory_per_shard.png"))
    }

    func testMissingResultsJSONOrCSVIsAClearError() throws {
        try requireMatplotlib()
        let root = try TestPaths.temporaryDirectory(self)
        let output = root.appendingPathComponent("figures")

        let empty = root.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        var result = try plot([empty], output)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains(empty.appendingPathComponent("results.json").path + ": missing"), result.stderr)

        let noCSV = root.appendingPathComponent("no-csv")
        try FakeRuns.write(FakeRuns.results(model: "esapn", task: "binary"), to: noCSV)
        try FileManager.default.removeItem(at: noCSV.appendingPathComponent(ResultFiles.byFrequency))
        result = try plot([noCSV], output)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains(noCSV.appendingPathComponent("by_frequency.csv").path + ": missing"),
                      result.stderr)

        let badCSV = root.appendingPathComponent("bad-csv")
        try FakeRuns.write(FakeRuns.results(model: "esapn", task: "binary"), to: badCSV)
        try "batch,records,loss,accuracy,sizes_digest\n0,500,0.2,0.6,0000abcd\n1,500,oops,0.6,0000abcd\n"
            .write(to: badCSV.appendingPathComponent(ResultFiles.batches), atomically: true, encoding: .utf8)
        result = try plot([badCSV], output)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("batches.csv: line 3: loss is 'oops'; expected a number"), result.stderr)

        try "batch,records,loss,accuracy,sizes_digest\n0,500,0.2,0.6,xyz\n"
            .write(to: badCSV.appendingPathComponent(ResultFiles.batches), atomically: true, encoding: .utf8)
        result = try plot([badCSV], output)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("batches.csv: line 2: sizes_digest is 'xyz'; expected eight hex digits"),
                      result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output.path), "nothing written on bad input")
    }

    /// A run folder written before batches.csv had sizes_digest still plots.
    func testRunFoldersWithoutTheSizesDigestStillPlot() throws {
        try requireMatplotlib()
        let root = try TestPaths.temporaryDirectory(self)
        let old = root.appendingPathComponent("old")
        try FakeRuns.write(FakeRuns.results(model: "fixed", task: "binary"), to: old)
        try "batch,records,loss,accuracy\n0,500,0.25,0.6\n1,500,0.24,0.62\n"
            .write(to: old.appendingPathComponent(ResultFiles.batches), atomically: true, encoding: .utf8)
        let output = root.appendingPathComponent("figures")
        let result = try plot([old], output)
        XCTAssertEqual(result.status, 0, result.stderr)
        assertPNG(output.appendingPathComponent("batches_binary.png"))
    }

    /// Figure 4's bins: log2 and fixed widths cover 1…100 without gaps or overlaps,
    /// a bin's value is the records-weighted mean of its frequencies, its band the
    /// seed range (or a 95% interval for one run), and a bad --frequency-bins is refused.
    func testFigure4Binning() throws {
        let check = """
        import math, sys
        sys.path.insert(0, sys.argv[1])
        import plot
        assert plot.frequency_bins("log2") == [(1, 1), (2, 2), (3, 4), (5, 8), (9, 16), (17, 32), (33, 64), (65, 100)], plot.frequency_bins("log2")
        assert plot.frequency_bins("30") == [(1, 30), (31, 60), (61, 90), (91, 100)]
        for spec in ("log2", "1", "7", "100"):
            covered = [f for a, b in plot.frequency_bins(spec) for f in range(a, b + 1)]
            assert covered == list(range(1, 101)), spec
        class Run: pass
        def run(rows):
            r = Run(); r.by_frequency = rows; return r
        # side, frequency, records, accuracy, loss, mean_size
        a = run([("users", 3, 10, 0.5, 0.2, 8.0), ("users", 4, 30, 0.9, 0.1, 16.0), ("items", 3, 99, 0.0, 1.0, 2.0),
                 ("users", 5, 0, math.nan, math.nan, math.nan)])
        b = run([("users", 3, 20, 0.2, 0.3, 8.0)])
        bins = plot.frequency_bins("log2")
        values, counts = plot.binned_curve([a], "users", "accuracy", bins)
        assert counts == [0, 0, 40, 0, 0, 0, 0, 0], counts
        assert abs(values[2] - (10 * 0.5 + 30 * 0.9) / 40) < 1e-12 and math.isnan(values[0]) and math.isnan(values[3])
        values, counts = plot.binned_curve([a, b], "users", "accuracy", bins)
        assert counts[2] == 60 and abs(values[2] - (5 + 27 + 4) / 60) < 1e-12
        low, high, kind = plot.binned_band([a, b], "users", "accuracy", bins)
        assert kind == "range over seeds" and abs(low[2] - 0.2) < 1e-12 and abs(high[2] - 0.8) < 1e-12, (low, high)
        low, high, kind = plot.binned_band([a], "users", "accuracy", bins)
        half = 1.96 * math.sqrt(0.8 * 0.2 / 40)
        assert kind == "95% interval" and abs(low[2] - (0.8 - half)) < 1e-12 and abs(high[2] - (0.8 + half)) < 1e-12
        assert plot.binned_band([a], "users", "loss", bins) is None
        print("binning ok")
        """
        let result = try python(["-c", check, Self.script.deletingLastPathComponent().path])
        XCTAssertEqual(result.status, 0, result.report)
        XCTAssertTrue(result.stdout.contains("binning ok"), result.report)

        try requireMatplotlib()
        let root = try TestPaths.temporaryDirectory(self)
        let runs = try FakeRuns.writePaperRuns(in: root.appendingPathComponent("runs"))
        for bad in ["0", "wide"] {
            let refused = try python([Self.script.path] + runs.map(\.path) + ["--output", root.appendingPathComponent("f").path,
                                                                              "--frequency-bins", bad])
            XCTAssertEqual(refused.status, 1, refused.report)
            XCTAssertTrue(refused.stderr.contains("--frequency-bins takes log2 or a positive bin width, got '\(bad)'"), refused.report)
        }
        let output = root.appendingPathComponent("width10")
        let drawn = try python([Self.script.path] + runs.map(\.path) + ["--output", output.path, "--frequency-bins", "10"])
        XCTAssertEqual(drawn.status, 0, drawn.report)
        assertPNG(output.appendingPathComponent("figure4_binary.png"))
    }

    /// The JSON line `--print-widths` prints last: each run's widths and what the figures drew from them.
    private func printedWidths(_ result: ProcessResult, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let last = try XCTUnwrap(result.stdout.split(separator: "\n").last, result.report, file: file, line: line)
        let json = try XCTUnwrap(String(last).data(using: .utf8), file: file, line: line)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: json) as? [String: Any], result.report, file: file, line: line)
    }

    /// Runs trained with `--sizes 2,8,32`: the figures take the widths from the
    /// runs (FIXED-32, soft 42 floats per ID, Figure 5 up to 32), never the
    /// default 2…128; beside a run of the default sizes, the union of the widths
    /// and FIXED's and soft selection's widths per run.
    func testPlotsRunsTrainedWithOtherSizes() throws {
        try requireMatplotlib()
        try MPIRun.esapn()
        let root = try TestPaths.temporaryDirectory(self)
        let stream = root.appendingPathComponent("synthetic.stream").path
        let synth = try runEsapn(["synth", "--preset", "small", "--records", "5000", "--seed", "1", "--output", stream])
        XCTAssertEqual(synth.status, 0, synth.report)
        func train(_ name: String, _ arguments: [String]) throws -> URL {
            let output = root.appendingPathComponent(name)
            let result = try runEsapn(["train", "--data", stream, "--output", output.path, "--quiet", "--test-last", "1000"]
                                      + arguments, environment: ["OPENBLAS_NUM_THREADS": "1"])
            XCTAssertEqual(result.status, 0, result.report)
            return output
        }
        let small = try ["esapn", "fixed", "darts"].map { try train("\($0)-2-8-32", ["--model", $0, "--sizes", "2,8,32"]) }

        let output = root.appendingPathComponent("figures")
        let result = try python([Self.script.path] + small.map(\.path) + ["--output", output.path, "--print-widths"])
        XCTAssertEqual(result.status, 0, result.report)
        for name in ["figure5.png", "memory_per_shard.png"] { assertPNG(output.appendingPathComponent(name)) }
        var summary = try printedWidths(result)
        XCTAssertEqual(summary["widths"] as? [Int], [2, 8, 32], result.report)
        let runs = try XCTUnwrap(summary["runs"] as? [[String: Any]], result.report)
        XCTAssertEqual(runs.map { $0["fixed_width"] as? Int }, [32, 32, 32], result.report)
        XCTAssertEqual(runs.map { $0["soft_width"] as? Int }, [42, 42, 42], result.report)
        let figure5 = try XCTUnwrap(summary["figure5"] as? [String: Any], result.report)
        XCTAssertEqual(figure5["yticks"] as? [Int], [0, 4, 8, 16, 24, 32], "Figure 5's axis ends at 32, not 128")
        var memory = try XCTUnwrap(summary["memory_per_shard"] as? [String: Any], result.report)
        var legend = try XCTUnwrap(memory["legend"] as? [String], result.report)
        XCTAssertTrue(legend.contains("FIXED-32 would hold"), "\(legend)")
        XCTAssertTrue(legend.contains("soft, 42 floats/ID, would hold"), "\(legend)")
        XCTAssertFalse(legend.contains(where: { $0.contains("128") || $0.contains("222") }), "\(legend)")

        // Beside a run of the default sizes: the union of the widths; FIXED and soft differ, so per run.
        let wide = try train("esapn-default", ["--model", "esapn"])
        let mixedOutput = root.appendingPathComponent("mixed")
        let mixed = try python([Self.script.path] + (small + [wide]).map(\.path) + ["--output", mixedOutput.path, "--print-widths"])
        XCTAssertEqual(mixed.status, 0, mixed.report)
        assertPNG(mixedOutput.appendingPathComponent("memory_per_shard.png"))
        summary = try printedWidths(mixed)
        XCTAssertEqual(summary["widths"] as? [Int], [2, 4, 8, 16, 32, 64, 128], mixed.report)
        XCTAssertEqual((summary["figure5"] as? [String: Any])?["yticks"] as? [Int], [0, 16, 32, 64, 96, 128], mixed.report)
        memory = try XCTUnwrap(summary["memory_per_shard"] as? [String: Any], mixed.report)
        legend = try XCTUnwrap(memory["legend"] as? [String], mixed.report)
        XCTAssertTrue(legend.contains("FIXED (largest width) would hold"), "\(legend)")
        let groups = try XCTUnwrap(memory["groups"] as? [String], mixed.report)
        XCTAssertEqual(groups.filter { $0.hasSuffix("FIXED-32, soft 42") }.count, 3, "\(groups)")
        XCTAssertEqual(groups.filter { $0.hasSuffix("FIXED-128, soft 222") }.count, 1, "\(groups)")
    }
}
