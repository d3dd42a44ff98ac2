// How a training run is driven, beside what it computes (TrainConfig): where
// it writes, its checkpoints and resume, progress, profiling, and what log.txt
// says of the program. Validated once (`validate(for:)`), with the errors
// users see, before any process starts a collective.
import Checkpoints

public struct RunOptions: Sendable {
    /// The stream file, and the run folder to write.
    public var data: String
    public var output: String

    // Checkpoints.
    public var checkpointDirectory: String?
    /// After every N batches (nil: 1000, or never when only minutes are given).
    public var checkpointEvery: Int?
    /// Also once M minutes have passed since the last (rank 0's clock decides).
    public var checkpointMinutes: Double?
    public var keepCheckpoints = 2
    /// A --checkpoint-dir (its newest complete checkpoint) or one checkpoint-* folder.
    public var resume: String?

    // What the user sees.
    public var progress: ProgressMode = .auto
    public var progressEvery = 30.0
    /// Time each phase and count the collectives (results.json's profile).
    public var profile = false
    /// Also write final_sizes.csv.
    public var saveSizes = false

    /// --deterministic: the number of logical ranks C (nil: a plain run).
    public var logicalRanks: Int?
    /// Count allocator calls from the end of batch 1 to the end (a test hook;
    /// needs the counting library preloaded, see AllocationCounter).
    public var countAllocations = false
    /// A stop asked by the caller (checked every few batches, on every rank,
    /// like a signal): the run writes a checkpoint and stops. Signals always count.
    public var stopRequested: @Sendable (_ batchesDone: Int) -> Bool = { _ in false }

    // What log.txt says of the program.
    public var commandLine: [String] = []
    public var version = ""
    /// The MPI library's version when the processes talk through MPI (nil: one local process).
    public var mpiLibrary: String?
    /// Printed by rank 0 once the run has opened (e.g. BLAS advice).
    public var warnings: [String] = []

    /// The default number of logical ranks of --deterministic.
    public static let defaultLogicalRanks = 4

    public init(data: String, output: String) {
        self.data = data
        self.output = output
    }

    /// The checkpoint cadence, or nil without --checkpoint-dir.
    public var checkpoints: CheckpointOptions? {
        checkpointDirectory.map {
            CheckpointOptions(directory: $0, every: checkpointEvery ?? (checkpointMinutes == nil ? 1000 : Int.max),
                              keep: keepCheckpoints)
        }
    }

    /// Checks the options against the run's configuration (the checks that need no stream).
    public func validate(for config: TrainConfig) throws {
        func fail(_ s: String) -> TrainConfig.Invalid { TrainConfig.Invalid(s) }
        if (checkpointEvery != nil || checkpointMinutes != nil) && checkpointDirectory == nil {
            throw fail("--checkpoint-every and --checkpoint-minutes need --checkpoint-dir DIR (where to write them)")
        }
        if let m = checkpointMinutes, !(m > 0) {
            throw fail("--checkpoint-minutes takes a positive number of minutes, got \(m)")
        }
        if let every = checkpointEvery, every < 1 {
            throw fail("--checkpoint-every takes a positive number of batches, got \(every)")
        }
        guard progressEvery > 0 else { throw fail("--progress-every takes a positive number of seconds, got \(progressEvery)") }
        if let logicalRanks {
            guard logicalRanks >= 1 else { throw fail("--logical-ranks takes a positive number, got \(logicalRanks)") }
            guard logicalRanks <= config.batchSize else {
                throw fail("--logical-ranks \(logicalRanks) is more than --batch-size \(config.batchSize): every logical rank "
                           + "needs records of every batch; use at most \(config.batchSize)")
            }
            if countAllocations {
                throw fail("--count-allocations counts one rank per process: it cannot be used with --deterministic")
            }
        }
        if keepCheckpoints < 1 {
            throw fail("--keep-checkpoints takes a positive number, got \(keepCheckpoints)")
        }
    }
}
