// The process sets itself up for OpenBLAS, so that a plain
// `mpirun -np P esapn train …` runs as fast as launch/local.sh:
// - one BLAS thread per rank (ranks fill the cores; a second BLAS thread per
//   rank would oversubscribe them), unless the user set OPENBLAS_NUM_THREADS,
//   GOTO_NUM_THREADS or OMP_NUM_THREADS;
// - the kernels the CPU runs. OpenBLAS 0.3.21 (Debian 12) falls back to its
//   SSE3 "Prescott" kernels on CPUs it does not know, recent Intel Xeons among
//   them (4× slower products), and reads OPENBLAS_CORETYPE only when it loads,
//   before main. So when the variable is unset, the process sets it to what
//   the CPU supports (SkylakeX with AVX-512, Haswell with AVX2: the launch/
//   scripts' choice, so both paths run the same kernels and give the same
//   bits) and executes itself again, before MPI starts. ESAPN_KEEP_BLAS_CORE=1
//   keeps the library's own choice.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Kernels

enum BLASAdvice {
    /// Set before the process executes itself again, so it happens once.
    static let reexecMarker = "ESAPN_BLAS_CORE_CHOSEN"

    /// The kernel family launch/common.sh picks for this CPU, or nil.
    static func preferredCore() -> String? {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let set = Set(flags.split(separator: " ").map(String.init))
        if set.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"]) { return "SkylakeX" }
        if set.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        return nil
    }

    /// Call first thing in main, before MPI_Init: may replace the process.
    static func prepareProcess() {
        let env = ProcessInfo.processInfo.environment
        if env["OPENBLAS_CORETYPE"] == nil, env["ESAPN_KEEP_BLAS_CORE"] != "1", env[reexecMarker] == nil,
           let core = preferredCore() {
            setenv("OPENBLAS_CORETYPE", core, 1)
            setenv(reexecMarker, core, 1)
            let args = CommandLine.arguments.map { strdup($0) } + [nil]
            execv("/proc/self/exe", args)
            // Only reached when exec failed: go on with the library's choice (the warning below says so).
            unsetenv("OPENBLAS_CORETYPE")
        }
        if env["OPENBLAS_NUM_THREADS"] == nil && env["GOTO_NUM_THREADS"] == nil && env["OMP_NUM_THREADS"] == nil {
            BLASInfo.setThreads(1)
        }
    }

    /// A warning when OpenBLAS runs kernels far below what the CPU supports, or nil.
    static func warning() -> String? {
        let core = BLASInfo.coreName
        guard ["Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom"].contains(core),
              let better = preferredCore() else { return nil }
        return "esapn: warning: OpenBLAS uses its \(core) kernels on a CPU that runs \(better)'s; "
            + "unset OPENBLAS_CORETYPE (esapn then picks \(better)) or set OPENBLAS_CORETYPE=\(better) "
            + "for 2-4x faster training (see BENCHMARKS.md)\n"
    }
}
