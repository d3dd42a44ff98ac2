// What OpenBLAS runs on: the kernel family it picked (or OPENBLAS_CORETYPE
// forced) and its build configuration, for benchmarks and bug reports.
import CBLAS

public enum BLASInfo {
    public static var coreName: String { String(cString: openblas_get_corename()) }
    public static var configuration: String { String(cString: openblas_get_config()) }
    public static var threads: Int { Int(openblas_get_num_threads()) }
    /// Sets OpenBLAS's thread count for this process.
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(n)) }
}
