import ArgumentParser
import Comm
import CommMPI
import Data
import Embeddings
import Foundation
import Kernels
import Policies
import Training

extension ModelKind: ExpressibleByArgument {}
extension Task: ExpressibleByArgument {}
extension RowOptimizerKind: ExpressibleByArgument {}
extension TrainConfig.Validation: ExpressibleByArgument {}
extension InjectedFault: ExpressibleByArgument {}

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

    @Option(help: "Write checkpoints into this folder (checkpoint-SSSSSSSS subfolders; see --checkpoint-every).")
    var checkpointDir: String?

    @Option(help: "With --checkpoint-dir: take a checkpoint after every N batches (default 1000).")
    var checkpointEvery: Int?

    @Option(help: "With --checkpoint-dir: also take a checkpoint once M minutes have passed since the last (rank 0's clock decides; every rank learns it after the same batch).")
    var checkpointMinutes: Double?

    @Option(help: "With --checkpoint-dir: keep the newest N complete checkpoints.")
    var keepCheckpoints = 2

    @Option(help: "Resume from a checkpoint: a --checkpoint-dir (its newest complete checkpoint) or one checkpoint-* folder. Same number of ranks, stream and settings.")
    var resume: String?

    @Flag(help: "Exact mode: the run behaves as --logical-ranks ranks whatever number of processes hosts them, so every batch's loss, the metrics and every ID's size are the same bits for any number of ranks up to that number (README, \"The same bits on any number of ranks\"). Costs throughput.")
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

    /// Test hook: plants a P-dependent bug (InjectedFault) so that the
    /// contract tests can show they catch it.
    @Option(help: .hidden)
    var injectFault: InjectedFault = .none

    func config() throws -> TrainConfig {
        var c = TrainConfig()
        c.model = model
        c.task = task
        c.seed = seed
        c.testLast = testLast
        c.batchSize = batchSize
        c.learningRate = lr
        c.policyLearningRate = policyLr
        let parsed = sizes.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parsed.isEmpty, parsed.allSatisfy({ $0 != nil }) else {
            throw ValidationError("--sizes takes comma-separated integers like 2,4,8,16,64,128, got '\(sizes)'")
        }
        c.sizes = parsed.map { $0! }
        c.hidden = hidden
        c.rowOptimizer = rowOptimizer
        c.limit = limit
        c.validation = validation
        c.rewardWindow = rewardWindow
        c.policyHidden = policyHidden
        c.injectedFault = injectFault
        if let memoryLimit {
            guard memoryLimit > 0 else { throw ValidationError("--memory-limit takes a positive number of GiB, got \(memoryLimit)") }
            c.memoryLimit = Int(memoryLimit * Double(1 << 30))
        }
        let parts = Set(policyState.split(separator: "+").map { $0.trimmingCharacters(in: .whitespaces) })
        guard parts.contains("frequency"), parts.isSubset(of: ["frequency", "size", "loss"]) else {
            throw ValidationError("--policy-state is '+'-separated from frequency (required), size, loss; got '\(policyState)'")
        }
        c.policyState = PolicyState(size: parts.contains("size"), lastLoss: parts.contains("loss"))
        if (checkpointEvery != nil || checkpointMinutes != nil) && checkpointDir == nil {
            throw ValidationError("--checkpoint-every and --checkpoint-minutes need --checkpoint-dir DIR (where to write them)")
        }
        if let m = checkpointMinutes, !(m > 0) {
            throw ValidationError("--checkpoint-minutes takes a positive number of minutes, got \(m)")
        }
        if let every = checkpointEvery, every < 1 {
            throw ValidationError("--checkpoint-every takes a positive number of batches, got \(every)")
        }
        guard progressEvery > 0 else { throw ValidationError("--progress-every takes a positive number of seconds, got \(progressEvery)") }
        if let logicalRanks {
            guard deterministic else { throw ValidationError("--logical-ranks is a setting of --deterministic: add --deterministic") }
            guard logicalRanks >= 1 else { throw ValidationError("--logical-ranks takes a positive number, got \(logicalRanks)") }
        }
        if deterministic, (logicalRanks ?? Self.defaultLogicalRanks) > batchSize {
            throw ValidationError("--logical-ranks \(logicalRanks ?? Self.defaultLogicalRanks) is more than --batch-size "
                                  + "\(batchSize): every logical rank needs records of every batch; use at most \(batchSize)")
        }
        if deterministic && countAllocations {
            throw ValidationError("--count-allocations counts one rank per process: it cannot be used with --deterministic")
        }
        if keepCheckpoints < 1 {
            throw ValidationError("--keep-checkpoints takes a positive number, got \(keepCheckpoints)")
        }
        return c
    }

    /// The default number of logical ranks of --deterministic.
    static let defaultLogicalRanks = 4

    func run() throws {
        let config = try config()
        let (processes, mpi) = communicator.make()
        defer { mpi?.finalize() }
        guard deterministic else { return try runRank(config, comm: processes, mpi: mpi, describesMPI: mpi != nil) }
        // --deterministic: C logical ranks, this process's share of them on threads (Comm/LogicalRanks.swift).
        let logical = logicalRanks ?? Self.defaultLogicalRanks
        guard processes.size <= logical else {
            if processes.rank == 0 {
                writeToStandardError("esapn: error: --deterministic runs as \(logical) logical ranks, fewer than the "
                                     + "\(processes.size) processes started: add --logical-ranks \(processes.size) (or more; "
                                     + "results are then the same for every number of processes up to it)\n")
            }
            throw ExitCode(1)
        }
        let world = LogicalWorld(outer: processes, size: logical)
        if let cpus = ProcessMemory.allowedCPUs(), cpus < world.hosted.count {
            // Open MPI binds each of up to 2 processes to one core by default: the logical ranks would share it.
            writeToStandardError("esapn: warning: process \(processes.rank) hosts \(world.hosted.count) logical ranks but may "
                                 + "run on \(cpus) CPU\(cpus == 1 ? "" : "s"); give it \(world.hosted.count) (mpirun --bind-to none, "
                                 + "or --map-by slot:PE=\(world.hosted.count)), or start more processes\n")
        }
        let command = UncheckedSendable(self), describesMPI = mpi != nil
        let errors = world.run { comm in
            try command.value.runRank(config, comm: comm, mpi: nil, describesMPI: describesMPI, world: world)
        }
        if let error = errors.compactMap({ $0 }).first { throw error }
    }

    /// One rank's run: a process, or a logical rank of --deterministic on its own thread.
    func runRank(_ config: TrainConfig, comm realComm: any Communicator, mpi: MPICommunicator?, describesMPI: Bool,
                 world: LogicalWorld? = nil) throws {
        let counting = profile ? CountingCommunicator(realComm) : nil
        let comm: any Communicator = counting ?? realComm

        // Open and validate on every rank; agree on failure so that no rank waits in a collective.
        var opened: StreamTrainer?
        var failure: String?
        var counter: AllocationCounter?
        do {
            if countAllocations { counter = try AllocationCounter() }
            let stream = try StreamFile(path: data)
            opened = try StreamTrainer(config: config, stream: stream, comm: comm, profile: profile,
                                       ranksPerProcess: world?.hosted.count ?? 1)
        } catch {
            failure = "\(error)"
        }
        // Resuming is collective: every rank opened the trainer, or all stop here.
        if let resume, comm.allGather([failure == nil ? 0 : 1]).allSatisfy({ $0 == 0 }) {
            do {
                let folder = try opened!.resume(from: resume)
                if comm.rank == 0 && !quiet {
                    writeToStandardError("esapn: resumed from \(folder) after batch \(opened!.step) of \(opened!.batches)\n")
                }
            } catch {
                // Every rank has the same (agreed) error: rank 0 says it once.
                if comm.rank == 0 { writeToStandardError("esapn: error: \(error)\n") }
                mpi?.finalize()
                throw ExitCode(1)
            }
        }
        let failed = comm.allGather([failure == nil ? 0 : 1])
        if failed.contains(1) {
            // Rank 0 speaks for everyone when it failed too; otherwise each failing rank speaks.
            if let failure, comm.rank == 0 || failed[0] == 0 {
                writeToStandardError("esapn: error: " + (comm.size > 1 ? "rank \(comm.rank): " : "") + failure + "\n")
            }
            mpi?.finalize()
            throw ExitCode(1)
        }
        let trainer = opened!
        let hosts = trainer.gatherHostNames()  // once: log.txt and results.json
        if comm.rank == 0, let warning = BLASAdvice.warning() { writeToStandardError(warning) }
        // Every rank knows the mode (the same flags); only rank 0 looks at its stderr.
        let mode: ProgressMode = quiet || counter != nil ? .off : progress
        let reporter = comm.rank == 0
            ? ProgressReporter(style: mode == .off ? nil : mode == .always || isatty(2) == 0 ? .lines : .rewriting,
                               every: progressEvery)
            : nil
        if let reporter {
            do {
                try reporter.openLog(directory: output, header: logHeader(trainer: trainer, hosts: hosts, mpi: describesMPI,
                                                                          world: world))
            } catch {
                writeToStandardError("esapn: warning: \(error); the run goes on without log.txt\n")
            }
        }
        defer { reporter?.close() }
        func fail(_ message: String, status: Int32) -> ExitCode {
            reporter?.finish()
            if comm.rank == 0 { writeToStandardError(message + "\n"); reporter?.logText(message) }
            mpi?.finalize()
            return ExitCode(status)
        }
        counting?.reset()
        let operationsBefore = sgemmOperations.load(ordering: .relaxed)
        let clock = ContinuousClock()
        let start = clock.now
        if let counter {
            try trainer.run { counter.afterBatch($0, of: trainer.batches) }
        } else {
            let checkpoints = checkpointDir.map {
                CheckpointOptions(directory: $0, every: checkpointEvery ?? (checkpointMinutes == nil ? 1000 : Int.max), keep: keepCheckpoints)
            }
            if checkpoints != nil { StopSignal.install() }
            // One small all-reduce every few batches when anything needs it (BatchControl).
            let control = checkpoints != nil || mode != .off ? BatchControl(ranks: comm.size, startingAfter: trainer.step) : nil
            var lastCheckpoint = clock.now
            do {
                try trainer.run { done in
                    guard let control else { return }
                    var agreed = (signal: false, clockDue: false)
                    if control.isDue(after: done, of: trainer.batches) {
                        let clockDue = comm.rank == 0
                            && checkpointMinutes.map { (clock.now - lastCheckpoint).seconds >= 60 * $0 } ?? false
                        agreed = control.exchange(comm, after: done, metrics: trainer.metrics, signal: StopSignal.received,
                                                  clockDue: clockDue, residentBytes: trainer.localResidentBytes)
                        reporter?.update(batch: done, batches: trainer.batches, records: min(trainer.records, done * config.batchSize),
                                         totalRecords: trainer.records, seconds: (clock.now - start).seconds, control: control)
                    }
                    guard let checkpoints else { return }
                    let due = done < trainer.batches && (done % checkpoints.every == 0 || agreed.clockDue)
                    var written: String?
                    if due {
                        written = try trainer.writeCheckpoint(checkpoints)
                        lastCheckpoint = clock.now
                        reporter?.logText("[\(ProgressReporter.clock((clock.now - start).seconds))] checkpoint after batch \(done): \(written!)")
                    }
                    if agreed.signal && done < trainer.batches {
                        let folder = try written ?? trainer.writeCheckpoint(checkpoints)
                        throw StopSignal.Stopped(batch: done, batches: trainer.batches, folder: folder, directory: checkpoints.directory)
                    }
                }
            } catch let stopped as StopSignal.Stopped {
                throw fail("esapn: \(stopped)", status: StopSignal.exitCode)
            } catch {
                throw fail("esapn: error: \(error)", status: 1)
            }
        }
        reporter?.finish()
        let wall = (clock.now - start).seconds
        let runProfile = counting.map {
            // The count is the process's: its logical ranks (--deterministic) share it.
            gatherProfile(trainer, counting: $0, wall: wall,
                          operations: (sgemmOperations.load(ordering: .relaxed) - operationsBefore) / (world?.hosted.count ?? 1))
        }
        if let counter {
            // Per rank: [esapn's own, Open MPI's], gathered to rank 0 for one line.
            let all = comm.allGather([Double(counter.hotPath.own), Double(counter.hotPath.inMPI)])
            let own = stride(from: 0, to: all.count, by: 2).map { Int(all[$0]) }
            let inMPI = stride(from: 1, to: all.count, by: 2).map { Int(all[$0]) }
            func perRank(_ v: [Int]) -> String {
                comm.size > 1 ? " (per rank: " + v.map(String.init).joined(separator: ", ") + ")" : ""
            }
            if comm.rank == 0 {
                print("hot-path allocations: \(own.reduce(0, +)) over \(max(0, trainer.batches - 1)) batches\(perRank(own)); "
                      + "inside Open MPI: \(inMPI.reduce(0, +))\(perRank(inMPI))")
            }
        }

        var options = ["lr": "\(lr)", "policy_lr": "\(policyLr)", "sizes": sizes, "hidden": "\(hidden)",
                       "row_optimizer": rowOptimizer.rawValue, "stream_path": data]
        if model == .esapn {
            options["validation"] = validation.rawValue
            options["reward_window"] = "\(rewardWindow)"
            options["policy_state"] = policyState
        }
        if let testLast { options["test_last"] = "\(testLast)" }
        if let limit { options["limit"] = "\(limit)" }
        if let world { options["deterministic"] = "\(world.size) logical ranks" }
        var results = trainer.results(wallSeconds: wall, options: options, hosts: hosts)
        results.profile = runProfile
        if let world {
            results.processes = world.outer.size
            for r in results.memory.per_rank.indices {
                results.memory.per_rank[r].process = world.process(of: results.memory.per_rank[r].rank)
            }
        }
        let sizes = saveSizes ? (trainer.gatherSizes(side: .user), trainer.gatherSizes(side: .item)) : nil
        if comm.rank == 0 {
            try RunWriter.write(results, metrics: trainer.metrics, batches: trainer.batches, to: output,
                                sizes: sizes.map { ($0.0, $0.1, config.storedWidths, trainer.stream) })
            print(summary(results))
            reporter?.logText(summary(results))
            if let runProfile {
                let table = profileTable(runProfile, wall: wall, batches: trainer.batches)
                print(table)
                reporter?.logText(table)
            }
        }
    }

    /// Every rank's phase times and traffic, gathered (collective).
    func gatherProfile(_ trainer: StreamTrainer, counting: CountingCommunicator, wall: Double, operations: Int) -> RunProfile {
        let phases = Phase.allCases.count, kinds = CountingCommunicator.Kind.allCases.count
        let batches = Double(max(1, trainer.batches))
        let mine = trainer.profile.seconds + counting.calls.map { Double($0) / batches }
            + counting.bytes.map { Double($0) / batches } + [Double(operations), Double(ProcessMemory.peakRSSBytes() ?? -1)]
        let all = counting.inner.allGather(mine)
        var ranks: [RunProfile.Rank] = []
        var totalOperations = 0.0
        for r in 0..<counting.size {
            let v = Array(all[(r * mine.count)..<((r + 1) * mine.count)])
            let seconds = Dictionary(uniqueKeysWithValues: Phase.allCases.map { ($0.name, v[$0.rawValue]) })
            let kindNames = CountingCommunicator.Kind.allCases.map(\.name)
            ranks.append(RunProfile.Rank(
                rank: r, seconds: seconds, other_seconds: max(0, wall - v[0..<phases].reduce(0, +)),
                collectives_per_batch: Dictionary(uniqueKeysWithValues: zip(kindNames, v[phases..<(phases + kinds)])),
                bytes_sent_per_batch: Dictionary(uniqueKeysWithValues: zip(kindNames, v[(phases + kinds)..<(phases + 2 * kinds)])),
                peak_rss_bytes: v[phases + 2 * kinds + 1] < 0 ? nil : Int(v[phases + 2 * kinds + 1])))
            totalOperations += v[phases + 2 * kinds]
        }
        return RunProfile(per_rank: ranks, sgemm_gflop: totalOperations / 1e9, achieved_gflops: totalOperations / 1e9 / wall)
    }

    func profileTable(_ p: RunProfile, wall: Double, batches: Int) -> String {
        var out = "profile (ms per batch; rank 0" + (p.per_rank.count > 1 ? " … rank \(p.per_rank.count - 1)" : "") + ")\n"
        func row(_ name: String, _ values: [Double]) {
            out += "  " + name.padding(toLength: 20, withPad: " ", startingAt: 0)
                + values.map { String(format: "%8.3f", 1000 * $0 / Double(max(1, batches))) }.joined() + "\n"
        }
        for phase in Phase.allCases { row(phase.name, p.per_rank.map { $0.seconds[phase.name] ?? 0 }) }
        row("other", p.per_rank.map(\.other_seconds))
        row("batch", p.per_rank.map { _ in wall })
        for kind in CountingCommunicator.Kind.allCases where (p.per_rank.first?.collectives_per_batch[kind.name] ?? 0) > 0 {
            out += "  " + kind.name.padding(toLength: 20, withPad: " ", startingAt: 0)
                + p.per_rank.map { String(format: "%6.1f calls %9.0f B", $0.collectives_per_batch[kind.name] ?? 0,
                                          $0.bytes_sent_per_batch[kind.name] ?? 0) }.joined(separator: " | ") + " per batch\n"
        }
        out += String(format: "  sgemm               %.1f GFLOP in all, %.1f GFLOP/s achieved over the wall time (all ranks)\n",
                      p.sgemm_gflop, p.achieved_gflops)
        out += "  peak RSS            " + p.per_rank.map { $0.peak_rss_bytes.map { String(format: "%.0f MiB", Double($0) / 1048576) } ?? "?" }
            .joined(separator: ", ")
        return out
    }

    /// log.txt's first lines: the command, the versions, the ranks and their hosts.
    func logHeader(trainer: StreamTrainer, hosts: [String], mpi: Bool, world: LogicalWorld?) -> String {
        func quoted(_ a: String) -> String {
            a.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,+@".contains($0) } ? a : "'" + a.replacingOccurrences(of: "'", with: "'\\''") + "'"
        }
        let formatter = ISO8601DateFormatter()
        var swift = "Swift"
        #if compiler(>=6.3)
        swift += " 6.3 or later"
        #elseif compiler(>=6.2)
        swift += " 6.2"
        #elseif compiler(>=6.1)
        swift += " 6.1"
        #else
        swift += " 6.0"
        #endif
        var text = """
        esapn run log
        started    \(formatter.string(from: Date()))
        command    \(CommandLine.arguments.map(quoted).joined(separator: " "))
        esapn      \(Esapn.version), built with \(swift)
        mpi        \(mpi ? MPICommunicator.libraryVersion : "none (one local process)")
        openblas   \(BLASInfo.configuration); kernel \(BLASInfo.coreName); \(BLASInfo.threads) thread(s) per rank
        stream     \(data): \(trainer.records) records in \(trainer.batches) batches of \(batchSize)
        ranks      \(hosts.count)\(world.map { " logical ranks (--deterministic) on \($0.outer.size) process(es)" } ?? "")

        """
        for (r, host) in hosts.enumerated() {
            text += "  rank \(r) on \(host)" + (world.map { " (process \($0.process(of: r)))" } ?? "") + "\n"
        }
        if let resume { text += "resumed    from \(resume) after batch \(trainer.step)\n" }
        return text
    }

    func summary(_ r: RunResults) -> String {
        func pct(_ x: Double) -> String { String(format: "%.2f%%", 100 * x) }
        func num(_ x: Double) -> String { String(format: "%.4f", x) }
        return """
        \(r.model) \(r.task) on \(r.records) records, \(r.ranks) rank\(r.ranks == 1 ? "" : "s")\(r.processes.map { " (logical, on \($0) process\($0 == 1 ? "" : "es"))" } ?? ""), seed \(r.seed)
          test     (last \(r.test.records)): accuracy \(pct(r.test.accuracy))  loss \(num(r.test.loss))
          overall  (\(r.overall.records)): accuracy \(pct(r.overall.accuracy))  loss \(num(r.overall.loss))
          speed    \(String(format: "%.0f", r.throughput.records_per_second)) records/s, \(String(format: "%.1f", r.throughput.wall_seconds)) s
          memory   \(r.memory.total_dims) dims = \(String(format: "%.2f", 100 * r.memory.ratio))% of FIXED's \(r.memory.fixed_dims); resident \(r.memory.resident_bytes) bytes over \(r.ranks) rank(s)
          wrote    \(output)/results.json, batches.csv, by_frequency.csv, log.txt
        """
    }
}

/// A value handed to the logical ranks' threads, which only read it.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
