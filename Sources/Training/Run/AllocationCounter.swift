// The hidden `esapn train --count-allocations` check that the per-batch
// path allocates nothing (Tests/TrainingTests/AllocationTests.swift).
#if canImport(Glibc)
import Glibc
#endif

/// `--count-allocations`: reads the allocator call counters of the preloaded
/// counting library (its C source is in
/// Tests/TrainingTests/AllocationCountingLibrary.swift) after batch 1, the
/// warm-up, and after the last batch: batches 2…B are measured. Calls made
/// directly by Open MPI's libraries (its collectives' temporary buffers) are
/// counted apart from esapn's own. The progress callback only stores
/// integers into this object, made before the run, so it allocates nothing.
public final class AllocationCounter {
    typealias Read = @convention(c) () -> UInt64
    let all: Read
    let inMPI: Read?
    private var afterWarmUp: (all: UInt64, inMPI: UInt64) = (0, 0)
    private var afterLast: (all: UInt64, inMPI: UInt64) = (0, 0)

    struct NotPreloaded: Error, CustomStringConvertible {
        var description: String {
            "--count-allocations needs the allocation counting library preloaded (LD_PRELOAD=…/libcountmalloc.so, "
                + "built from the C source in Tests/TrainingTests/AllocationCountingLibrary.swift): "
                + "esapn_malloc_calls was not found"
        }
    }

    init() throws {
        guard let program = dlopen(nil, RTLD_NOW), let symbol = dlsym(program, "esapn_malloc_calls") else {
            throw NotPreloaded()
        }
        all = unsafeBitCast(symbol, to: Read.self)
        inMPI = dlsym(program, "esapn_malloc_calls_in_mpi").map { unsafeBitCast($0, to: Read.self) }
    }

    private func read() -> (all: UInt64, inMPI: UInt64) {
        let mpi = inMPI?() ?? 0
        return (all(), mpi)
    }

    /// Called after every batch (`done` of `batches`): reads the counters after batch 1 and after the last.
    func afterBatch(_ done: Int, of batches: Int) {
        if done == 1 { afterWarmUp = read() }
        if done == batches { afterLast = read() }
    }

    /// Allocator calls from the end of batch 1 to the end of the last batch:
    /// esapn's own (everything not made directly by Open MPI) and Open MPI's.
    var hotPath: (own: UInt64, inMPI: UInt64) {
        let mpi = afterLast.inMPI &- afterWarmUp.inMPI
        return ((afterLast.all &- afterWarmUp.all) &- mpi, mpi)
    }
}
