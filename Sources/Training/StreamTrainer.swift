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
import Comm
import Data
import Embeddings
import Kernels
import Policies
import Random

public struct TrainingProgress: Sendable {
    public var batch: Int
    public var batches: Int
    public var records: Int
    public var seconds: Double
    /// Accuracy so far over this rank's records.
    public var runningAccuracy: Double
}

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
    public let tables: [ShardedTable]              // [users, items]
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
    public private(set) var step = 0
    /// At the end of the first batch: the embedding bytes this rank reported
    /// and its RssAnon, so the report can be checked against the OS over the
    /// rest of the run (every scratch buffer is zero-filled when it is made,
    /// so nothing but embeddings should grow after this). Taken before the
    /// progress callback, outside the window the allocation test counts.
    public private(set) var firstBatchMemory: (resident: Int, rssAnon: Int?)?

    public init(config: TrainConfig, stream: StreamFile, comm: any Communicator) throws {
        try config.validate(records: stream.count, ranks: comm.size)
        self.config = config
        self.stream = stream
        self.comm = comm
        let sharding = Sharding(rank: comm.rank, ranks: comm.size)
        self.sharding = sharding
        records = config.effectiveRecords(stream.count)
        batches = (records + config.batchSize - 1) / config.batchSize
        let sliceCapacity = Sharding.maxSlice(batch: config.batchSize, ranks: comm.size)
        maxSlice = sliceCapacity
        top = config.sizes.last!
        let totals = [stream.header.users, stream.header.items]
        let sideNames = ["user", "item"]

        // The model's pieces: how rows are stored, how they become embeddings, who decides.
        var layout = ParameterLayout()
        var policyLayout = ParameterLayout()
        let storedWidths = config.storedWidths
        var attachment = 0
        var makeFormer: [(Int) -> any EmbeddingFormer] = []
        var makePolicy: [(ShardedTable) -> any SelectionPolicy] = []
        switch config.model {
        case .fixed, .esapn:
            let chains = sideNames.map { HardSelectionParameters(side: $0, widths: storedWidths, layout: &layout) }
            makeFormer = chains.map { c in { HardSelectionEmbedding(parameters: c, maxSlice: $0) } }
            if config.model == .esapn {
                let nets = EmbeddingSide.allCases.map {
                    ESAPNPolicy.parameters(side: $0, sizes: storedWidths.count, state: config.policyState,
                                           hidden: config.policyHidden, layout: &policyLayout)
                }
                makePolicy = EmbeddingSide.allCases.map { side in
                    let s = Int(side.rawValue)
                    return { table in
                        ESAPNPolicy(side: side, parameters: nets[s], state: config.policyState, chain: chains[s],
                                    rewardWindow: config.rewardWindow, localCount: table.store.localCount,
                                    maxBatch: config.batchSize, seed: config.seed, fault: config.injectedFault)
                    }
                }
            } else {
                makePolicy = [{ _ in FixedPolicy() }, { _ in FixedPolicy() }]
            }
        case .darts, .autoemb:
            let candidates = sideNames.map { SoftSelectionParameters(side: $0, widths: config.sizes, layout: &layout) }
            attachment = config.sizes.count
            makeFormer = candidates.map { c in { SoftSelectionEmbedding(parameters: c, maxSlice: $0) } }
            if config.model == .darts {
                makePolicy = [0, 1].map { _ in
                    { table in
                        DARTSPolicy(candidates: config.sizes.count, localCount: table.store.localCount,
                                    learningRate: config.policyLearningRate, optimizer: config.rowOptimizer)
                    }
                }
            } else {
                let nets = EmbeddingSide.allCases.map {
                    AutoEmbPolicy.parameters(side: $0, candidates: config.sizes.count, hidden: config.policyHidden,
                                             layout: &policyLayout)
                }
                makePolicy = nets.map { net in
                    { table in AutoEmbPolicy(parameters: net, localCount: table.store.localCount, maxBatch: config.batchSize) }
                }
            }
        }
        let headParameters = DenseHeadParameters(inputs: 2 * top, hidden: config.hidden, outputs: config.task.outputs,
                                                 layout: &layout)
        arena = ParameterArena(layout: layout, seed: config.seed)
        policyArena = ParameterArena(layout: policyLayout, seed: config.seed)
        tables = EmbeddingSide.allCases.map { side in
            ShardedTable(side: side, totalIDs: totals[Int(side.rawValue)], widths: storedWidths, comm: comm, seed: config.seed,
                         maxSlice: sliceCapacity, maxBatch: config.batchSize, attachmentWidth: attachment,
                         fault: config.injectedFault)
        }
        // Rows are created at width index 0: room for every local ID there now,
        // so creating rows never grows a slab inside the per-batch path.
        for table in tables { table.store.reserve(rows: table.store.localCount, size: 0) }
        formers = makeFormer.map { $0(sliceCapacity) }
        policies = [makePolicy[0](tables[0]), makePolicy[1](tables[1])]
        head = DenseHead(parameters: headParameters, task: config.task, maxSlice: sliceCapacity)
        context = PolicyContext(arena: arena, policyArena: policyArena, comm: comm)
        metrics = Metrics(batches: batches, testStart: config.testStart(records: stream.count))
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

    deinit {
        for p in sliceIDs + sliceFrequencies { p.deallocate() }
        sliceRatings.deallocate()
        validationIndices.deallocate()
    }

    /// Runs the whole stream; `progress` is called on every rank after each batch.
    public func run(progress: ((TrainingProgress) -> Void)? = nil) {
        let clock = ContinuousClock()
        let start = clock.now
        while step < batches {
            trainBatch(step)
            if step == 1 { firstBatchMemory = (localResidentBytes, ProcessMemory.rssAnonBytes()) }
            if let progress {
                let d = clock.now - start
                progress(TrainingProgress(batch: step, batches: batches, records: min(records, step * config.batchSize),
                                          seconds: Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18,
                                          runningAccuracy: metrics.localRecords > 0
                                              ? Double(metrics.localCorrect) / Double(metrics.localRecords) : 0))
            }
        }
        // Bring every row to the final step, so stored values are what dense Adam holds.
        for table in tables { table.catchUpAll(optimizer: rowAdam, to: step) }
        metrics.reduce(comm)
    }

    // MARK: - One batch

    /// Global batch `b` at global Adam step t = b + 1.
    func trainBatch(_ b: Int) {
        let t = b + 1
        if policies[0].hasValidationStage && b > 0 { policyStage(b, step: t) }
        modelStage(b, step: t)
        step = t
    }

    /// Copies this rank's slice of stream records `indices(k)` into the slice buffers.
    @inline(__always)
    func loadSlice(count n: Int, _ index: (Int) -> Int) {
        let u = stream.users.baseAddress!, i = stream.items.baseAddress!
        let uf = stream.userFrequencies.baseAddress!, itf = stream.itemFrequencies.baseAddress!
        let r = stream.ratings.baseAddress!
        for k in 0..<n {
            let g = index(k)
            sliceIDs[0][k] = u[g]; sliceIDs[1][k] = i[g]
            sliceFrequencies[0][k] = uf[g]; sliceFrequencies[1][k] = itf[g]
            sliceRatings[k] = r[g]
        }
    }

    /// Lookup for the slice in the slice buffers: requests, owner preparation
    /// (`decide` runs at the owner before it answers), rows back.
    @inline(__always)
    func lookup(count n: Int, readStep: Int, _ decide: (Int) -> Void) {
        for s in 0..<2 {
            tables[s].request(ids: sliceIDs[s], frequencies: sliceFrequencies[s], count: n)
            tables[s].prepareOwnedRows(initialSize: 0, readStep: readStep, optimizer: rowAdam)
            decide(s)
            tables[s].answer()
        }
    }

    /// Forward of the slice: embeddings of both sides into the head, labels, head.
    func forward(count n: Int) {
        for s in 0..<2 {
            formers[s].forward(table: tables[s], records: n, arena: arena, comm: comm)
            let src = formers[s].activated
            for k in 0..<n { (head.input + k * 2 * top + s * top).update(from: src + k * top, count: top) }
        }
        switch config.task {
        case .binary: for k in 0..<n { head.binaryLabels[k] = Task.binaryLabel(sliceRatings[k]) }
        case .multiclass: for k in 0..<n { head.classLabels[k] = Task.classLabel(sliceRatings[k]) }
        }
        head.forward(records: n, arena: arena, comm: comm)
    }

    /// Algorithm 1, lines 2–6: sample actions on the validation batch, enlarge
    /// temporarily, compute rewards, one REINFORCE step of the policies.
    func policyStage(_ b: Int, step t: Int) {
        let n: Int
        switch config.validation {
        case .last:
            let start = (b - 1) * config.batchSize
            let slice = sharding.slice(start: start, count: config.batchSize)
            n = slice.count
            loadSlice(count: n) { slice.lowerBound + $0 }
        case .random:
            // B records of the history, the same list on every rank; each takes its slice.
            let history = b * config.batchSize
            var rng = RandomStream(seed: config.seed, purpose: .validationSample, UInt64(b))
            for k in 0..<config.batchSize { validationIndices[k] = rng.below(history) }
            let slice = sharding.slice(start: 0, count: config.batchSize)
            n = slice.count
            loadSlice(count: n) { validationIndices[slice.lowerBound + $0] }
        }
        lookup(count: n, readStep: t - 1) { s in
            policies[s].prepareValidation(tables[s], context: context, batch: b)
        }
        forward(count: n)
        if policies[0].validationNeedsGradients {
            // The gradient reaches the owners with the rows; the dense part is dropped.
            backward(count: n)
            for s in 0..<2 { tables[s].returnGradients() }
        }
        policyArena.zeroGradients()
        for s in 0..<2 {
            policies[s].learn(tables[s], context: context, losses: head.losses, records: n, batch: b)
            tables[s].clearOverrides()
            tables[s].finishBatch()
        }
        if policyArena.count > 0 {
            comm.allReduceSum(policyArena.gradients)
            policyArena.adamStep(lr: config.policyLearningRate, step: b)
        }
    }

    /// Backward of the summed loss of the slice: dense gradients into `arena`,
    /// row (and attachment) gradients into the tables' send buffers.
    func backward(count n: Int) {
        arena.zeroGradients()
        head.backward(arena: arena, comm: comm)
        for s in 0..<2 {
            let dsrc = formers[s].dactivated
            for k in 0..<n { (dsrc + k * top).update(from: head.dinput + k * 2 * top + s * top, count: top) }
            formers[s].backward(table: tables[s], arena: arena, comm: comm)
        }
    }

    /// Adds the size every owned ID of this batch will be read at to the batch's digest.
    @inline(__always)
    func recordSizes(of table: ShardedTable, side s: Int, batch b: Int) {
        for o in 0..<table.ownedCount {
            let local = Int(table.ownedLocal[o])
            metrics.recordSize(batch: b, side: s, globalID: table.sharding.global(of: local),
                               sizeIndex: table.store.sizeIndex(of: local)!)
        }
    }

    /// Algorithm 1, lines 7–10: argmax actions, permanent enlargement, score, train.
    func modelStage(_ b: Int, step t: Int) {
        let batchStart = b * config.batchSize
        let slice = sharding.slice(start: batchStart, count: min(config.batchSize, records - batchStart))
        let n = slice.count
        let lo = slice.lowerBound
        loadSlice(count: n) { lo + $0 }
        lookup(count: n, readStep: t - 1) { s in
            policies[s].prepareModel(tables[s], context: context, batch: b, readStep: t - 1)
            recordSizes(of: tables[s], side: s, batch: b)
        }
        forward(count: n)

        // Score before any update.
        let users = tables[0], items = tables[1]
        for k in 0..<n {
            metrics.record(index: lo + k, batch: b, loss: head.losses[k], correct: head.correct[k],
                           userFrequency: Int(sliceFrequencies[0][k]), itemFrequency: Int(sliceFrequencies[1][k]),
                           userWidth: users.store.widths[Int(users.distinctSize[Int(users.recordDistinct[k])])],
                           itemWidth: items.store.widths[Int(items.distinctSize[Int(items.recordDistinct[k])])])
        }

        // Backward, rows to owners, dense all-reduce, optimizer steps.
        backward(count: n)
        for s in 0..<2 {
            tables[s].returnGradients()
            tables[s].applyOptimizer(rowAdam, step: t)
        }
        comm.allReduceSum(arena.gradients)
        arena.adamStep(lr: config.learningRate, step: t)
        for s in 0..<2 {
            policies[s].finishModel(tables[s], losses: head.losses, records: n)
            tables[s].finishBatch()
        }
    }
}
