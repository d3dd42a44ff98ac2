// The binary sets itself up for OpenBLAS without a launcher (BLASAdvice): one
// BLAS thread unless the user asked for more, and, when OPENBLAS_CORETYPE is
// unset, the kernels launch/common.sh would pick, by executing itself again
// before MPI starts; a plain mpirun of it then trains.
import Foundation
import TestSupport
import XCTest

final class BLASSetupTests: XCTestCase {
    static let ml100k = PreparedML100K()
    override class func tearDown() { ml100k.remove() }

    /// What launch/common.sh picks for this CPU (nil: neither AVX-512 nor AVX2+FMA).
    static var launcherCore: String? {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let set = Set(flags.split(separator: " ").map(String.init))
        if set.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"]) { return "SkylakeX" }
        if set.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        return nil
    }

    /// `esapn bench`'s first line ("OpenBLAS core X, N thread(s); …") under `env ARGS esapn bench`.
    func blasLine(_ env: [String]) throws -> String {
        let r = try runProcess(URL(fileURLWithPath: "/usr/bin/env"),
                               env + [TestPaths.esapnBinary.path, "bench", "--repetitions", "1", "--batch", "8"])
        XCTAssertEqual(r.status, 0, r.report)
        return String(r.stdout.split(separator: "\n").first ?? "")
    }

    func testOneThreadAndTheLaunchersKernelsWhenNothingIsSet() throws {
        let line = try blasLine(["-u", "OPENBLAS_CORETYPE", "-u", "OPENBLAS_NUM_THREADS", "-u", "OMP_NUM_THREADS",
                                 "-u", "GOTO_NUM_THREADS", "-u", "ESAPN_KEEP_BLAS_CORE"])
        XCTAssert(line.contains(", 1 thread(s)"), line)
        if let core = Self.launcherCore {
            XCTAssert(line.hasPrefix("OpenBLAS core \(core),"), "expected \(core) (launch/common.sh's choice): \(line)")
        }
    }

    func testWhatTheUserSetIsKept() throws {
        let line = try blasLine(["OPENBLAS_CORETYPE=Sandybridge", "OPENBLAS_NUM_THREADS=2"])
        XCTAssert(line.hasPrefix("OpenBLAS core Sandybridge, 2 thread(s)"), line)
    }

    /// A bare `mpirun -np 2 esapn train` with nothing set: every rank executes
    /// itself again before MPI_Init, and the run completes.
    func testPlainMPIRunTrainsAfterTheReexecution() throws {
        let mpirun = try MPIRun.mpirun(), esapn = try MPIRun.esapn()
        let out = try Self.ml100k.runDirectory("plain-mpirun")
        let r = try runProcess(URL(fileURLWithPath: "/usr/bin/env"),
                               ["-u", "OPENBLAS_CORETYPE", "-u", "OPENBLAS_NUM_THREADS", mpirun.path, "--allow-run-as-root",
                                "-np", "2", esapn.path, "train", "--data", try Self.ml100k.stream(), "--limit", "3000",
                                "--quiet", "--output", out.path])
        XCTAssertEqual(r.status, 0, r.report)
        XCTAssert(FileManager.default.fileExists(atPath: out.appendingPathComponent("results.json").path), r.report)
        XCTAssertFalse(r.stderr.contains("warning: OpenBLAS"), r.report)
    }
}
