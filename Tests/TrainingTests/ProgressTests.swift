// What a user sees during a multi-rank run (issue 13): rank 0 reports
// progress whether its stderr is a terminal or a pipe (as under mpirun), and
// the run folder keeps log.txt.
import Foundation
import TestSupport
import XCTest

final class ProgressTests: XCTestCase {
    static let ml100k = PreparedML100K()

    override class func tearDown() {
        ml100k.remove()
        super.tearDown()
    }

    func trainArguments(output: URL, _ extra: [String] = []) throws -> [String] {
        ["train", "--data", try Self.ml100k.stream(), "--model", "esapn", "--limit", "40000", "--progress-every", "0.2",
         "--output", output.path] + extra
    }

    /// The plain progress lines in `text`, each checked for every field; returns how many there are.
    @discardableResult
    func assertProgressLines(_ text: String, ranks: Int, file: StaticString = #filePath, line: UInt = #line) -> Int {
        let lines = text.split(separator: "\n").filter { $0.hasPrefix("esapn: [") }
        XCTAssertGreaterThanOrEqual(lines.count, 2, "progress lines (first batch, last batch at least):\n\(text)",
                                    file: file, line: line)
        let pattern = #"^esapn: \[\d+:\d\d:\d\d\] batch \d+/80  records \d+/40000  \d+ records/s  ETA \d+:\d\d:\d\d  "#
            + #"accuracy 0\.\d{4}  loss \d\.\d{4}  embeddings MiB per rank"# + String(repeating: #" \d+\.\d"#, count: ranks) + "$"
        let regex = try! NSRegularExpression(pattern: pattern)
        for l in lines {
            let s = String(l)
            XCTAssertNotNil(regex.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)),
                            "a progress line with every field for \(ranks) ranks: '\(s)'", file: file, line: line)
        }
        XCTAssertTrue(lines.last?.contains("batch 80/80  records 40000/40000") ?? false, "the last batch is reported",
                      file: file, line: line)
        return lines.count
    }

    /// Through a pipe (mpirun's stderr is one for rank 0): plain lines; and log.txt.
    func testTwoRanksThroughAPipeShowProgressAndWriteTheLog() throws {
        let output = try Self.ml100k.runDirectory("pipe")
        let result = try MPIRun.runEsapn(np: 2, try trainArguments(output: output))
        XCTAssertEqual(result.status, 0, result.report)
        XCTAssertFalse(result.stderr.contains("\r"), "no rewriting line through a pipe")
        assertProgressLines(result.stderr, ranks: 2)

        let log = try String(contentsOf: output.appendingPathComponent("log.txt"), encoding: .utf8)
        for expected in ["command    ", "--progress-every 0.2", "esapn      ", "Swift", "mpi        Open MPI",
                         "openblas   OpenBLAS", "kernel ", "ranks      2", "rank 0 on ", "rank 1 on ",
                         "batch 80/80", "test     (last 10000): accuracy"] {
            XCTAssertTrue(log.contains(expected), "log.txt should hold '\(expected)':\n\(log)")
        }
        // The log's progress lines are the ones printed (without the "esapn: " prefix).
        let printed = result.stderr.split(separator: "\n").filter { $0.hasPrefix("esapn: [") }.map { $0.dropFirst(7) }
        let logged = log.split(separator: "\n").filter { $0.hasPrefix("[") }
        XCTAssertEqual(printed.map(String.init), logged.map(String.init))
    }

    /// Under a pseudo-terminal (script): mpirun's rank 0 still writes to a pipe,
    /// so plain lines; one process on the terminal gets the rewriting line.
    func testUnderAPseudoTerminal() throws {
        let script = try XCTUnwrap(MPIRun.executableOnPath("script"), "script (util-linux) not found: apt-get install bsdutils")
        func quoted(_ a: String) -> String { "'" + a.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let mpirun = try MPIRun.mpirun(), esapn = try MPIRun.esapn()
        let output = try Self.ml100k.runDirectory("pty-mpi")
        let command = ([mpirun.path] + MPIRun.arguments(np: 2, transport: .sharedMemory) + [esapn.path]
                       + (try trainArguments(output: output))).map(quoted).joined(separator: " ")
        let result = try runProcess(script, ["-q", "-e", "-c", command, "/dev/null"])
        XCTAssertEqual(result.status, 0, result.report)
        assertProgressLines(result.stdout.replacingOccurrences(of: "\r\n", with: "\n"), ranks: 2)

        let single = try Self.ml100k.runDirectory("pty-one")
        let alone = ([esapn.path] + (try trainArguments(output: single))).map(quoted).joined(separator: " ")
        let one = try runProcess(script, ["-q", "-e", "-c", alone, "/dev/null"])
        XCTAssertEqual(one.status, 0, one.report)
        XCTAssertTrue(one.stdout.contains("\rbatch "), "a line that rewrites itself on a terminal: \(one.report)")
        XCTAssertTrue(one.stdout.contains("batch 80/80  records 40000/40000"), one.report)
        XCTAssertFalse(one.stdout.contains("esapn: ["), "no plain lines on a terminal")
    }

    /// --progress off and --quiet print none; --progress always prints plain lines anywhere; log.txt is always written.
    func testProgressModes() throws {
        for flags in [["--progress", "off"], ["--quiet"]] {
            let output = try Self.ml100k.runDirectory("off")
            let result = try runEsapn(try trainArguments(output: output, flags), environment: ["OPENBLAS_NUM_THREADS": "1"])
            XCTAssertEqual(result.status, 0, result.report)
            XCTAssertFalse(result.stderr.contains("batch "), "\(flags): no progress: \(result.report)")
            let log = try String(contentsOf: output.appendingPathComponent("log.txt"), encoding: .utf8)
            XCTAssertTrue(log.contains("ranks      1"), log)
        }
        let output = try Self.ml100k.runDirectory("always")
        let result = try runEsapn(try trainArguments(output: output, ["--progress", "always"]),
                                  environment: ["OPENBLAS_NUM_THREADS": "1"])
        XCTAssertEqual(result.status, 0, result.report)
        assertProgressLines(result.stderr, ranks: 1)
        let bad = try runEsapn(try trainArguments(output: output, ["--progress-every", "0"]))
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--progress-every takes a positive number of seconds"), bad.report)
    }
}
