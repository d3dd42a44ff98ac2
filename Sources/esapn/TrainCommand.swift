// `esapn train`: the command line's words → TrainConfig and RunOptions
// (validated there, once) → TrainingRun (Sources/Training) → what rank 0
// prints. The run itself, its collectives and its loop, are the library's.
import ArgumentParser
import Comm
import CommMPI
import Foundation
import Kernels
import Model
import Training

extension ModelKind: ExpressibleByArgument {}
extension Task: ExpressibleByArgument {}
extension RowOptimizerKind: ExpressibleByArgument {}
extension TrainConfig.Validation: ExpressibleByArgument {}
extension ProgressMode: ExpressibleByArgument {}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model on a stream, alone or under mpirun, and write the run folder.",
        discussion: """
        Each global batch is scored before it is trained on (prequential); the last --test-last records \
        are the "test" part of Table 1. Writes RUN_DIR/results.json, batches.csv, by_frequency.csv \
        (and final_sizes.csv with --save-sizes).
        """)

    @Option(help: "The stream file (esapn prepare or esapn synth).")
    var data: String

    @Option(help: "fixed, esapn, darts or autoemb.")
    var model: ModelKind = .fixed

    @Option(help: "binary (rating > 3.5, MSE) or multiclass (5 classes, cross-entropy).")
    var task: Task = .binary

    @Option(name: .shortAndLong, help: "The run folder to write.")
    var output: String

    @Option(help: "Seed of initialisation and sampling.")
    var seed: UInt64 = 0

    @Option(help: "The test part: the last N records (default: the last 25%).")
    var testLast: Int?

    @Option(help: "Global batch size (split across ranks).")
    var batchSize = 500

    @Option(help: "Adam learning rate of the model and the rows.")
    var lr = 1e-3

    @Option(help: "Adam learning rate of the policy / architecture weights.")
    var policyLr = 1e-4

    @Option(help: "Candidate embedding widths, ascending, comma-separated.")
    var sizes = "2,4,8,16,64,128"

    @Option(help: "Hidden width of the inference MLP.")
    var hidden = 512

    @Option(help: "Row optimizer: catch-up (dense Adam's values at lazy cost) or lazy.")
    var rowOptimizer: RowOptimizerKind = .catchUpAdam

    @Option(help: "Train on the first N records only.")
    var limit: Int?

    @Option(help: "ESAPN's validation batch: last (the previous batch) or random (B records of the history).")
    var validation: TrainConfig.Validation = .last

    @Option(help: "T: the reward's baseline is the mean of an ID's last T losses.")
    var rewardWindow = 5

    @Option(help: "What the policy sees, '+'-separated: frequency (always), size (one-hot of the current width), loss (the last loss).")
    var policyState = "frequency+size"

    @Option(help: "Hidden width of the policy network.")
    var policyHidden = 512

    @Flag(help: "Also write final_sizes.csv: the final width of every user and item.")
    var saveSizes = false

    @Flag(help: "No progress (the same as --progress off).")
    var quiet = false

    @Option(help: "Progress on rank 0's stderr: auto (a line that rewrites itself on a terminal, a plain line every --progress-every seconds through a pipe, as under mpirun or in a Slurm output file), always (plain lines wherever stderr goes) or off.")
    var progress: ProgressMode = .auto

    @Option(help: "Seconds between plain progress lines (stderr through a pipe, and log.txt).")
    var progressEvery = 30.0

    @Option(help: CommunicatorChoice.help)
    var communicator: CommunicatorChoice = .auto

    @Option(help: "Memory each rank may use, in GiB (default: the host's available memory shared by its ranks). The run is refused at once if its estimate is larger.")
    var memoryLimit: Double?

    @Option(help: "Resident embedding bytes each shard may hold, in MiB (rows, moments, per-ID state, index; with --deterministic, each logical rank). New IDs evict the least recently seen rows; ESAPN's enlargements are granted by margin while they fit (docs/budget.md).")
    var shardBudget: Double?

    @Option(help: "Write checkpoints into this folder (checkpoint-SSSSSSSS subfolders; see --checkpoint-every).")
    var checkpointDir: String?

    @Option(help: "With --checkpoint-dir: take a checkpoint after every N batches (default 1000).")
    var checkpointEvery: Int?

    @Option(help: "With --checkpoint-dir: also take a checkpoint once M minutes have passed since the last (rank 0's clock decides; every rank learns it after the same batch).")
    var checkpointMinutes: Double?

    @Option(help: "With --checkpoint-dir: keep the newest N complete checkpoints.")
    var keepCheckpoints = 2

    @Option(help: "Resume from a checkpoint: a --checkpoint-dir (its newest complete checkpoint) or one checkpoint-* folder. The same stream and settings, on any number of ranks (rows are re-owned).")
    var resume: String?

    @Flag(help: "Exact mode: the run behaves as --logical-ranks ranks whatever number of processes hosts them, so every batch's loss, the metrics and every ID's size are the same bits for any number of ranks up to that number (docs/contract.md). Costs throughput.")
    var deterministic = false

    @Option(help: "With --deterministic: C, the number of logical ranks (default 4). Results are the same for 1…C processes; C processes run fastest.")
    var logicalRanks: Int?

    @Flag(help: "Time each phase of a batch and count the bytes and collectives each rank sends; print them and add them to results.json.")
    var profile = false

    /// Test hook: counts C allocator calls between the end of batch 1 and the
    /// end of the last batch. Needs the counting library preloaded (see
    /// `AllocationCounter`); implies no progress line.
    @Flag(help: .hidden)
    var countAllocations = false

    /// The run's configuration and how it is driven, validated (the errors users see).
    func parsed() throws -> (TrainConfig, RunOptions) {
        do {
            var c = TrainConfig()
            c.model = model
            c.task = task
            c.seed = seed
            c.testLast = testLast
            c.batchSize = batchSize
            c.learningRate = lr
            c.policyLearningRate = policyLr
            c.sizes = try TrainConfig.sizes(sizes)
            c.hidden = hidden
            c.rowOptimizer = rowOptimizer
            c.limit = limit
            c.validation = validation
            c.rewardWindow = rewardWindow
            c.policyHidden = policyHidden
            c.memoryLimit = try memoryLimit.map { try TrainConfig.memoryLimit(gib: $0) }
            c.shardBudget = try shardBudget.map { try TrainConfig.shardBudget(mib: $0) }
            c.policyState = try TrainConfig.policyState(policyState)
            var o = RunOptions(data: data, output: output)
            o.checkpointDirectory = checkpointDir
            o.checkpointEvery = checkpointEvery
            o.checkpointMinutes = checkpointMinutes
            o.keepCheckpoints = keepCheckpoints
            o.resume = resume
            o.progress = quiet ? .off : progress
            o.progressEvery = progressEvery
            o.profile = profile
            o.saveSizes = saveSizes
            o.countAllocations = countAllocations
            if countAllocations { o.progress = .off }
            if logicalRanks != nil && !deterministic {
                throw TrainConfig.Invalid("--logical-ranks is a setting of --deterministic: add --deterministic")
            }
            if deterministic { o.logicalRanks = logicalRanks ?? RunOptions.defaultLogicalRanks }
            try o.validate(for: c)
            return (c, o)
        } catch let invalid as TrainConfig.Invalid {
            throw ValidationError(invalid.description)
        }
    }

    func validate() throws { _ = try parsed() }

    func run() throws {
        var (config, options) = try parsed()
        let (processes, mpi) = communicator.make()
        defer { mpi?.finalize() }
        options.commandLine = CommandLine.arguments
        options.version = Esapn.version
        options.mpiLibrary = mpi != nil ? MPICommunicator.libraryVersion : nil
        options.warnings = BLASAdvice.warning().map { [$0] } ?? []
        do {
            guard let outcome = try TrainingRun.launch(config: config, options: options, processes: processes) else { return }
            if let counts = outcome.allocations {
                func perRank(_ v: [Int]) -> String {
                    v.count > 1 ? " (per rank: " + v.map(String.init).joined(separator: ", ") + ")" : ""
                }
                let own = counts.map(\.own), inMPI = counts.map(\.inMPI)
                print("hot-path allocations: \(own.reduce(0, +)) over \(max(0, outcome.batches - 1)) batches\(perRank(own)); "
                      + "inside Open MPI: \(inMPI.reduce(0, +))\(perRank(inMPI))")
            }
            for text in outcome.printed { print(text) }
        } catch let failure as RunFailure {
            if failure.speaks { writeToStandardError("esapn: \(failure)\n") }
            mpi?.finalize()
            throw ExitCode(failure.status)
        }
    }
}
