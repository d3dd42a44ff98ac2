// SIGTERM, SIGINT and SIGUSR1 (Slurm's warning before a time limit, Ctrl-C,
// `mpirun` forwarding USR1) with --checkpoint-dir: finish the batch, write a
// checkpoint, exit non-zero. The handler only sets a flag. Every 8 batches
// the ranks add up their flags (BatchControl's all-reduce, Progress.swift),
// or whatever RunOptions.stopRequested says (a library caller's own stop),
// so a signal that reaches some ranks only stops all of them after the same
// batch, and no rank waits in a collective the others left.
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

private let stopFlag = Atomic<Int>(0)

public enum StopSignal {
    /// The exit status of a run stopped by a signal after its checkpoint (EX_TEMPFAIL: try again).
    public static let exitCode: Int32 = 75

    public static func install() {
        for s in [SIGTERM, SIGINT, SIGUSR1] {
            signal(s) { _ in stopFlag.store(1, ordering: .relaxed) }
        }
    }

    public static var received: Bool { stopFlag.load(ordering: .relaxed) != 0 }

    public struct Stopped: Error, CustomStringConvertible {
        public let batch: Int, batches: Int, folder: String, directory: String
        public var description: String {
            "stopped by a signal after batch \(batch) of \(batches); checkpoint written to \(folder); "
                + "continue with the same command and --resume \(directory)"
        }
    }
}
