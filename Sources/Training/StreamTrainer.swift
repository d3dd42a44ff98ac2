// The streaming trainer (ARCHITECTURE §3, §4): global batches of B records
// cut into P contiguous slices; per batch, per side, the sharded lookup; then
// forward, scoring before any update, backward, the row optimizer at the
// owners and one fused all-reduce of the dense gradients.
//
// Every buffer is allocated in `init`, sized for the largest slice; `step`
// allocates nothing.
import Comm
import Data
import Embeddings
import Kernels
import Policies

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
    public let arena: ParameterArena
    public let tables: [ShardedTable]          // [users, items]
    public let embeddings: [HardSelectionEmbedding]
    public let head: DenseHead
    public let metrics: Metrics
    let rowAdam: RowAdam
    /// Stream columns of each side: IDs and frequencies.
    let idColumns: [UnsafePointer<UInt32>]
    let frequencyColumns: [UnsafePointer<UInt32>]
    let top: Int
    /// Batches completed (= the global Adam step reached).
    public private(set) var step = 0

    public init(config: TrainConfig, stream: StreamFile, comm: any Communicator) throws {
        try config.validate(records: stream.count, ranks: comm.size)
        self.config = config
        self.stream = stream
        self.comm = comm
        sharding = Sharding(rank: comm.rank, ranks: comm.size)
        records = config.effectiveRecords(stream.count)
        batches = (records + config.batchSize - 1) / config.batchSize
        maxSlice = Sharding.maxSlice(batch: config.batchSize, ranks: comm.size)
        let widths = config.storedWidths
        top = widths.last!

        var layout = ParameterLayout()
        let sideParameters = [HardSelectionParameters(side: "user", widths: widths, layout: &layout),
                              HardSelectionParameters(side: "item", widths: widths, layout: &layout)]
        let headParameters = DenseHeadParameters(inputs: 2 * top, hidden: config.hidden, outputs: config.task.outputs,
                                                 layout: &layout)
        arena = ParameterArena(layout: layout, seed: config.seed)
        tables = [
            ShardedTable(side: .user, totalIDs: stream.header.users, widths: widths, comm: comm, seed: config.seed,
                         maxSlice: maxSlice, maxBatch: config.batchSize),
            ShardedTable(side: .item, totalIDs: stream.header.items, widths: widths, comm: comm, seed: config.seed,
                         maxSlice: maxSlice, maxBatch: config.batchSize),
        ]
        // Rows are created at width index 0 (trainBatch): room for every local ID
        // there now, so creating rows never grows a slab inside the hot path.
        for table in tables { table.store.reserve(rows: table.store.localCount, size: 0) }
        let sliceCapacity = maxSlice
        embeddings = sideParameters.map { HardSelectionEmbedding(parameters: $0, maxSlice: sliceCapacity) }
        idColumns = [stream.users.baseAddress!, stream.items.baseAddress!]
        frequencyColumns = [stream.userFrequencies.baseAddress!, stream.itemFrequencies.baseAddress!]
        head = DenseHead(parameters: headParameters, task: config.task, maxSlice: maxSlice)
        metrics = Metrics(batches: batches, testStart: config.testStart(records: stream.count))
        rowAdam = RowAdam(kind: config.rowOptimizer, lr: config.learningRate)
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

    /// Global batch `b`: the model stage of Algorithm 1 at global Adam step t = b + 1.
    func trainBatch(_ b: Int) {
        let t = b + 1
        let batchStart = b * config.batchSize
        let slice = sharding.slice(start: batchStart, count: min(config.batchSize, records - batchStart))
        let n = slice.count
        let lo = slice.lowerBound

        // Lookup: requests to owners, owners prepare rows, rows come back at native width.
        for s in 0..<2 {
            tables[s].request(ids: idColumns[s] + lo, frequencies: frequencyColumns[s] + lo, count: n)
            tables[s].prepareOwnedRows(initialSize: 0, readStep: t - 1, optimizer: rowAdam)
            tables[s].answer()
        }

        // Forward: each side's embeddings into the head's input (n, 2·top).
        for s in 0..<2 {
            embeddings[s].forward(table: tables[s], records: n, arena: arena, comm: comm)
            let src = embeddings[s].activated
            for k in 0..<n { (head.input + k * 2 * top + s * top).update(from: src + k * top, count: top) }
        }
        let ratings = stream.ratings.baseAddress! + lo
        switch config.task {
        case .binary: for k in 0..<n { head.binaryLabels[k] = Task.binaryLabel(ratings[k]) }
        case .multiclass: for k in 0..<n { head.classLabels[k] = Task.classLabel(ratings[k]) }
        }
        head.forward(records: n, arena: arena, comm: comm)

        // Score before any update.
        let users = tables[0], items = tables[1]
        for k in 0..<n {
            metrics.record(index: lo + k, batch: b, loss: head.losses[k], correct: head.correct[k],
                           userFrequency: Int(frequencyColumns[0][lo + k]), itemFrequency: Int(frequencyColumns[1][lo + k]),
                           userWidth: users.store.widths[Int(users.distinctSize[Int(users.recordDistinct[k])])],
                           itemWidth: items.store.widths[Int(items.distinctSize[Int(items.recordDistinct[k])])])
        }

        // Backward, rows to owners, dense all-reduce, optimizer steps.
        arena.zeroGradients()
        head.backward(arena: arena, comm: comm)
        for s in 0..<2 {
            let dsrc = embeddings[s].dactivated
            for k in 0..<n { dsrc.advanced(by: k * top).update(from: head.dinput + k * 2 * top + s * top, count: top) }
            embeddings[s].backward(table: tables[s], arena: arena, comm: comm)
            tables[s].returnGradients()
            tables[s].applyOptimizer(rowAdam, step: t)
        }
        comm.allReduceSum(arena.gradients)
        arena.adamStep(lr: config.learningRate, step: t)
        for table in tables { table.finishBatch() }
        step = t
    }
}
