// Helpers shared by the test targets: closeness assertions, the paths of the
// built executable and of the fetched data, and running a child process.
import Foundation
import XCTest

/// Asserts |a - b| <= atol + rtol * |b| element-wise, naming the first index that fails.
public func assertClose(_ a: [Float], _ b: [Float], rtol: Float = 1e-5, atol: Float = 1e-6,
                        _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "lengths differ \(message)", file: file, line: line)
    for i in 0..<min(a.count, b.count) {
        let tol = atol + rtol * abs(b[i])
        if !(abs(a[i] - b[i]) <= tol) {
            XCTFail("index \(i): \(a[i]) vs \(b[i]) (tolerance \(tol)) \(message)", file: file, line: line)
            return
        }
    }
}

public func assertClose(_ a: Double, _ b: Double, rtol: Double = 1e-9, atol: Double = 1e-12,
                        _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    let tol = atol + rtol * abs(b)
    XCTAssert(abs(a - b) <= tol, "\(a) vs \(b) (tolerance \(tol)) \(message)", file: file, line: line)
}

public enum TestPaths {
    /// The package root (this file is Tests/TestSupport/TestSupport.swift).
    public static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The esapn executable under test: $ESAPN_BIN, or the one built beside the test bundle.
    public static var esapnBinary: URL {
        if let path = ProcessInfo.processInfo.environment["ESAPN_BIN"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return Bundle.main.bundleURL.appendingPathComponent("esapn")
    }

    /// The real MovieLens-100k `.inter` file fetched by scripts/setup.sh.
    public static var ml100k: URL {
        if let path = ProcessInfo.processInfo.environment["ESAPN_ML100K"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return packageRoot.appendingPathComponent("data/ml-100k/ml-100k.inter")
    }

    /// A fresh temporary directory, removed when the test ends.
    public static func temporaryDirectory(_ test: XCTestCase) throws -> URL {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("esapn-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }
}

/// Fails (never skips) when a resource a test needs is missing, saying how to get it.
public func requireFile(_ url: URL, howToGet: String, file: StaticString = #filePath, line: UInt = #line) throws {
    if !FileManager.default.fileExists(atPath: url.path) {
        XCTFail("missing \(url.path): \(howToGet)", file: file, line: line)
        throw XCTSkip("unreachable: failed above")
    }
}

public struct ProcessResult {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs an executable to completion, capturing its output. Environment
/// variables of an MPI launch (OMPI_, PMIX_, OPAL_) are removed from the
/// child's environment so that a child `mpirun` starts cleanly.
public func runProcess(_ executable: URL, _ arguments: [String], environment extra: [String: String] = [:],
                       currentDirectory: URL? = nil) throws -> ProcessResult {
    let p = Process()
    p.executableURL = executable
    p.arguments = arguments
    var env = ProcessInfo.processInfo.environment.filter {
        !$0.key.hasPrefix("OMPI_") && !$0.key.hasPrefix("PMIX_") && !$0.key.hasPrefix("OPAL_")
    }
    for (k, v) in extra { env[k] = v }
    p.environment = env
    if let currentDirectory { p.currentDirectoryURL = currentDirectory }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    // Read both pipes concurrently so a chatty child never blocks on a full pipe.
    let errData = ErrBox()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        errData.data = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    p.waitUntilExit()
    return ProcessResult(status: p.terminationStatus,
                         stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData.data, as: UTF8.self))
}

/// Runs the esapn executable under test.
public func runEsapn(_ arguments: [String], environment: [String: String] = [:]) throws -> ProcessResult {
    try runProcess(TestPaths.esapnBinary, arguments, environment: environment)
}

private final class ErrBox: @unchecked Sendable { var data = Data() }

/// Runs a bash script of the repository (path relative to its root), with a time limit.
public func runRepositoryScript(_ script: String, _ arguments: [String], environment: [String: String] = [:],
                                       timeLimit: Int = 300) throws -> ProcessResult {
    let path = TestPaths.packageRoot.appendingPathComponent(script).path
    var command = ["bash", path] + arguments
    if MPIRun.executableOnPath("timeout") != nil {
        command = ["timeout", "--kill-after=10", "\(timeLimit)"] + command
    }
    return try runProcess(URL(fileURLWithPath: "/usr/bin/env"), command, environment: environment,
                          currentDirectory: TestPaths.packageRoot)
}
