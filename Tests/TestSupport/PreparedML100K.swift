// Real ml-100k as a stream file, prepared once per test class.
import Foundation
import XCTest

/// Real MovieLens-100k prepared into a stream with `esapn prepare`, once per
/// test class: call `stream(in:)` from a test, `remove()` from the class's
/// tearDown.
public final class PreparedML100K: @unchecked Sendable {
    private var directory: URL?
    private var path: String?
    private let lock = NSLock()

    public init() {}

    /// The prepared stream, preparing it on first use.
    public func stream(file: StaticString = #filePath, line: UInt = #line) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if let path { return path }
        try requireFile(TestPaths.ml100k, howToGet: "run scripts/setup.sh, which fetches ml-100k into data/",
                        file: file, line: line)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("esapn-ml100k-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        directory = dir
        let stream = dir.appendingPathComponent("ml-100k.stream").path
        let result = try runEsapn(["prepare", TestPaths.ml100k.path, "--output", stream])
        XCTAssertEqual(result.status, 0, result.report, file: file, line: line)
        path = stream
        return stream
    }

    /// A fresh folder name beside the stream (prepared first if need be), for a run's output.
    public func runDirectory(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        _ = try stream(file: file, line: line)
        lock.lock()
        defer { lock.unlock() }
        return directory!.appendingPathComponent(name + "-" + UUID().uuidString)
    }

    public func remove() {
        lock.lock()
        defer { lock.unlock() }
        if let directory { try? FileManager.default.removeItem(at: directory) }
        directory = nil
        path = nil
    }
}
