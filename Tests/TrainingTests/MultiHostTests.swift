// A real multi-host run on one machine (issue 11): two "hosts", each a
// network and UTS namespace joined to the others by veth links
// (scripts/netns-hosts.sh), launched through launch/cluster.sh with a
// remote-shell agent that enters the namespace (scripts/netns-rsh.sh). The
// ranks share no network stack and no hostname, so all their traffic is TCP
// across the links. Needs root and iproute2: in CI (CI=true) a machine that
// cannot make the hosts fails here with the reason; elsewhere the tests are
// skipped with it.
import Analysis
import Foundation
import TestSupport
import Training
import XCTest

final class MultiHostTests: XCTestCase {
    static let ml100k = PreparedML100K()
    static let testLast = 20000

    /// The 1-rank runs, once per model.
    nonisolated(unsafe) static var references: [String: URL] = [:]
    var hostsDirectory: URL!

    override func setUpWithError() throws {
        let dir = try TestPaths.temporaryDirectory(self)
        let up = try runRepositoryScript("scripts/netns-hosts.sh", ["up", "2", dir.path])
        if up.status != 0 {
            let why = "cannot make the namespace hosts: \(up.stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                XCTFail(why)
                throw XCTSkip("failed above")
            }
            throw XCTSkip(why)
        }
        hostsDirectory = dir
    }

    override func tearDownWithError() throws {
        if hostsDirectory != nil {
            let down = try runRepositoryScript("scripts/netns-hosts.sh", ["down"])
            XCTAssertEqual(down.status, 0, down.report)
        }
    }

    override class func tearDown() {
        ml100k.remove()
        references = [:]
        super.tearDown()
    }

    var hostfile: URL { hostsDirectory.appendingPathComponent("hostfile") }

    /// The environment launch/cluster.sh needs to reach the namespace hosts.
    func clusterEnvironment() throws -> [String: String] {
        let args = try String(contentsOf: hostsDirectory.appendingPathComponent("mpirun-args"), encoding: .utf8)
        return ["ESAPN_MPIRUN_ARGS": args.trimmingCharacters(in: .whitespacesAndNewlines),
                "ESAPN_BIN": TestPaths.esapnBinary.path]
    }

    func trainArguments(_ model: String, output: URL) throws -> [String] {
        ["--data", try Self.ml100k.stream(), "--model", model, "--test-last", "\(Self.testLast)", "--save-sizes",
         "--quiet", "--output", output.path]
    }

    /// The 1-rank run without mpirun, once per model.
    func reference(_ model: String) throws -> URL {
        if let run = Self.references[model] { return run }
        let output = try Self.ml100k.runDirectory("p1-\(model)")
        let result = try runEsapn(["train"] + trainArguments(model, output: output), environment: ["OPENBLAS_NUM_THREADS": "1"])
        XCTAssertEqual(result.status, 0, result.report)
        Self.references[model] = output
        return output
    }

    func assertContract(_ run: URL, _ reference: URL, _ bounds: ContractBounds, _ label: String,
                        file: StaticString = #filePath, line: UInt = #line) throws {
        bounds.assertHeld(try RunComparison(run: run.path, reference: reference.path), label, file: file, line: line)
    }

    /// The hosts each rank ran on, from results.json.
    func hosts(_ run: URL) throws -> [String] {
        let perRank = try XCTUnwrap((try RunFolder(run).results["memory"] as? [String: Any])?["per_rank"] as? [[String: Any]])
        return perRank.compactMap { $0["host"] as? String }
    }

    /// FIXED and ESAPN on two hosts give the 1-rank results within the multi-rank contract.
    func testTwoHostsMeetTheContract() throws {
        for (model, bounds) in [("fixed", ContractBounds.exact), ("esapn", ContractBounds.esapn)] {
            let output = try Self.ml100k.runDirectory("hosts2-\(model)")
            let result = try runRepositoryScript("launch/cluster.sh", [hostfile.path, "2"] + trainArguments(model, output: output),
                                                 environment: try clusterEnvironment())
            XCTAssertEqual(result.status, 0, result.report)
            XCTAssertEqual(try hosts(output), ["esapn-h1", "esapn-h2"], "each rank on its own host")
            try assertContract(output, try reference(model), bounds, "\(model) on 2 namespace hosts")
        }
    }

    /// A host that cannot be reached at launch: mpirun alone would wait for its
    /// daemon forever; launch/cluster.sh's start-up check says so in its time.
    func testUnreachableHostAtLaunchIsReportedNotAHang() throws {
        let down = try runRepositoryScript("scripts/netns-hosts.sh", ["link", "2", "down"])
        XCTAssertEqual(down.status, 0, down.report)
        let output = try Self.ml100k.runDirectory("unreachable")
        let start = Date()
        let result = try runRepositoryScript("launch/cluster.sh", [hostfile.path, "2"] + trainArguments("fixed", output: output),
                                             environment: try clusterEnvironment().merging(["ESAPN_STARTUP_TIMEOUT": "5"]) { $1 })
        let seconds = Date().timeIntervalSince(start)
        XCTAssertNotEqual(result.status, 0, result.report)
        XCTAssertLessThan(seconds, 30, "the start-up check is bounded by ESAPN_STARTUP_TIMEOUT (5 s) plus its kill grace")
        XCTAssertTrue(result.stderr.contains("did not finish in 5 s: a host is unreachable"), result.report)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output.path), "no training started")
    }

    /// One host's link goes down mid-run: the job ends with Open MPI's error
    /// naming that host within 60 s, keeps its checkpoints, and resumes on
    /// the remaining host with one rank within the contract.
    func testLostHostEndsTheJobAndTheRunResumesOnTheOtherHost() throws {
        let dir = try Self.ml100k.runDirectory("lost-host")
        let checkpoints = dir.appendingPathComponent("checkpoints"), output = dir.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let log = dir.appendingPathComponent("job.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let job = Process()
        job.executableURL = URL(fileURLWithPath: "/bin/bash")
        job.arguments = [TestPaths.packageRoot.appendingPathComponent("launch/cluster.sh").path, hostfile.path, "2"]
            + (try trainArguments("esapn", output: output))
            + ["--checkpoint-dir", checkpoints.path, "--checkpoint-every", "10"]
        job.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("OMPI_") && !$0.key.hasPrefix("PMIX_") }
            .merging(try clusterEnvironment()) { $1 }
        let handle = try FileHandle(forWritingTo: log)
        job.standardOutput = handle
        job.standardError = handle
        try job.run()

        // The first complete checkpoint, then host 2's link goes down.
        let manifestDeadline = Date().addingTimeInterval(120)
        func hasCheckpoint() -> Bool {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpoints.path)) ?? []
            return names.contains { FileManager.default.fileExists(atPath: checkpoints.appendingPathComponent($0 + "/manifest.json").path) }
        }
        while !hasCheckpoint() && job.isRunning && Date() < manifestDeadline { usleep(20_000) }
        guard job.isRunning else {
            XCTFail("the job ended before the link could be taken down:\n" + (try String(contentsOf: log, encoding: .utf8)))
            return
        }
        XCTAssertTrue(hasCheckpoint(), "no checkpoint after 120 s")
        let linkDown = try runRepositoryScript("scripts/netns-hosts.sh", ["link", "2", "down"])
        XCTAssertEqual(linkDown.status, 0, linkDown.report)
        let lost = Date()
        while job.isRunning && Date().timeIntervalSince(lost) < 90 { usleep(100_000) }
        let seconds = Date().timeIntervalSince(lost)
        if job.isRunning {
            job.terminate()
            XCTFail("the job still ran 90 s after host 2 was lost: it hangs")
            return
        }
        try handle.close()
        let text = try String(contentsOf: log, encoding: .utf8)
        print("lost host: job ended \(String(format: "%.1f", seconds)) s after the link went down, status \(job.terminationStatus)")
        XCTAssertNotEqual(job.terminationStatus, 0, text)
        XCTAssertLessThan(seconds, 60, "a lost host must end the job within 60 s")
        XCTAssertTrue(text.contains("lost communication with a remote daemon") && text.contains("10.77.0.3"),
                      "the error names the lost host:\n\(text)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: output.appendingPathComponent("results.json").path))

        // Resume on the remaining host alone: re-sharded from 2 ranks to 1.
        let oneHost = hostsDirectory.appendingPathComponent("hostfile-1")
        try (String(contentsOf: hostfile, encoding: .utf8).split(separator: "\n").first.map { $0 + "\n" } ?? "")
            .write(to: oneHost, atomically: true, encoding: .utf8)
        let resumedOutput = dir.appendingPathComponent("resumed")
        let resumed = try runRepositoryScript("launch/cluster.sh", [oneHost.path, "1"]
                                                  + (try trainArguments("esapn", output: resumedOutput)) + ["--resume", checkpoints.path],
                                              environment: try clusterEnvironment())
        XCTAssertEqual(resumed.status, 0, resumed.report)
        XCTAssertEqual(try hosts(resumedOutput), ["esapn-h1"])
        try assertContract(resumedOutput, try reference("esapn"), .esapn, "esapn resumed on 1 host after losing the other")
    }
}
