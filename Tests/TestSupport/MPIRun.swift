// Running the built esapn under mpirun from a test (CommTests, TrainingTests).
// Tests never initialise MPI in-process: they spawn `mpirun` on the
// executable, with the OMPI_/PMIX_/OPAL_ variables stripped by `runProcess`.
import Foundation
import XCTest

/// How the ranks of a run talk to each other.
public enum MPITransport: String, CaseIterable, CustomStringConvertible, Sendable {
    /// Open MPI's default on one machine (the vader BTL).
    case sharedMemory = "shm"
    /// TCP over loopback: the network path multi-node runs take.
    case tcpLoopback = "tcp"

    public var mpirunArguments: [String] {
        switch self {
        case .sharedMemory:
            return []
        case .tcpLoopback:
            // Without the interface options TCP skips 127.0.0.1 and, where only
            // `lo` exists, the ranks cannot reach each other.
            return ["--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "lo",
                    "--mca", "oob_tcp_if_include", "lo"]
        }
    }

    public var description: String { rawValue }
}

public enum MPIRun {
    /// The first executable called `name` on PATH.
    public static func executableOnPath(_ name: String) -> URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }

    /// `mpirun` on PATH; a missing one fails the test (never skips it).
    @discardableResult
    public static func mpirun(file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        guard let url = executableOnPath("mpirun") else {
            XCTFail("mpirun not found on PATH: install openmpi-bin (scripts/setup.sh)", file: file, line: line)
            throw XCTSkip("unreachable: failed above")
        }
        return url
    }

    /// The esapn executable under test; a missing one fails the test.
    @discardableResult
    public static func esapn(file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        let url = TestPaths.esapnBinary
        try requireFile(url, howToGet: "build it with `swift build --product esapn`, or set ESAPN_BIN",
                        file: file, line: line)
        return url
    }

    /// The mpirun arguments for `np` ranks over `transport`: always
    /// --allow-run-as-root (tests run as root here), --oversubscribe beyond
    /// the cores, one BLAS thread per rank.
    public static func arguments(np: Int, transport: MPITransport) -> [String] {
        var arguments = ["--allow-run-as-root", "-np", "\(np)"]
        if np > ProcessInfo.processInfo.activeProcessorCount { arguments.append("--oversubscribe") }
        arguments += transport.mpirunArguments
        arguments += ["-x", "OPENBLAS_NUM_THREADS=1"]
        return arguments
    }

    /// Runs `esapn ARGUMENTS…` as `np` ranks under mpirun and waits for it,
    /// killing it after `timeLimit` seconds (exit status 124) so that a hung
    /// collective fails the test instead of stalling the suite.
    /// `mpirunArguments` go to mpirun itself (e.g. `-x LD_PRELOAD=…`).
    public static func runEsapn(np: Int, transport: MPITransport = .sharedMemory, _ arguments: [String],
                                mpirunArguments: [String] = [], environment: [String: String] = [:],
                                timeLimit: Int = 300,
                                file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        let mpirun = try mpirun(file: file, line: line)
        let esapn = try esapn(file: file, line: line)
        let command = [mpirun.path] + self.arguments(np: np, transport: transport) + mpirunArguments
            + [esapn.path] + arguments
        if let timeout = executableOnPath("timeout") {
            return try runProcess(timeout, ["--kill-after=10", "\(timeLimit)"] + command, environment: environment)
        }
        return try runProcess(mpirun, Array(command.dropFirst()), environment: environment)
    }
}

extension ProcessResult {
    /// Status and output, for assertion messages.
    public var report: String {
        let timedOut = status == 124 ? " (killed: time limit reached)" : ""
        return "exit status \(status)\(timedOut)\n--- stdout ---\n\(stdout)\n--- stderr ---\n\(stderr)"
    }
}
