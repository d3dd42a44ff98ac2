// The streaming trainer (ARCHITECTURE §3, §4): global batches of B records
// cut into P contiguous slices. Per batch t (Algorithm 1):
//   1. policy stage (ESAPN, t > 0): on the validation batch, owners sample
//      actions and answer with temporarily enlarged rows; a forward gives the
//      losses whose rewards train the policy (REINFORCE);
//   2. model stage: owners choose actions by argmax and enlarge rows; the
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
    /// Dense weights of the recommendation model (transform chains, BatchNorms, MLP).
    public let arena: ParameterArena
    /// The policy networks' weights (ESAPN), trained at their own learning rate.
    public let policyArena: ParameterArena
    public let tables: [ShardedTable]          // [users, items]
    public let embeddings: [HardSelectionEmbedding]
    public let policies: [ESAPNPolicy]        // empty unless ESAPN
    public let head: DenseHead
    public let metrics: Metrics
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
    /// Rows enlarged permanently so far on this rank, per side.
    public private(set) var enlargements = [0, 0]

    public init(config: TrainConfig, stream: StreamFile, comm: any Communicator) throws {
        try config.validate(records: stream.count, ranks: comm.size)
        self.config = config
        self.stream = stream
        self.comm = comm
        sharding = Sharding(rank: comm.rank, ranks: comm.size)
        records = config.effectiveRecords(stream.count)
        batches = (records + config.batchSize - 1) / config.batchSize
        let sliceCapacity = Sharding.maxSlice(batch: config.batchSize, ranks: comm.size)
        maxSlice = sliceCapacity
        let widths = config.storedWidths
        top = widths.last!

        var layout = ParameterLayout()
        let sideParameters = [HardSelectionParameters(side: "user", widths: widths, layout: &layout),
                              HardSelectionParameters(side: "item", widths: widths, layout: &layout)]
        let headParameters = DenseHeadParameters(inputs: 2 * top, hidden: config.hidden, outputs: config.task.outputs,
                                                 layout: &layout)
        arena = ParameterArena(layout: layout, seed: config.seed)
        let totals = [stream.header.users, stream.header.items]
        tables = EmbeddingSide.allCases.map { side in
            ShardedTable(side: side, totalIDs: totals[Int(side.rawValue)], widths: widths, comm: comm, seed: config.seed,
                         maxSlice: sliceCapacity, maxBatch: config.batchSize)
        }
        embeddings = sideParameters.map { HardSelectionEmbedding(parameters: $0, maxSlice: sliceCapacity) }
        head = DenseHead(parameters: headParameters, task: config.task, maxSlice: sliceCapacity)

        var policyLayout = ParameterLayout()
        if config.model == .esapn {
            let policyParameters = ["user", "item"].map {
                SizePolicyParameters(side: $0, sizes: widths.count, state: config.policyState,
                                     hidden: config.policyHidden, layout: &policyLayout)
            }
            policyArena = ParameterArena(layout: policyLayout, seed: config.seed)
            policies = EmbeddingSide.allCases.map { side in
                let s = Int(side.rawValue)
                return ESAPNPolicy(side: side, parameters: policyParameters[s], state: config.policyState,
                                   chain: sideParameters[s], rewardWindow: config.rewardWindow,
                                   localCount: Sharding(rank: comm.rank, ranks: comm.size).localCount(of: totals[s]),
                                   maxBatch: config.batchSize, seed: config.seed)
            }
        } else {
            policyArena = ParameterArena(layout: policyLayout, seed: config.seed)
            policies = []
        }
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
        if !policies.isEmpty && b > 0 { policyStage(b, step: t) }
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
            embeddings[s].forward(table: tables[s], records: n, arena: arena, comm: comm)
            let src = embeddings[s].activated
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
            policies[s].sample(tables[s], arena: arena, policyArena: policyArena, batch: b, comm: comm)
        }
        forward(count: n)
        policyArena.zeroGradients()
        for s in 0..<2 {
            policies[s].reinforce(tables[s], losses: head.losses, records: n, policyArena: policyArena, comm: comm)
            tables[s].clearOverrides()
            tables[s].finishBatch()
        }
        comm.allReduceSum(policyArena.gradients)
        policyArena.adamStep(lr: config.policyLearningRate, step: b)
    }

    /// Algorithm 1, lines 7–10: argmax actions, permanent enlargement, score, train.
    func modelStage(_ b: Int, step t: Int) {
        let batchStart = b * config.batchSize
        let slice = sharding.slice(start: batchStart, count: min(config.batchSize, records - batchStart))
        let n = slice.count
        let lo = slice.lowerBound
        loadSlice(count: n) { lo + $0 }
        lookup(count: n, readStep: t - 1) { s in
            guard !policies.isEmpty else { return }
            enlargements[s] += policies[s].decide(tables[s], arena: arena, policyArena: policyArena, readStep: t - 1, comm: comm)
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
        arena.zeroGradients()
        head.backward(arena: arena, comm: comm)
        for s in 0..<2 {
            let dsrc = embeddings[s].dactivated
            for k in 0..<n { (dsrc + k * top).update(from: head.dinput + k * 2 * top + s * top, count: top) }
            embeddings[s].backward(table: tables[s], arena: arena, comm: comm)
            tables[s].returnGradients()
            tables[s].applyOptimizer(rowAdam, step: t)
        }
        comm.allReduceSum(arena.gradients)
        arena.adamStep(lr: config.learningRate, step: t)
        for s in 0..<2 {
            if !policies.isEmpty { policies[s].recordLosses(tables[s], losses: head.losses, records: n) }
            tables[s].finishBatch()
        }
    }
}
