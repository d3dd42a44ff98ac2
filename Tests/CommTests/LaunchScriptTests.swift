// The mpirun wrappers in launch/: argument checks, clear errors, and a real
// launch of mpi-smoke through them (ESAPN_SUBCOMMAND).
import Foundation
import XCTest
import TestSupport

final class LaunchScriptTests: XCTestCase {
    func testScriptsAreExecutableAndParse() throws {
        for script in ["launch/local.sh", "launch/cluster.sh", "launch/slurm.sbatch", "scripts/fetch-movielens.sh"] {
            let path = TestPaths.packageRoot.appendingPathComponent(script).path
            XCTAssertTrue(FileManager.default.isExecutableFile(atPath: path), "\(script) is not executable")
            let check = try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["bash", "-n", path])
            XCTAssertEqual(check.status, 0, "\(script): \(check.report)")
        }
    }

    // MARK: local.sh

    func testLocalRejectsANonIntegerRankCount() throws {
        for np in ["two", "0", "-1", "2.5", ""] {
            let result = try runRepositoryScript("launch/local.sh", [np, "--data", "x"])
            XCTAssertEqual(result.status, 2, "NP '\(np)': \(result.report)")
            XCTAssertTrue(result.stderr.contains("NP must be a positive integer, got '\(np)'"), result.report)
            XCTAssertTrue(result.stderr.contains("usage: launch/local.sh NP"), result.report)
        }
    }

    func testLocalWithoutArgumentsPrintsUsage() throws {
        let result = try runRepositoryScript("launch/local.sh", [])
        XCTAssertEqual(result.status, 2, result.report)
        XCTAssertTrue(result.stderr.contains("usage: launch/local.sh NP"), result.report)
    }

    func testLocalSaysHowToBuildAMissingBinary() throws {
        let result = try runRepositoryScript("launch/local.sh", ["2"], environment: ["ESAPN_BIN": "/nonexistent/esapn"])
        XCTAssertEqual(result.status, 1, result.report)
        XCTAssertTrue(result.stderr.contains("esapn is not built at /nonexistent/esapn: run scripts/setup.sh"), result.report)
    }

    func testLocalRejectsAnUnknownTransport() throws {
        let esapn = try MPIRun.esapn()
        let result = try runRepositoryScript("launch/local.sh", ["2"],
                                             environment: ["ESAPN_BIN": esapn.path, "ESAPN_TRANSPORT": "carrier-pigeon"])
        XCTAssertEqual(result.status, 2, result.report)
        XCTAssertTrue(result.stderr.contains("ESAPN_TRANSPORT must be shm or tcp"), result.report)
    }

    func testLocalRunsTwoRanks() throws {
        try launchSmoke("launch/local.sh", ["2"], expectRanks: 2)
    }

    func testLocalRunsThreeRanksOverTCP() throws {
        try launchSmoke("launch/local.sh", ["3"], extra: ["ESAPN_TRANSPORT": "tcp"], expectRanks: 3)
    }

    // MARK: cluster.sh

    func testClusterNamesAHostThatDoesNotResolve() throws {
        let dir = try TestPaths.temporaryDirectory(self)
        let hostfile = dir.appendingPathComponent("hosts")
        try "# two nodes\nlocalhost slots=1\n\nno-such-host.invalid slots=2\n".write(to: hostfile, atomically: true, encoding: .utf8)
        let result = try runRepositoryScript("launch/cluster.sh", [hostfile.path, "3", "--data", "x"])
        XCTAssertEqual(result.status, 1, result.report)
        XCTAssertTrue(result.stderr.contains("host 'no-such-host.invalid' (\(hostfile.path) line 4) does not resolve"),
                      result.report)
        XCTAssertTrue(result.stderr.contains("/etc/hosts"), "the message says how to fix it: \(result.report)")
    }

    func testClusterRejectsAMissingHostfile() throws {
        let dir = try TestPaths.temporaryDirectory(self)
        let missing = dir.appendingPathComponent("no-hostfile").path
        let result = try runRepositoryScript("launch/cluster.sh", [missing, "2"])
        XCTAssertEqual(result.status, 1, result.report)
        XCTAssertTrue(result.stderr.contains("hostfile '\(missing)' does not exist"), result.report)
    }

    func testClusterRejectsAHostfileWithoutHosts() throws {
        let dir = try TestPaths.temporaryDirectory(self)
        let hostfile = dir.appendingPathComponent("hosts")
        try "# nobody here\n\n".write(to: hostfile, atomically: true, encoding: .utf8)
        let result = try runRepositoryScript("launch/cluster.sh", [hostfile.path, "2"])
        XCTAssertEqual(result.status, 1, result.report)
        XCTAssertTrue(result.stderr.contains("names no host"), result.report)
    }

    func testClusterChecksItsArguments() throws {
        let missingArgument = try runRepositoryScript("launch/cluster.sh", ["hostfiles/localhost"])
        XCTAssertEqual(missingArgument.status, 2, missingArgument.report)
        XCTAssertTrue(missingArgument.stderr.contains("usage: launch/cluster.sh HOSTFILE NP"), missingArgument.report)
        let badCount = try runRepositoryScript("launch/cluster.sh", ["hostfiles/localhost", "many"])
        XCTAssertEqual(badCount.status, 2, badCount.report)
        XCTAssertTrue(badCount.stderr.contains("NP must be a positive integer, got 'many'"), badCount.report)
    }

    func testClusterRunsOnTheLocalhostHostfile() throws {
        let hostfile = TestPaths.packageRoot.appendingPathComponent("hostfiles/localhost").path
        try launchSmoke("launch/cluster.sh", [hostfile, "2"], expectRanks: 2)
    }

    // MARK: slurm.sbatch

    func testSlurmScriptWithoutArgumentsPrintsUsage() throws {
        let result = try runRepositoryScript("launch/slurm.sbatch", [])
        XCTAssertEqual(result.status, 2, result.report)
        XCTAssertTrue(result.stderr.contains("usage: sbatch launch/slurm.sbatch ARGS"), result.report)
        let text = try String(contentsOf: TestPaths.packageRoot.appendingPathComponent("launch/slurm.sbatch"), encoding: .utf8)
        XCTAssertTrue(text.contains("#SBATCH --nodes="), "slurm.sbatch sets its node count")
        XCTAssertTrue(text.contains("#SBATCH --ntasks-per-node="), "slurm.sbatch sets its task count")
    }

    // MARK: helpers

    /// Runs mpi-smoke through a launch wrapper and checks its summary line.
    private func launchSmoke(_ script: String, _ arguments: [String], extra: [String: String] = [:], expectRanks: Int,
                             file: StaticString = #filePath, line: UInt = #line) throws {
        try MPIRun.mpirun(file: file, line: line)
        let esapn = try MPIRun.esapn(file: file, line: line)
        var environment = ["ESAPN_BIN": esapn.path, "ESAPN_SUBCOMMAND": "mpi-smoke"]
        environment.merge(extra) { $1 }
        let result = try runRepositoryScript(script, arguments, environment: environment)
        XCTAssertEqual(result.status, 0, result.report, file: file, line: line)
        XCTAssertTrue(result.stdout.contains("mpi-smoke: \(expectRanks) ranks (mpi), \(MPISmokeTests.summary)"),
                      result.report, file: file, line: line)
    }
}
