// One training run, as the CLI's `esapn train` and a library caller start it:
// opening the stream and the trainer on every rank (agreed, so that no rank
// waits in a collective a failed one will not make), resuming, the batch loop
// with its checkpoint cadence, stop signals and the small per-few-batches
// all-reduce (BatchControl), progress on rank 0, the profile, log.txt, and
// the run folder. `TrainingRun.launch` runs it on the processes it is given,
// or, with --deterministic, as C logical ranks on threads over them.
//
// Every rank runs the same sequence of collectives; a failure anywhere ends
// every rank with a `RunFailure` that says which rank prints it.
import Checkpoints
import Comm
import Data
import Embeddings
import Foundation
import Kernels

/// How a run ended when it did not finish: the message (without "esapn: "),
/// the exit status, and whether this rank is the one to print it.
public struct RunFailure: Error, CustomStringConvertible {
    public let description: String
    public let status: Int32
    public let speaks: Bool
}

/// What a finished run gives its caller (on every rank).
public struct RunOutcome: Sendable {
    public let results: RunResults
    /// Batches of the stream (the run's whole length, resumed or not).
    public let batches: Int
    /// The lines rank 0 prints: the summary, and with --profile the profile table.
    public let printed: [String]
    /// --count-allocations: per rank, allocator calls of esapn and of Open MPI between batch 1 and the end.
    public let allocations: [(own: Int, inMPI: Int)]?
}

public final class TrainingRun {
    public let config: TrainConfig
    public let options: RunOptions
    /// The run's communicator (counting with --profile).
    public let comm: any Communicator
    public let trainer: StreamTrainer
    private let counting: CountingCommunicator?
    private let world: LogicalWorld?
    private let counter: AllocationCounter?
    private let hosts: [String]
    private let reporter: ProgressReporter?

    // MARK: - Starting

    /// Runs on `processes` (collective): plain, or with `options.logicalRanks`
    /// as that many logical ranks hosted by the processes. Returns the outcome
    /// where logical rank 0 ran (rank 0 of `processes`), nil elsewhere.
    public static func launch(config: TrainConfig, options: RunOptions, processes: any Communicator) throws -> RunOutcome? {
        guard let logical = options.logicalRanks else {
            let outcome = try TrainingRun(config: config, options: options, comm: processes).run()
            return processes.rank == 0 ? outcome : nil
        }
        // --deterministic: C logical ranks, this process's share of them on threads (Comm/LogicalWorld.swift).
        guard processes.size <= logical else {
            throw RunFailure(description: "error: --deterministic runs as \(logical) logical ranks, fewer than the "
                             + "\(processes.size) processes started: add --logical-ranks \(processes.size) (or more; "
                             + "results are then the same for every number of processes up to it)",
                             status: 1, speaks: processes.rank == 0)
        }
        let world = LogicalWorld(outer: processes, size: logical)
        if let cpus = ProcessMemory.allowedCPUs(), cpus < world.hosted.count {
            // Open MPI binds each of up to 2 processes to one core by default: the logical ranks would share it.
            writeToStandardError("esapn: warning: process \(processes.rank) hosts \(world.hosted.count) logical ranks but may "
                                 + "run on \(cpus) CPU\(cpus == 1 ? "" : "s"); give it \(world.hosted.count) (mpirun --bind-to none, "
                                 + "or --map-by slot:PE=\(world.hosted.count)), or start more processes\n")
        }
        let outcomes = Locked<[Int: RunOutcome]>([:])
        let errors = world.run { comm in
            let outcome = try TrainingRun(config: config, options: options, comm: comm, world: world).run()
            if comm.rank == 0 { outcomes.update { $0[0] = outcome } }
        }
        // Logical rank 0's failure speaks for the run; the others' only when it did not fail.
        if let error = errors[0] ?? errors.compactMap({ $0 }).first { throw error }
        return outcomes.value[0]
    }

    /// Opens the run on every rank (collective): the stream, the trainer, a resume.
    public init(config: TrainConfig, options: RunOptions, comm realComm: any Communicator, world: LogicalWorld? = nil) throws {
        self.config = config
        self.options = options
        self.world = world
        counting = options.profile ? CountingCommunicator(realComm) : nil
        let comm: any Communicator = counting ?? realComm
        self.comm = comm
        var opened: StreamTrainer?
        var counter: AllocationCounter?
        do {
            try comm.agree {
                if options.countAllocations { counter = try AllocationCounter() }
                opened = try StreamTrainer(config: config, stream: try StreamFile(path: options.data), comm: comm,
                                           profile: options.profile, ranksPerProcess: world?.hosted.count ?? 1)
            }
            if let resume = options.resume {
                let folder = try opened!.resume(from: resume)
                // On another number of ranks the budget was applied again: say what it evicted.
                let evicted = config.shardBudget == nil ? 0 : Int(comm.sum(Double(opened!.evictedAtResume)))
                if comm.rank == 0 && options.progress != .off {
                    writeToStandardError("esapn: resumed from \(folder) after batch \(opened!.step) of \(opened!.batches)\n")
                }
                if comm.rank == 0 && evicted > 0 {
                    writeToStandardError("esapn: the checkpoint's rows did not all fit --shard-budget on \(comm.size) ranks: "
                                         + "\(evicted) least recently seen rows were evicted (results.json: budget.evicted_at_resume)\n")
                }
            }
        } catch {
            throw RunFailure(description: "error: \(error)", status: 1, speaks: comm.rank == 0)
        }
        trainer = opened!
        self.counter = counter
        hosts = trainer.gatherHostNames()  // once: log.txt and results.json
        if comm.rank == 0 { for w in options.warnings { writeToStandardError(w) } }
        // Every rank knows the mode (the same options); only rank 0 looks at its stderr.
        let mode = counter != nil ? .off : options.progress
        reporter = comm.rank == 0
            ? ProgressReporter(style: mode == .off ? nil : mode == .always || isatty(2) == 0 ? .lines : .rewriting,
                               every: options.progressEvery)
            : nil
        reporter?.budgeted = config.shardBudget != nil
        if let reporter {
            do {
                try reporter.openLog(directory: options.output, header: logHeader())
            } catch {
                writeToStandardError("esapn: warning: \(error); the run goes on without log.txt\n")
            }
        }
    }

    deinit { reporter?.close() }

    // MARK: - The run

    /// Trains to the end of the stream and writes the run folder (rank 0);
    /// collective. Throws a RunFailure when the run stops early (an error,
    /// a numerical fault, a stop signal after its checkpoint).
    public func run() throws -> RunOutcome {
        counting?.reset()
        let operationsBefore = sgemmOperations.load(ordering: .relaxed)
        let clock = ContinuousClock()
        let start = clock.now
        do {
            if let counter {
                try trainer.run { counter.afterBatch($0, of: self.trainer.batches) }
            } else {
                try loop(clock: clock, start: start)
            }
        } catch let stopped as StopSignal.Stopped {
            throw fail("\(stopped)", status: StopSignal.exitCode)
        } catch let failure as RunFailure {
            throw failure
        } catch {
            throw fail("error: \(error)", status: 1)
        }
        reporter?.finish()
        let wall = (clock.now - start).seconds
        // The count is the process's: its logical ranks (--deterministic) share it.
        let operations = (sgemmOperations.load(ordering: .relaxed) - operationsBefore) / (world?.hosted.count ?? 1)
        let profile = counting.map { gatherProfile(counting: $0, wall: wall, operations: operations) }
        let allocations = counter.map { c in
            comm.allGather(HotPathCount(own: Int(c.hotPath.own), inMPI: Int(c.hotPath.inMPI))).map { (own: $0.own, inMPI: $0.inMPI) }
        }
        var options = config.reportedOptions(streamPath: self.options.data)
        if let world { options["deterministic"] = "\(world.size) logical ranks" }
        var results = trainer.results(wallSeconds: wall, options: options, hosts: hosts)
        results.profile = profile
        if let world {
            results.processes = world.outer.size
            for r in results.memory.per_rank.indices {
                results.memory.per_rank[r].process = world.process(of: results.memory.per_rank[r].rank)
            }
        }
        let sizes = self.options.saveSizes ? (trainer.gatherSizes(side: .user), trainer.gatherSizes(side: .item)) : nil
        var printed = [results.summary(output: self.options.output)]
        if let profile { printed.append(profile.table(wall: wall, batches: trainer.batches)) }
        if comm.rank == 0 {
            do {
                try RunWriter.write(results, metrics: trainer.metrics, batches: trainer.batches, to: self.options.output,
                                    sizes: sizes.map { ($0.0, $0.1, config.storedWidths, trainer.stream) })
            } catch {
                throw RunFailure(description: "error: \(error)", status: 1, speaks: true)
            }
            for text in printed { reporter?.logText(text) }
        }
        return RunOutcome(results: results, batches: trainer.batches, printed: printed, allocations: allocations)
    }

    /// The batch loop with checkpoints every N batches or M minutes, and a
    /// stop (signal or caller) agreed every few batches.
    private func loop(clock: ContinuousClock, start: ContinuousClock.Instant) throws {
        let checkpoints = options.checkpoints
        if checkpoints != nil { StopSignal.install() }
        // One small all-reduce every few batches when anything needs it (BatchControl).
        let control = checkpoints != nil || options.progress != .off
            ? BatchControl(ranks: comm.size, startingAfter: trainer.step) : nil
        var lastCheckpoint = clock.now
        let trainer = self.trainer
        try trainer.run { done in
            guard let control else { return }
            var agreed = (signal: false, clockDue: false)
            if control.isDue(after: done, of: trainer.batches) {
                let clockDue = comm.rank == 0
                    && options.checkpointMinutes.map { (clock.now - lastCheckpoint).seconds >= 60 * $0 } ?? false
                agreed = control.exchange(comm, after: done, metrics: trainer.metrics,
                                          signal: StopSignal.received || options.stopRequested(done),
                                          clockDue: clockDue, residentBytes: trainer.localResidentBytes,
                                          budgetCounts: trainer.tables.reduce(EvictionCounts()) { $0 + $1.store.counts })
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
    }

    /// Ends the progress line and logs `message`; the failure rank 0 prints.
    private func fail(_ message: String, status: Int32) -> RunFailure {
        reporter?.finish()
        reporter?.logText("esapn: " + message)
        return RunFailure(description: message, status: status, speaks: comm.rank == 0)
    }

    // MARK: - Reports

    private struct HotPathCount: BitwiseCopyable { var own: Int, inMPI: Int }

    /// What one rank measured under --profile, before it is named.
    private struct ProfileFigures: BitwiseCopyable {
        var operations = 0.0, peakRSSBytes = -1
    }

    /// Every rank's phase times and traffic, gathered (collective).
    private func gatherProfile(counting: CountingCommunicator, wall: Double, operations: Int) -> RunProfile {
        let batches = Double(max(1, trainer.batches))
        let inner = counting.inner
        let seconds = inner.allGather(trainer.profile.seconds)
        let calls = inner.allGather(counting.calls.map { Double($0) / batches })
        let bytes = inner.allGather(counting.bytes.map { Double($0) / batches })
        let figures = inner.allGather(ProfileFigures(operations: Double(operations), peakRSSBytes: ProcessMemory.peakRSSBytes() ?? -1))
        let kinds = CountingCommunicator.Kind.allCases.map(\.name)
        let ranks = (0..<counting.size).map { r in
            RunProfile.Rank(rank: r, seconds: Dictionary(uniqueKeysWithValues: zip(Phase.allCases.map(\.name), seconds[r])),
                            other_seconds: max(0, wall - seconds[r].reduce(0, +)),
                            collectives_per_batch: Dictionary(uniqueKeysWithValues: zip(kinds, calls[r])),
                            bytes_sent_per_batch: Dictionary(uniqueKeysWithValues: zip(kinds, bytes[r])),
                            peak_rss_bytes: figures[r].peakRSSBytes < 0 ? nil : figures[r].peakRSSBytes)
        }
        let total = figures.reduce(0) { $0 + $1.operations }
        return RunProfile(per_rank: ranks, sgemm_gflop: total / 1e9, achieved_gflops: total / 1e9 / wall)
    }

    /// log.txt's first lines: the command, the versions, the ranks and their hosts.
    private func logHeader() -> String {
        func quoted(_ a: String) -> String {
            a.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,+@".contains($0) } ? a : "'" + a.replacingOccurrences(of: "'", with: "'\\''") + "'"
        }
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
        started    \(ISO8601DateFormatter().string(from: Date()))
        command    \(options.commandLine.map(quoted).joined(separator: " "))
        esapn      \(options.version), built with \(swift)
        mpi        \(options.mpiLibrary ?? "none (one local process)")
        openblas   \(BLASInfo.configuration); kernel \(BLASInfo.coreName); \(BLASInfo.threads) thread(s) per rank
        stream     \(options.data): \(trainer.records) records in \(trainer.batches) batches of \(config.batchSize)
        ranks      \(hosts.count)\(world.map { " logical ranks (--deterministic) on \($0.outer.size) process(es)" } ?? "")

        """
        for (r, host) in hosts.enumerated() {
            text += "  rank \(r) on \(host)" + (world.map { " (process \($0.process(of: r)))" } ?? "") + "\n"
        }
        if let resume = options.resume { text += "resumed    from \(resume) after batch \(trainer.step)\n" }
        return text
    }
}

/// A value behind a lock, for the logical ranks' threads.
final class Locked<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    var value: T { lock.lock(); defer { lock.unlock() }; return stored }
    func update(_ body: (inout T) -> Void) { lock.lock(); body(&stored); lock.unlock() }
}
