// `esapn mpi-smoke` under mpirun: every collective of MPICommunicator on 2 and
// 3 ranks, over shared memory and over TCP on loopback, plus the checks that
// catch wrong results and failed MPI calls.
import XCTest
import TestSupport

final class MPISmokeTests: XCTestCase {
    static let summary = "all-reduce (float, double, max), all-to-all, all-to-all-v, broadcast, all-gather, barrier OK"

    func testOneLocalRankWithoutMPIRun() throws {
        try MPIRun.esapn()
        let result = try runEsapn(["mpi-smoke"])
        XCTAssertEqual(result.status, 0, result.report)
        XCTAssertTrue(result.stdout.contains("mpi-smoke: 1 rank (local), \(Self.summary)"), result.report)
    }

    func testOneMPIRankAsSingletonWithoutMPIRun() throws {
        try MPIRun.esapn()
        let result = try runEsapn(["mpi-smoke", "--communicator", "mpi"])
        XCTAssertEqual(result.status, 0, result.report)
        XCTAssertTrue(result.stdout.contains("mpi-smoke: 1 rank (mpi), \(Self.summary)"), result.report)
    }

    func testTwoRanksOverSharedMemory() throws { try smoke(np: 2, .sharedMemory) }
    func testTwoRanksOverTCPLoopback() throws { try smoke(np: 2, .tcpLoopback) }
    func testThreeRanksOverSharedMemory() throws { try smoke(np: 3, .sharedMemory) }
    func testThreeRanksOverTCPLoopback() throws { try smoke(np: 3, .tcpLoopback) }

    func testWrongResultsAreReportedAndFailTheRun() throws {
        let result = try MPIRun.runEsapn(np: 2, ["mpi-smoke", "--inject-fault", "wrong-data", "--fault-rank", "1"])
        XCTAssertNotEqual(result.status, 0, result.report)
        XCTAssertTrue(result.stderr.contains(
            "mpi-smoke: rank 1: all-reduce sum (float): 1 of 100003 values differ; first at index 17: got"), result.report)
        XCTAssertTrue(result.stderr.contains("FAILED on 1 of 2 ranks"), result.report)
        XCTAssertFalse(result.stdout.contains(" OK"), result.report)
    }

    func testAFailedMPICallIsReportedWithItsPlaceAndStopsAllRanks() throws {
        let result = try MPIRun.runEsapn(np: 2, transport: .tcpLoopback,
                                         ["mpi-smoke", "--inject-fault", "truncate", "--fault-rank", "1"],
                                         timeLimit: 120)
        XCTAssertNotEqual(result.status, 0, result.report)
        XCTAssertNotEqual(result.status, 124, "the aborted run hung instead of stopping: \(result.report)")
        XCTAssertTrue(result.stderr.contains("esapn: rank 1: MPI_Alltoallv failed at CommMPI/MPICommunicator.swift:"),
                      result.report)
        XCTAssertTrue(result.stderr.contains("MPI_ERR_TRUNCATE"), result.report)
    }

    private func smoke(np: Int, _ transport: MPITransport, file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try MPIRun.runEsapn(np: np, transport: transport, ["mpi-smoke"], file: file, line: line)
        let context = "np \(np) over \(transport): \(result.report)"
        XCTAssertEqual(result.status, 0, context, file: file, line: line)
        let summaries = result.stdout.split(separator: "\n").filter { $0.hasPrefix("mpi-smoke:") }
        XCTAssertEqual(summaries.count, 1, "rank 0 alone prints the summary; \(context)", file: file, line: line)
        XCTAssertTrue(result.stdout.contains("mpi-smoke: \(np) ranks (mpi), \(Self.summary)"), context, file: file, line: line)
    }
}
