// The streaming trainer (ARCHITECTURE §3, §4): global batches of B records
// cut into P contiguous slices. Per batch t (Algorithm 1):
//   1. policy stage (t > 0; ESAPN, DARTS, AutoEmb): on the validation batch,
//      owners prepare the rows (ESAPN: sampled, temporary enlargements); a
//      forward (and for soft selection a backward) gives what the policy
//      learns from (ESAPN: rewards for REINFORCE; DARTS/AutoEmb: gradients);
//   2. model stage: owners choose each ID's embedding (ESAPN: argmax and
//      permanent enlargement; AutoEmb: the controller's weights); the
//      batch is scored before any update, then backward, the row optimizer at
//      the owners, one fused all-reduce of the dense gradients and Adam.
//
// Every buffer is allocated in `init`, sized for the largest slice; a batch
// allocates nothing.
import Checkpoints
import Comm
import Data
import Embeddings
import Kernels
import Model
import Policies
import Random

public final class StreamTrainer {
    public let config: TrainConfig
    public let stream: StreamFile
    public let comm: any Communicator
    public let sharding: Sharding
    public let records: Int
    public let batches: Int
    public let maxSlice: Int
    /// Dense weights of the recommendation model (transform chains or candidate maps, BatchNorms, MLP).
    public let arena: ParameterArena
    /// The policy's or controller's weights (ESAPN, AutoEmb), trained at their own learning rate.
    public let policyArena: ParameterArena
    /// Per side, indexed by `EmbeddingSide.index`: the rows and their
    /// exchange, how they become embeddings, who decides their widths.
    public let tables: [ShardedTable]
    /// Both tables' exchange steps, each moved as one.
    public let exchange: BatchExchange
    /// The cap on this rank's resident embedding bytes (`--shard-budget`), shared by both sides' owners.
    public let budget: ShardBudget?
    public let formers: [any EmbeddingFormer]
    public let policies: [any SelectionPolicy]
    public let head: DenseHead
    public let metrics: Metrics
    let context: PolicyContext
    let rowAdam: RowAdam
    let top: Int
    /// This rank's slice of the current records, per side: IDs and frequencies
    /// (copied from the stream, or gathered for a random validation batch).
    let sliceIDs: [UnsafeMutablePointer<UInt32>]
    let sliceFrequencies: [UnsafeMutablePointer<UInt32>]
    let sliceRatings: UnsafeMutablePointer<Float>
    let validationIndices: UnsafeMutablePointer<Int>
    /// Batches completed (= the global Adam step reached).
    public internal(set) var step = 0
    /// The step a resumed run started from (0: from the start).
    public internal(set) var resumedAt = 0
    /// Rows this rank evicted to fit its budget when a resume on another number of ranks restored them.
    public internal(set) var evictedAtResume = 0
    /// At the end of the first batch: the embedding bytes this rank reported
    /// and its RssAnon, so the report can be checked against the OS over the
    /// rest of the run (every scratch buffer is zero-filled when it is made,
    /// so nothing but embeddings should grow after this). Taken before the
    /// progress callback, outside the window the allocation test counts.
    public private(set) var firstBatchMemory: (resident: Int, rssAnon: Int?)?
    /// Wall time per phase (`esapn train --profile`); off by default.
    public let profile: PhaseProfile

    /// `ranksPerProcess`: ranks this process hosts (--deterministic's logical ranks), which share its memory.
    public init(config: TrainConfig, stream: StreamFile, comm: any Communicator, profile: Bool = false,
                ranksPerProcess: Int = 1) throws {
        self.profile = PhaseProfile(enabled: profile)
        try config.validate(records: stream.count, ranks: comm.size, users: stream.header.users, items: stream.header.items)
        let estimate = MemoryEstimate(config: config, users: stream.header.users, items: stream.header.items, ranks: comm.size)
        if let available = MemoryEstimate.available(limit: config.memoryLimit, ranksPerProcess: ranksPerProcess),
           estimate.total > available {
            throw TrainConfig.Invalid("this run needs \(estimate.description), but "
                + "\(MemoryEstimate.gib(available)) is available per rank"
                + (config.memoryLimit == nil ? " (MemAvailable shared by this host's ranks)" : " (--memory-limit)")
                + ": use more ranks (rows are split across them), smaller --sizes or --hidden, or raise --memory-limit")
        }
        self.config = config
        self.stream = stream
        self.comm = comm
        let sharding = Sharding(rank: comm.rank, ranks: comm.size)
        self.sharding = sharding
        records = config.effectiveRecords(stream.count)
        batches = (records + config.batchSize - 1) / config.batchSize
        let sliceCapacity = Sharding.maxSlice(batch: config.batchSize, ranks: comm.size)
        maxSlice = sliceCapacity
        top = config.topWidth
        let totals = [stream.header.users, stream.header.items]

        // The tables: each side's rows, sharded, and their exchange.
        let tables = EmbeddingSide.allCases.map { side in
            ShardedTable(side: side, totalIDs: totals[side.index], widths: config.storedWidths, comm: comm,
                         seed: config.seed, maxSlice: sliceCapacity, maxBatch: config.batchSize,
                         extraWidth: config.extraWidth)
        }
        self.tables = tables
        exchange = BatchExchange(tables: tables, comm: comm)
        let budget = config.shardBudget.map { ShardBudget(limit: $0, stores: tables.map(\.store)) }
        self.budget = budget
        for table in tables { table.owned.budget = budget }

        // The model's pieces, side by side: how rows become embeddings, who decides their widths
        // (the policy's per-ID state lives in the side's store), the head.
        var layout = ParameterLayout()
        var policyLayout = ParameterLayout()
        let pieces = EmbeddingSide.allCases.map { side in
            ModelFactory.side(side, config: config, store: tables[side.index].store,
                              maxSlice: sliceCapacity, layout: &layout, policyLayout: &policyLayout)
        }
        formers = pieces.map(\.former)
        policies = pieces.map(\.policy)
        let headParameters = DenseHeadParameters(inputs: 2 * top, hidden: config.hidden, outputs: config.task.outputs,
                                                 layout: &layout)
        if let limit = config.shardBudget {
            let most = Self.mostOwnedPerBatch(stream: stream, records: config.effectiveRecords(stream.count),
                                              batchSize: config.batchSize, sharding: sharding, stores: tables.map(\.store))
            let least = zip(tables, most).reduce(0) { $0 + $1.0.store.localCount * 4 + $1.1 * $1.0.store.creationCostAtSmallest }
            guard limit >= least else {
                throw TrainConfig.Invalid(String(format: "--shard-budget %.3g MiB cannot hold one batch on rank %d: a batch of %d records "
                    + "brings it up to %d users and %d items, which at width %d with the index of the rank's IDs take %.3f MiB; "
                    + "use --shard-budget %.3f or more, a smaller --batch-size, or more ranks (the IDs are split across them)",
                    Double(limit) / 1_048_576, comm.rank, config.batchSize, most[0], most[1], config.storedWidths[0],
                    Double(least) / 1_048_576, (Double(least) / 1_048_576 * 1000).rounded(.up) / 1000))
            }
        }
        arena = ParameterArena(layout: layout, seed: config.seed)
        policyArena = ParameterArena(layout: policyLayout, seed: config.seed)
        head = DenseHead(parameters: headParameters, task: config.task, maxSlice: sliceCapacity)
        context = PolicyContext(arena: arena, policyArena: policyArena, comm: comm)
        metrics = Metrics(batches: batches, testStart: config.testStart(records: stream.count), ranks: comm.size, rank: comm.rank)
        rowAdam = RowAdam(kind: config.rowOptimizer, lr: config.learningRate)
        func buffer<T: FixedWidthInteger>(_: T.Type) -> UnsafeMutablePointer<T> {
            let p = UnsafeMutablePointer<T>.allocate(capacity: sliceCapacity)
            p.initialize(repeating: 0, count: sliceCapacity)
            return p
        }
        sliceIDs = [buffer(UInt32.self), buffer(UInt32.self)]
        sliceFrequencies = [buffer(UInt32.self), buffer(UInt32.self)]
        sliceRatings = .allocate(capacity: sliceCapacity)
        sliceRatings.initialize(repeating: 0, count: sliceCapacity)
        validationIndices = .allocate(capacity: max(1, config.batchSize))
        validationIndices.initialize(repeating: 0, count: max(1, config.batchSize))
    }

    /// Per side, the most distinct IDs this rank owns in any training batch of
    /// the stream (one pass over the mapped ID columns): with the index of every
    /// ID the rank owns, a budget must hold that many rows at the smallest width.
    static func mostOwnedPerBatch(stream: StreamFile, records: Int, batchSize: Int, sharding: Sharding,
                                  stores: [RowStore]) -> [Int] {
        EmbeddingSide.allCases.map { side in
            let ids = stream.ids(side)
            var seenIn = [Int32](repeating: -1, count: max(1, stores[side.index].localCount))
            var most = 0, b = 0
            while b * batchSize < records {
                var count = 0
                for k in (b * batchSize)..<min(records, (b + 1) * batchSize) {
                    let id = Int(ids[k])
                    guard sharding.owner(of: id) == sharding.rank else { continue }
                    let local = sharding.local(of: id)
                    if seenIn[local] != Int32(b) { seenIn[local] = Int32(b); count += 1 }
                }
                most = max(most, count)
                b += 1
            }
            return most
        }
    }

    deinit {
        for p in sliceIDs + sliceFrequencies { p.deallocate() }
        sliceRatings.deallocate()
        validationIndices.deallocate()
    }

    /// Runs the rest of the stream, calling `afterBatch` on every rank with
    /// the batches done after each one (progress, checkpoints); stops at its
    /// first error or at a numerical fault (NumericalFault, on every rank alike).
    public func run(afterBatch: (Int) throws -> Void = { _ in }) throws {
        while step < batches {
            try trainBatch(step)
            if step == resumedAt + 1 { firstBatchMemory = (localResidentBytes, ProcessMemory.rssAnonBytes()) }
            try afterBatch(step)
        }
        // Bring every row to the final step, so stored values are what dense Adam holds.
        for table in tables { table.owned.catchUpAll(optimizer: rowAdam, to: step) }
        metrics.reduce(comm)
    }

    // MARK: - One batch

    /// Global batch `b` at global Adam step t = b + 1.
    func trainBatch(_ b: Int) throws {
        let t = b + 1
        if policies[0].hasValidationStage && b > 0 { try profile.time(.policyStage) { try policyStage(b, step: t) } }
        try modelStage(b, step: t)
        step = t
    }

    /// Algorithm 1, lines 2–6 (ESAPN; DARTS and AutoEmb learn by gradient instead).
    func policyStage(_ b: Int, step t: Int) throws {
        // 2: the validation batch.
        let n = loadValidationBatch(b)
        // 3: owners sample actions and serve the sampled enlargements as temporary rows.
        lookup(count: n, readStep: t - 1, stamp: 2 * b) { side in
            policies[side.index].prepareValidation(tables[side.index].owned, context: context, batch: b)
        }
        // 4: the validation forward gives the rewards (soft selection: and a backward, the gradients).
        forward(count: n)
        if policies[0].validationNeedsGradients {
            backward(count: n)   // the dense part is dropped; the rows' part reaches the owners
            exchange.returnGradients()
        }
        // 5–6: each owner's policy learns from its IDs' losses or gradients; one step of the policy weights.
        policyArena.zeroGradients()
        exchange.sendRecordValues(head.losses, records: n) { policies[$0.side.index].readsRecordLosses }
        for side in EmbeddingSide.allCases {
            let table = tables[side.index], policy = policies[side.index]
            policy.learn(table.owned, context: context, batch: b)
            table.owned.clearTemporaryRows()
        }
        if policyArena.count > 0 {
            comm.allReduceSum(policyArena.gradients)
            // Summed on every rank alike: all ranks stop in the same batch, before the policy is stepped.
            if !allFinite(policyArena.gradients) { throw numericalFault(batch: b, records: n) }
            policyArena.adamStep(lr: config.policyLearningRate, step: b)
        }
        for table in tables { table.finishBatch() }
    }

    /// Algorithm 1, lines 7–10: argmax actions, permanent enlargement, score, train.
    func modelStage(_ b: Int, step t: Int) throws {
        // 7: the training batch.
        let batchStart = b * config.batchSize
        let slice = sharding.slice(start: batchStart, count: min(config.batchSize, records - batchStart))
        let n = slice.count
        loadSlice(count: n) { slice.lowerBound + $0 }
        // 8: owners choose each ID's width (ESAPN: argmax, enlarging for good) and answer.
        lookup(count: n, readStep: t - 1, stamp: 2 * b + 1) { side in
            policies[side.index].prepareModel(tables[side.index].owned, context: context, batch: b, readStep: t - 1)
            recordSizes(of: tables[side.index].owned, batch: b)
        }
        // 9: forward, and the batch is scored before any update.
        profile.time(.forward) { forward(count: n) }
        profile.time(.metrics) {
            let users = tables[EmbeddingSide.user.index].received, items = tables[EmbeddingSide.item.index].received
            for k in 0..<n {
                metrics.record(index: slice.lowerBound + k, batch: b, loss: head.losses[k], correct: head.correct[k],
                               userFrequency: Int(sliceFrequencies[EmbeddingSide.user.index][k]),
                               itemFrequency: Int(sliceFrequencies[EmbeddingSide.item.index][k]),
                               userWidth: users.width(ofRecord: k), itemWidth: items.width(ofRecord: k))
            }
        }
        // 10: backward; dense gradients all-reduced; rows stepped at their owners, the dense weights everywhere.
        profile.time(.backward) { backward(count: n) }
        profile.time(.exchange) { exchange.returnGradients() }
        profile.time(.allReduce) { comm.allReduceSum(arena.gradients) }
        // A NaN or Inf in any rank's loss reaches the dense gradients, which
        // every rank now holds summed: all ranks see it in the same batch,
        // before any row or weight is stepped.
        if !allFinite(arena.gradients) { throw numericalFault(batch: b, records: n) }
        profile.time(.rowOptimizer) { for table in tables { table.owned.applyOptimizer(rowAdam, step: t) } }
        profile.time(.denseAdam) { arena.adamStep(lr: config.learningRate, step: t) }
        #if ESAPN_CHECKS
        checkReplicas(b)
        #endif
        // The records' losses reach their IDs' owners (ESAPN's loss histories).
        profile.time(.exchange) { exchange.sendRecordValues(head.losses, records: n) { policies[$0.side.index].readsRecordLosses } }
        for side in EmbeddingSide.allCases {
            let table = tables[side.index], policy = policies[side.index]
            profile.time(.decide) { policy.finishModel(table.owned) }
            profile.time(.exchange) { table.finishBatch() }
        }
        // The batch ends within the shard's budget, however wide its own rows grew.
        if let budget { profile.time(.decide) { budget.enforce() } }
        metrics.recordResident(batch: b, bytes: localResidentBytes)
    }

    // MARK: - The steps' parts

    /// Whether no element of `values` is NaN or ±Inf: 0·x is 0 for finite x
    /// and NaN otherwise, summed sixteen lanes at a time (the order does not matter here).
    func allFinite(_ values: UnsafeMutableBufferPointer<Float>) -> Bool {
        let p = UnsafeRawPointer(values.baseAddress!), n = values.count
        var acc = SIMD16<Float>(repeating: 0)
        var i = 0
        while i + 16 <= n {
            acc += p.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self) * 0
            i += 16
        }
        var sum = acc.sum()
        while i < n { sum += values[i] * 0; i += 1 }
        return sum == 0
    }

    /// What `numericalFault` found not finite on one rank (original IDs).
    struct Culprit: BitwiseCopyable {
        enum Kind: Int32 { case none, userRow, itemRow, record }
        var kind = Kind.none
        var user: Int64 = 0, item: Int64 = 0
        var description: String {
            switch kind {
            case .none: return ""
            case .userRow: return "user \(user)'s row"
            case .itemRow: return "item \(item)'s row"
            case .record: return "the record (user \(user), item \(item))"
            }
        }
    }

    /// The fault, naming what it can (collective: every rank calls it): the
    /// IDs whose row arrived with a NaN or Inf (the usual cause: BatchNorm then
    /// spreads it to every record), else records whose loss is not finite.
    func numericalFault(batch b: Int, records n: Int) -> NumericalFault {
        let most = 4
        var mine: [Culprit] = []
        for side in EmbeddingSide.allCases {
            let rows = tables[side.index].received
            for d in 0..<rows.distinctCount where (0..<rows.width(d)).contains(where: { !rows.row(d)[$0].isFinite }) {
                let original = Int64(side == .user ? stream.userIDs[rows.globalID(d)] : stream.itemIDs[rows.globalID(d)])
                mine.append(side == .user ? Culprit(kind: .userRow, user: original) : Culprit(kind: .itemRow, item: original))
            }
        }
        func gathered() -> [Culprit] {
            let padded = Array(mine.prefix(most)) + Array(repeating: Culprit(), count: max(0, most - mine.count))
            return comm.allGather(padded).joined().filter { $0.kind != .none }
        }
        var all = gathered()
        if all.isEmpty {
            // No row arrived bad on any rank: name records whose loss is not finite instead.
            for k in 0..<n where !head.losses[k].isFinite {
                mine.append(Culprit(kind: .record, user: Int64(stream.userIDs[Int(sliceIDs[0][k])]),
                                    item: Int64(stream.itemIDs[Int(sliceIDs[1][k])])))
            }
            all = gathered()
        }
        return NumericalFault(batch: b, culprits: all.map(\.description))
    }

    /// Copies this rank's slice of stream records `index(k)` into the slice buffers.
    @inline(__always)
    func loadSlice(count n: Int, _ index: (Int) -> Int) {
        for side in EmbeddingSide.allCases {
            let ids = stream.ids(side).baseAddress!, frequencies = stream.frequencies(side).baseAddress!
            let sliceIDs = sliceIDs[side.index], sliceFrequencies = sliceFrequencies[side.index]
            for k in 0..<n {
                let g = index(k)
                sliceIDs[k] = ids[g]
                sliceFrequencies[k] = frequencies[g]
            }
        }
        let r = stream.ratings.baseAddress!
        for k in 0..<n { sliceRatings[k] = r[index(k)] }
    }

    /// Loads this rank's slice of batch `b`'s validation batch; returns its records.
    func loadValidationBatch(_ b: Int) -> Int {
        switch config.validation {
        case .last:
            let slice = sharding.slice(start: (b - 1) * config.batchSize, count: config.batchSize)
            loadSlice(count: slice.count) { slice.lowerBound + $0 }
            return slice.count
        case .random:
            // B records of the history, the same list on every rank; each takes its slice.
            let history = b * config.batchSize
            var rng = RandomStream(seed: config.seed, purpose: .validationSample, UInt64(b))
            for k in 0..<config.batchSize { validationIndices[k] = rng.below(history) }
            let slice = sharding.slice(start: 0, count: config.batchSize)
            loadSlice(count: slice.count) { validationIndices[slice.lowerBound + $0] }
            return slice.count
        }
    }

    /// Lookup for the slice in the slice buffers, both sides in each exchange:
    /// requests, the owners create and catch up rows and `decide` runs there, rows back.
    /// `stamp`: when the rows are seen (2b: batch b's policy stage, 2b + 1: its model stage), for the budget's recency.
    @inline(__always)
    func lookup(count n: Int, readStep: Int, stamp: Int, _ decide: (EmbeddingSide) -> Void) {
        profile.time(.exchange) { exchange.request(ids: sliceIDs, frequencies: sliceFrequencies, count: n) }
        // Both sides' rows of this lookup are seen before either admits new IDs, so none of them is evicted.
        for table in tables { table.owned.touchRows(stamp: stamp) }
        for side in EmbeddingSide.allCases {
            profile.time(.decide) {
                tables[side.index].owned.prepareRows(initialSize: 0, readStep: readStep, optimizer: rowAdam, stamp: stamp)
                decide(side)
            }
        }
        profile.time(.exchange) { exchange.answer() }
    }

    /// Forward of the slice: embeddings of both sides into the head, labels, head.
    func forward(count n: Int) {
        for side in EmbeddingSide.allCases {
            let s = side.index
            formers[s].forward(rows: tables[s].received, arena: arena, comm: comm)
            let src = formers[s].activated
            for k in 0..<n { (head.input + k * 2 * top + s * top).update(from: src + k * top, count: top) }
        }
        switch config.task {
        case .binary: for k in 0..<n { head.binaryLabels[k] = Task.binaryLabel(sliceRatings[k]) }
        case .multiclass: for k in 0..<n { head.classLabels[k] = Task.classLabel(sliceRatings[k]) }
        }
        head.forward(records: n, arena: arena, comm: comm)
    }

    /// Backward of the summed loss of the slice: dense gradients into `arena`,
    /// row (and extra) gradients into the tables' received views.
    func backward(count n: Int) {
        arena.zeroGradients()
        head.backward(arena: arena, comm: comm)
        for side in EmbeddingSide.allCases {
            let s = side.index
            let dsrc = formers[s].dactivated
            for k in 0..<n { (dsrc + k * top).update(from: head.dinput + k * 2 * top + s * top, count: top) }
            formers[s].backward(rows: tables[s].received, arena: arena, comm: comm)
        }
    }

    /// Adds the size every owned ID of this batch will be read at to the batch's digest.
    @inline(__always)
    func recordSizes(of owned: OwnedRows, batch b: Int) {
        for o in 0..<owned.count {
            metrics.recordSize(batch: b, side: owned.side, globalID: owned.globalID(o), sizeIndex: owned.sizeIndex(o))
        }
    }

    #if ESAPN_CHECKS
    /// Replicas took the same steps, so their dense weights agree bit for bit (ARCHITECTURE §4).
    func checkReplicas(_ b: Int) {
        let mine = arena.checksum()
        let all = comm.allGather(mine)
        precondition(all.allSatisfy { $0 == mine }, "batch \(b): dense weights differ between ranks (checksums \(all))")
    }
    #endif
}

extension StreamFile {
    /// The column of `side`'s dense IDs, one per record.
    func ids(_ side: EmbeddingSide) -> UnsafeBufferPointer<UInt32> { side == .user ? users : items }
    /// The column of `side`'s running frequencies (the ID's count so far, this record included).
    func frequencies(_ side: EmbeddingSide) -> UnsafeBufferPointer<UInt32> {
        side == .user ? userFrequencies : itemFrequencies
    }
}

/// A NaN or an Inf reached the summed dense gradients (the model's in the
/// model stage, the policy's or controller's in the policy stage): the run
/// stops with the batch and what it found not finite. Nothing is stepped
/// after the check: neither rows nor dense weights nor the policy's. What
/// came before it in that batch stays: rows created for the batch's new IDs,
/// rows brought up to the previous step (catch-up Adam's lazy part), and
/// DARTS' architecture weights, which learn at their owners in the policy
/// stage. Checkpoints already written stay as they are.
public struct NumericalFault: Error, CustomStringConvertible {
    public let batch: Int
    /// What was found not finite (original IDs; up to 4 per rank).
    public let culprits: [String]
    public var description: String {
        "a NaN or Inf reached the gradients in batch \(batch)"
            + (culprits.isEmpty ? "" : "; not finite: " + culprits.joined(separator: ", "))
            + "; lower --lr, or resume from the last checkpoint"
    }
}
