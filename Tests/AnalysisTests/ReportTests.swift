// `esapn report`: fake run folders (results.json written by JSONEncoder of
// RunResults, plus the CSVs) with the paper's Table 1 and Table 2 numbers,
// rendered by the library and by the CLI.
import Analysis
import Foundation
import TestSupport
import Training
import XCTest

// MARK: - Fake run folders (shared with PlotScriptTests)

enum FakeRuns {
    static let models = ["fixed", "darts", "autoemb", "esapn"]
    static let tasks = ["binary", "multiclass"]

    /// The paper's Table 1 on ml-20m: (accuracy, loss) per task and model.
    static let paperTable1: [String: [String: (Double, Double)]] = [
        "binary": ["fixed": (0.7213, 0.1845), "darts": (0.7218, 0.1836), "autoemb": (0.7227, 0.1828),
                   "esapn": (0.7298, 0.1785)],
        "multiclass": ["fixed": (0.4945, 1.1517), "darts": (0.4985, 1.1423), "autoemb": (0.4994, 1.1399),
                       "esapn": (0.5110, 1.1126)],
    ]

    /// The paper's Table 2 rows for ml-20m (users, then movies).
    static let paperUsers = ["2": 1_041, "4": 10_854, "8": 18_146, "16": 30_836, "64": 22_830, "128": 54_786]
    static let paperItems = ["2": 17_032, "4": 216, "8": 380, "16": 623, "64": 2_237, "128": 6_790]

    static func results(model: String, task: String, seed: UInt64 = 1, ranks: Int = 2,
                        stream: String = "data/ml-20m.stream", records: Int = 20_000_263, testRecords: Int = 5_000_000,
                        accuracy: Double? = nil, loss: Double? = nil) -> RunResults {
        let paper = paperTable1[task]?[model] ?? (0.6, 0.2)
        let users: [String: Int], items: [String: Int]
        if ReportModels.isAdaptive(model) {
            (users, items) = (paperUsers, paperItems)
        } else {
            (users, items) = (["128": paperUsers.values.reduce(0, +)], ["128": paperItems.values.reduce(0, +)])
        }
        let storedWidth = model == "darts" || model == "autoemb" ? 222 : nil
        // Split every width's rows over the ranks as ownership x mod P would, roughly.
        var perRank: [RankMemory] = []
        for r in 0..<ranks {
            var rows: [String: Int] = [:]
            for (width, count) in users.merging(items, uniquingKeysWith: +) {
                rows[width] = count / ranks + (r < count % ranks ? 1 : 0)
            }
            let ids = rows.values.reduce(0, +)
            let floats = storedWidth.map { ids * $0 } ?? rows.reduce(0) { $0 + Int($1.key)! * $1.value }
            perRank.append(RankMemory(rank: r, rows_by_size: rows, value_floats: floats,
                                      resident_bytes: floats * 12 + ids * 16, exchange_bytes: 256 * 1024,
                                      fixed_resident_bytes: ids * 128 * 12, soft_resident_bytes: ids * 222 * 12))
        }
        let totalDims = users.merging(items, uniquingKeysWith: +).reduce(0) { $0 + Int($1.key)! * $1.value }
        let ids = users.values.reduce(0, +) + items.values.reduce(0, +)
        return RunResults(
            model: model, task: task, ranks: ranks, seed: seed, records: records, stream: stream, batch_size: 500,
            test: Metric(records: testRecords, accuracy: accuracy ?? paper.0, loss: loss ?? paper.1),
            overall: Metric(records: records, accuracy: (accuracy ?? paper.0) - 0.02, loss: (loss ?? paper.1) + 0.01),
            throughput: Throughput(records_per_second: 41_234.5, wall_seconds: 485.1),
            memory: MemoryResults(total_dims: totalDims, fixed_dims: ids * 128,
                                  ratio: Double(totalDims) / Double(ids * 128),
                                  resident_bytes: perRank.reduce(0) { $0 + $1.resident_bytes }, per_rank: perRank),
            sizes: SizeCounts(users: users, items: items),
            options: ["test-last": "\(testRecords)", "order": "time"])
    }

    /// Writes results.json, batches.csv and by_frequency.csv into `directory`.
    static func write(_ results: RunResults, to directory: URL, batches: Int = 60) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(results).write(to: directory.appendingPathComponent(ResultFiles.results))

        let boost = Double(models.firstIndex(of: results.model) ?? 0) * 0.01 + Double(results.seed % 3) * 0.002
        let multiclass = results.task == "multiclass"
        var csv = ResultFiles.batchesHeader + "\n"
        for b in 0..<batches {
            let progress = Double(b) / Double(max(batches - 1, 1))
            let loss = (multiclass ? 1.6 - 0.45 * progress : 0.25 - 0.07 * progress) - boost / 2
                + 0.01 * sin(Double(b) * 1.7)
            let accuracy = (multiclass ? 0.35 + 0.15 * progress : 0.6 + 0.12 * progress) + boost
            csv += "\(b),500,\(loss),\(accuracy),0000abcd,\(40_000 + 10 * b)\n"
        }
        try csv.write(to: directory.appendingPathComponent(ResultFiles.batches), atomically: true, encoding: .utf8)

        csv = ResultFiles.byFrequencyHeader + "\n"
        for side in ["users", "items"] {
            for f in 1...100 {
                let rise = 1 - 1 / Double(f).squareRoot()
                let accuracy = (multiclass ? 0.38 + 0.12 * rise : 0.62 + 0.1 * rise) + boost
                let loss = (multiclass ? 1.5 - 0.35 * rise : 0.24 - 0.06 * rise) - boost / 2
                let size = ReportModels.isAdaptive(results.model)
                    ? min(128, 2 * pow(Double(f), side == "users" ? 1.05 : 0.9)) : 128
                csv += "\(side),\(f),\(max(1, 5000 / f)),\(accuracy),\(loss),\(size)\n"
            }
        }
        try csv.write(to: directory.appendingPathComponent(ResultFiles.byFrequency), atomically: true, encoding: .utf8)
    }

    /// The eight runs of the paper's Table 1 (4 models × 2 tasks), one folder each.
    static func writePaperRuns(in root: URL, ranks: Int = 2) throws -> [URL] {
        var dirs: [URL] = []
        for task in tasks {
            for model in models {
                let dir = root.appendingPathComponent("\(model)-\(task)")
                try write(results(model: model, task: task, ranks: ranks), to: dir)
                dirs.append(dir)
            }
        }
        return dirs
    }
}

// MARK: - Reading tables back

/// The cells of the Markdown table following the first line that starts with `caption`.
func tableCells(_ markdown: String, after caption: String, file: StaticString = #filePath, line: UInt = #line) -> [[String]] {
    let lines = markdown.components(separatedBy: "\n")
    guard let start = lines.firstIndex(where: { $0.hasPrefix(caption) }) else {
        XCTFail("no line starting with '\(caption)' in:\n\(markdown)", file: file, line: line)
        return []
    }
    var rows: [[String]] = []
    var inTable = false
    for l in lines[(start + 1)...] {
        if l.hasPrefix("|") {
            inTable = true
            var cells = l.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            cells.removeFirst(); cells.removeLast()
            if !cells.allSatisfy({ $0.allSatisfy { $0 == "-" || $0 == ":" } && !$0.isEmpty }) { rows.append(cells) }
        } else if inTable {
            break
        }
    }
    return rows
}

func row(_ rows: [[String]], _ first: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
    guard let r = rows.first(where: { $0.first == first }) else {
        XCTFail("no row '\(first)' in \(rows)", file: file, line: line)
        return []
    }
    return r
}

// MARK: - Tests

final class ReportTests: XCTestCase {
    func testTable1OfThePaperRuns() throws {
        let root = try TestPaths.temporaryDirectory(self)
        let runs = try FakeRuns.writePaperRuns(in: root).map(loadRun)
        let markdown = ReportRenderer.markdown(runs: runs)

        XCTAssertTrue(markdown.contains("**Table 1.** Overall performance on ml-20m: the test part is the last "
                                        + "5,000,000 of 20,000,263 records"), markdown)
        let rows = tableCells(markdown, after: "**Table 1.**")
        XCTAssertEqual(rows.first, ["Model", "Binary accuracy (%)", "Binary MSE loss",
                                    "Multiclass accuracy (%)", "Multiclass CE loss"])
        XCTAssertEqual(rows.dropFirst().map(\.first!), ["FIXED", "DARTS", "AutoEmb", "ESAPN"], "the paper's order")
        XCTAssertEqual(row(rows, "FIXED"), ["FIXED", "72.13", "0.1845", "49.45", "1.1517"])
        XCTAssertEqual(row(rows, "AutoEmb"), ["AutoEmb", "72.27", "0.1828", "49.94", "1.1399"])
        XCTAssertEqual(row(rows, "ESAPN"), ["ESAPN", "**72.98**", "**0.1785**", "**51.10**", "**1.1126**"])
        XCTAssertEqual(row(rows, "DARTS"), ["DARTS", "72.18", "0.1836", "49.85", "1.1423"])
    }

    func testBestIsChosenPerColumnAndLowerLossWins() throws {
        let root = try TestPaths.temporaryDirectory(self)
        // DARTS has the best accuracy, FIXED the lowest loss.
        let a = FakeRuns.results(model: "fixed", task: "binary", accuracy: 0.70, loss: 0.15)
        let b = FakeRuns.results(model: "darts", task: "binary", accuracy: 0.75, loss: 0.19)
        try FakeRuns.write(a, to: root.appendingPathComponent("a"))
        try FakeRuns.write(b, to: root.appendingPathComponent("b"))
        let markdown = ReportRenderer.table1(runs: try ["a", "b"].map { try loadRun(root.appendingPathComponent($0)) })
        let rows = tableCells(markdown, after: "**Table 1.**")
        XCTAssertEqual(rows.first, ["Model", "Binary accuracy (%)", "Binary MSE loss"], "only the tasks present")
        XCTAssertEqual(row(rows, "FIXED"), ["FIXED", "70.00", "**0.1500**"])
        XCTAssertEqual(row(rows, "DARTS"), ["DARTS", "**75.00**", "0.1900"])
    }

    func testRepeatedSeedsAreMeanStdAndN() throws {
        let root = try TestPaths.temporaryDirectory(self)
        var dirs: [URL] = []
        for (seed, (accuracy, loss)) in [(0.7290, 0.1780), (0.7300, 0.1786), (0.7310, 0.1792)].enumerated() {
            let dir = root.appendingPathComponent("esapn-\(seed)")
            try FakeRuns.write(FakeRuns.results(model: "esapn", task: "binary", seed: UInt64(seed),
                                                accuracy: accuracy, loss: loss), to: dir)
            dirs.append(dir)
        }
        let fixed = root.appendingPathComponent("fixed")
        try FakeRuns.write(FakeRuns.results(model: "fixed", task: "binary"), to: fixed)
        let markdown = ReportRenderer.markdown(runs: try (dirs + [fixed]).map(loadRun))
        let rows = tableCells(markdown, after: "**Table 1.**")
        XCTAssertEqual(row(rows, "ESAPN"), ["ESAPN", "**73.00** ± 0.10 (n=3)", "**0.1786** ± 0.0006 (n=3)"])
        XCTAssertEqual(row(rows, "FIXED"), ["FIXED", "72.13", "0.1845"])
        XCTAssertTrue(markdown.contains("mean ± sample std (n runs)"))

        let s = Summary([1, 2, 3, 4])
        XCTAssertEqual(s.n, 4)
        assertClose(s.mean, 2.5)
        assertClose(s.std, (5.0 / 3).squareRoot(), rtol: 1e-12)
        XCTAssertEqual(Summary([7]).std, 0)
    }

    func testTable2HasThePaperCountsAndRatio() throws {
        let root = try TestPaths.temporaryDirectory(self)
        let runs = try FakeRuns.writePaperRuns(in: root).map(loadRun)
        let markdown = ReportRenderer.markdown(runs: runs)
        let rows = tableCells(markdown, after: "**Table 2.**")
        XCTAssertEqual(rows.first, ["", "2", "4", "8", "16", "64", "128", "Total Dim", "FIXED", "Ratio"])
        XCTAssertEqual(rows.count, 3, "binary preferred: one ESAPN run, a user and an item row: \(rows)")
        XCTAssertEqual(row(rows, "user (ml-20m)"),
                       ["user (ml-20m)", "1,041", "10,854", "18,146", "30,836", "22,830", "54,786",
                        "9,157,770", "17,727,104", "51.66%"])
        XCTAssertEqual(row(rows, "item (ml-20m)"),
                       ["item (ml-20m)", "17,032", "216", "380", "623", "2,237", "6,790",
                        "1,060,224", "3,491,584", "30.37%"])
        XCTAssertTrue(markdown.contains(", binary task."))
        XCTAssertTrue(markdown.contains("222 dims per ID: 1.73× FIXED"))
        XCTAssertFalse(markdown.contains("⚠"), "consistent fake runs raise no warning:\n\(markdown)")
    }

    func testTable2FallsBackToMulticlassAndSaysWhenNoAdaptiveRun() throws {
        let root = try TestPaths.temporaryDirectory(self)
        let esapn = root.appendingPathComponent("esapn"), fixed = root.appendingPathComponent("fixed")
        try FakeRuns.write(FakeRuns.results(model: "esapn", task: "multiclass"), to: esapn)
        try FakeRuns.write(FakeRuns.results(model: "fixed", task: "binary"), to: fixed)
        let both = ReportRenderer.table2(runs: try [esapn, fixed].map(loadRun))
        XCTAssertEqual(tableCells(both, after: "**Table 2.**").count, 3)
        XCTAssertFalse(both.contains(", binary task."))
        let none = ReportRenderer.table2(runs: [try loadRun(fixed)])
        XCTAssertTrue(none.contains("No adaptive run"), none)
    }

    func testMemoryPerShardInHumanUnits() throws {
        let root = try TestPaths.temporaryDirectory(self)
        var r = FakeRuns.results(model: "esapn", task: "binary", ranks: 2)
        r.memory.per_rank = [
            RankMemory(rank: 1, rows_by_size: ["2": 10, "128": 3], value_floats: 404, resident_bytes: 2_621_440,
                       exchange_bytes: 65_536, fixed_resident_bytes: 4_194_304, soft_resident_bytes: 7_274_496),
            RankMemory(rank: 0, rows_by_size: ["2": 11, "4": 1], value_floats: 26, resident_bytes: 1_572_864,
                       exchange_bytes: 65_536, fixed_resident_bytes: 4_194_304, soft_resident_bytes: 7_274_496),
        ]
        r.memory.resident_bytes = 4_194_304
        let dir = root.appendingPathComponent("run")
        try FakeRuns.write(r, to: dir)
        let markdown = ReportRenderer.memoryTables(runs: [try loadRun(dir)])
        let rows = tableCells(markdown, after: "### ESAPN, binary, seed 1, 2 ranks on ml-20m")
        XCTAssertEqual(rows.first, ["Rank", "rows 2", "rows 4", "rows 8", "rows 16", "rows 64", "rows 128",
                                    "Value floats", "Resident", "Ideal", "Resident / ideal", "Exchange",
                                    "FIXED-128 would hold", "Soft-222 would hold", "Resident / FIXED"])
        XCTAssertEqual(rows.dropFirst().map(\.first!), ["0", "1", "**total**"], "ranks in order, then the total")
        // Ideal: the chosen widths' values and Adam moments, 12 bytes a value float.
        XCTAssertEqual(row(rows, "0"), ["0", "11", "1", "0", "0", "0", "0", "26", "1.50 MiB", "312 B", "504123.08%", "64.00 KiB",
                                        "4.00 MiB", "6.94 MiB", "37.50%"])
        XCTAssertEqual(row(rows, "1"), ["1", "10", "0", "0", "0", "0", "3", "404", "2.50 MiB", "4.73 KiB", "54072.61%", "64.00 KiB",
                                        "4.00 MiB", "6.94 MiB", "62.50%"])
        XCTAssertEqual(row(rows, "**total**"), ["**total**", "**21**", "**1**", "**0**", "**0**", "**0**", "**3**",
                                                "**430**", "**4.00 MiB**", "**5.04 KiB**", "**81284.96%**",
                                                "**128.00 KiB**", "**8.00 MiB**",
                                                "**13.88 MiB**", "**50.00%**"])
        XCTAssertFalse(markdown.contains("⚠"))
        let summary = tableCells(markdown, after: "Resident = what a rank")
        XCTAssertEqual(summary.last, ["ESAPN, binary, seed 1, 2 ranks (\(dir.path))", "2", "4.00 MiB", "8.00 MiB",
                                      "13.88 MiB", "50.00%", "1.25×"])

        XCTAssertEqual(ReportFormat.bytes(0), "0 B")
        XCTAssertEqual(ReportFormat.bytes(1023), "1023 B")
        XCTAssertEqual(ReportFormat.bytes(1024), "1.00 KiB")
        XCTAssertEqual(ReportFormat.bytes(3 * 1 << 30 + 1 << 29), "3.50 GiB")
        XCTAssertEqual(ReportFormat.grouped(-1_234_567), "-1,234,567")
        XCTAssertEqual(ReportFormat.grouped(999), "999")
    }

    func testSeveralStreamsGetOneTable1Each() throws {
        let root = try TestPaths.temporaryDirectory(self)
        var dirs: [URL] = []
        for (i, stream) in ["/data/ml-20m.stream", "/data/ml-latest.stream"].enumerated() {
            for model in ["fixed", "esapn"] {
                let dir = root.appendingPathComponent("\(i)-\(model)")
                try FakeRuns.write(FakeRuns.results(model: model, task: "binary", stream: stream,
                                                    records: 27_753_444), to: dir)
                dirs.append(dir)
            }
        }
        let markdown = ReportRenderer.markdown(runs: try dirs.map(loadRun))
        XCTAssertTrue(markdown.contains("**Table 1.** Overall performance on ml-20m"))
        XCTAssertTrue(markdown.contains("**Table 1.** Overall performance on ml-latest"))
        let rows = tableCells(markdown, after: "**Table 2.**")
        XCTAssertEqual(rows.dropFirst().map(\.first!), ["user (ml-20m)", "item (ml-20m)", "user (ml-latest)", "item (ml-latest)"])
    }

    func testInconsistentTotalsAreFlagged() throws {
        let root = try TestPaths.temporaryDirectory(self)
        var r = FakeRuns.results(model: "esapn", task: "binary")
        r.memory.total_dims += 1
        let dir = root.appendingPathComponent("odd")
        try FakeRuns.write(r, to: dir)
        XCTAssertTrue(ReportRenderer.table2(runs: [try loadRun(dir)]).contains("but memory.total_dims is 10,217,995"))
    }

    // MARK: - Errors

    func testMissingResultsJSONIsAClearError() throws {
        let root = try TestPaths.temporaryDirectory(self)
        let empty = root.appendingPathComponent("not-a-run")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        XCTAssertThrowsError(try loadRun(empty)) { error in
            XCTAssertEqual(error as? ReportError, .missingResults(directory: empty.path))
            let text = "\(error)"
            XCTAssertTrue(text.contains(empty.path) && text.contains("no results.json"), text)
        }
        XCTAssertThrowsError(try loadRun(root.appendingPathComponent("nowhere"))) { error in
            XCTAssertTrue("\(error)".contains("nowhere: no such file or directory"), "\(error)")
        }
        XCTAssertThrowsError(try loadRuns([])) { XCTAssertEqual($0 as? ReportError, .noRuns) }
    }

    func testMalformedResultsNameTheKeyOrTheLine() throws {
        let root = try TestPaths.temporaryDirectory(self)
        let good = try JSONSerialization.jsonObject(
            with: try JSONEncoder().encode(FakeRuns.results(model: "esapn", task: "binary"))) as! [String: Any]
        func attempt(_ name: String, _ data: Data) -> String {
            let dir = root.appendingPathComponent(name)
            try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try! data.write(to: dir.appendingPathComponent("results.json"))
            do {
                _ = try loadRun(dir)
                XCTFail("\(name) loaded")
                return ""
            } catch {
                let text = "\(error)"
                XCTAssertTrue(text.hasPrefix(dir.appendingPathComponent("results.json").path + ": malformed results: "), text)
                return text
            }
        }
        var missing = good
        var test = good["test"] as! [String: Any]
        test.removeValue(forKey: "accuracy")
        missing["test"] = test
        XCTAssertTrue(attempt("missing", try JSONSerialization.data(withJSONObject: missing))
            .hasSuffix("missing key 'test.accuracy'"))

        var wrongType = good
        var memory = good["memory"] as! [String: Any]
        var ranks = memory["per_rank"] as! [[String: Any]]
        ranks[1]["resident_bytes"] = "lots"
        memory["per_rank"] = ranks
        wrongType["memory"] = memory
        XCTAssertTrue(attempt("type", try JSONSerialization.data(withJSONObject: wrongType))
            .hasSuffix("'memory.per_rank[1].resident_bytes' is not an integer"))

        var badWidth = good
        badWidth["sizes"] = ["users": ["two": 3], "items": [:]]
        XCTAssertTrue(attempt("width", try JSONSerialization.data(withJSONObject: badWidth))
            .contains("'sizes.users' has the key 'two'"))

        XCTAssertTrue(attempt("syntax", Data("{\"model\": \"esapn\",\n \"task\": }".utf8))
            .hasSuffix("not valid JSON (line 2, column 10: Invalid value)"))
        XCTAssertTrue(attempt("empty", Data()).hasSuffix("not valid JSON (the file is empty)"))
    }

    // MARK: - The command line

    /// The runs table fits a 120-column terminal however long the folders and
    /// options are; they are listed below it, each option set once.
    func testRunsTableFitsA120ColumnTerminal() throws {
        let root = try TestPaths.temporaryDirectory(self)
            .appendingPathComponent("a-rather-long-folder-name-for-experiments/ml-latest-full-stand-in/seed-sweep")
        let dirs = try FakeRuns.writePaperRuns(in: root)
        let markdown = ReportRenderer.markdown(runs: try dirs.map(loadRun))
        let runs = try XCTUnwrap(markdown.components(separatedBy: "## Runs").last)
        let tableLines = runs.split(separator: "\n").filter { $0.hasPrefix("|") }
        XCTAssertEqual(tableLines.count, dirs.count + 2, "header, rule and one row per run:\n\(runs)")
        for line in tableLines {
            XCTAssertLessThanOrEqual(line.count, 120, "a runs table line over 120 columns: \(line)")
        }
        for dir in dirs { XCTAssertTrue(runs.contains("`\(dir.path)`"), "folder \(dir.path) listed below the table") }
        XCTAssertTrue(runs.contains("Options:\n\n- A: "), runs)
        XCTAssertFalse(tableLines.joined().contains("lr="), "no options in the table")
    }

    func testCommandLinePrintsOrWritesTheSameMarkdown() throws {
        let root = try TestPaths.temporaryDirectory(self)
        let dirs = try FakeRuns.writePaperRuns(in: root)
        let expected = ReportRenderer.markdown(runs: try dirs.map(loadRun))

        let printed = try runEsapn(["report"] + dirs.map(\.path))
        XCTAssertEqual(printed.status, 0, printed.stderr)
        XCTAssertEqual(printed.stdout, expected)

        let file = root.appendingPathComponent("out/report.md")
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        let written = try runEsapn(["report"] + dirs.map(\.path) + ["--output", file.path])
        XCTAssertEqual(written.status, 0, written.stderr)
        XCTAssertEqual(written.stdout, "")
        XCTAssertEqual(try String(contentsOf: file, encoding: .utf8), expected)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: file.deletingLastPathComponent().path),
                       ["report.md"], "no temporary file left behind")
    }

    func testCommandLineFailsClearlyOnAMissingResultsJSON() throws {
        let root = try TestPaths.temporaryDirectory(self)
        let good = try FakeRuns.writePaperRuns(in: root)[0]
        let empty = root.appendingPathComponent("empty-run")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let output = root.appendingPathComponent("report.md")
        let result = try runEsapn(["report", good.path, empty.path, "--output", output.path])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("Error: \(empty.path): no results.json"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output.path), "no report written on error")

        let none = try runEsapn(["report"])
        XCTAssertNotEqual(none.status, 0)
        XCTAssertTrue(none.stderr.contains("at least one RUN_DIR"), none.stderr)
    }
}

/// Runs trained with other --sizes: the report takes the widths from each run.
final class ReportWidthsTests: XCTestCase {
    func testTablesUseTheRunsOwnWidths() {
        var esapn = FakeRuns.results(model: "esapn", task: "binary")
        esapn.options["sizes"] = "2,8,32"
        esapn.sizes = SizeCounts(users: ["2": 10, "8": 5, "32": 1], items: ["2": 3, "32": 2])
        esapn.memory.total_dims = 10 * 2 + 5 * 8 + 32 + 3 * 2 + 2 * 32
        for r in esapn.memory.per_rank.indices { esapn.memory.per_rank[r].rows_by_size = ["2": 6, "8": 3, "32": 1] }
        let run = LoadedRun(path: "runs/esapn-2-8-32", results: esapn)
        let table2 = ReportRenderer.table2(runs: [run])
        XCTAssertTrue(table2.contains("| 2 | 8 | 32 | Total Dim |") || table2.contains("|   2 |   8 |  32 |"),
                      "width columns 2, 8, 32:\n\(table2)")
        XCTAssertFalse(table2.contains("128"), "no width of the paper's that the run did not have:\n\(table2)")
        XCTAssertTrue(table2.contains("#IDs × 32"), table2)
        XCTAssertTrue(table2.contains("DARTS and AutoEmb store all 3 widths, 42 dims per ID"), table2)
        // FIXED = 16 users × 32 = 512 dims, 5 items × 32 = 160.
        XCTAssertTrue(table2.contains("   512 |") && table2.contains("   160 |"), table2)
        let memory = ReportRenderer.memoryTables(runs: [run])
        XCTAssertTrue(memory.contains("FIXED-32 would hold") && memory.contains("Soft-42 would hold"), memory)
        XCTAssertFalse(memory.contains("rows 128") || memory.contains("FIXED-128"), memory)
        // A run from before options.sizes: the paper's widths.
        var old = FakeRuns.results(model: "esapn", task: "binary")
        old.options["sizes"] = nil
        XCTAssertEqual(ReportFormat.widths(of: old), [2, 4, 8, 16, 64, 128])
    }
}
