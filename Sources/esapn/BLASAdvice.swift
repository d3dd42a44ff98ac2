// OpenBLAS 0.3.21 (Debian 12) falls back to its SSE3 "Prescott" kernels on
// CPUs it does not know, recent Intel Xeons among them: matrix products are
// then 4× slower than its AVX-512 kernels. The library reads
// OPENBLAS_CORETYPE when it loads, so the process cannot fix it for itself:
// it says how (launch/ scripts set it).
import Foundation
import Kernels

enum BLASAdvice {
    /// A warning when OpenBLAS runs kernels far below what the CPU supports, or nil.
    static func warning() -> String? {
        let core = BLASInfo.coreName
        guard ["Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom"].contains(core) else { return nil }
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let set = Set(flags.split(separator: " ").map(String.init))
        let better: String
        if set.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"]) {
            better = "SkylakeX"
        } else if set.isSuperset(of: ["avx2", "fma"]) {
            better = "Haswell"
        } else {
            return nil
        }
        return "esapn: warning: OpenBLAS uses its \(core) kernels on a CPU that runs \(better)'s; "
            + "set OPENBLAS_CORETYPE=\(better) for 2-4x faster training (launch/ scripts do it; see BENCHMARKS.md)\n"
    }
}
