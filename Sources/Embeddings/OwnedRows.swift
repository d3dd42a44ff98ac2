// The owner's side of one table for one batch (ARCHITECTURE §4): the IDs
// this rank owns that some rank requested, merged over all requesters, and
// the operations on them. This is all a policy sees of a table: the owned
// local IDs of the batch with their frequencies and sizes, and what it may do
// to them: resize a row through a transform, serve a temporary row in place
// of the stored one for this batch, and read or set the ID's extra state. The
// trainer uses the rest: creating and catching up rows, the row optimizer.

import Kernels

public final class OwnedRows {
    public let side: EmbeddingSide
    public let sharding: Sharding
    public let store: RowStore
    /// Floats each ID carries beside its row (soft selection's logits).
    public let extras: ExtraState
    let seed: UInt64
    public let capacity: Int
    let maxWidth: Int
    let pool = BufferPool()
    /// Local ID → index among this batch's owned IDs, or -1 (reset after each batch).
    private let ownedOf: UnsafeMutablePointer<Int32>
    private let locals: UnsafeMutablePointer<Int32>
    private let frequencies: UnsafeMutablePointer<UInt32>
    /// Per owned ID: the size to answer with instead of the stored one (-1: none), and that row.
    private let temporarySize: UnsafeMutablePointer<Int32>
    private let temporaryRows: UnsafeMutablePointer<Float>
    /// Summed gradient of each owned row (at `gradientOffset` floats) and of its extra floats.
    private let summedGradients: UnsafeMutablePointer<Float>
    private let gradientOffset: UnsafeMutablePointer<Int>
    private let summedExtraGradients: UnsafeMutablePointer<Float>
    /// Request entry (in arrival order: ranks 0…P-1, each in its send order) → owned index.
    let entryOwned: UnsafeMutablePointer<Int32>
    private(set) var entryCount = 0
    /// Per-record values received for the owned IDs (WireFormat's record-values
    /// entries, one per request entry), and how many entries to deliver.
    let valueBuffer: UnsafeMutableRawPointer
    let valueBufferBytes: Int
    var valueEntries = 0

    public private(set) var count = 0
    /// The step this batch's rows were brought to (`prepareRows`).
    public private(set) var readStep = 0
    /// Set by the fault seam only (FaultSeam.swift).
    var drawsKeyedByLocalID = false
    /// The shard's budget, shared with the other side's owner (nil: none).
    public var budget: ShardBudget?

    public init(side: EmbeddingSide, sharding: Sharding, widths: [Int], totalIDs: Int, extraWidth: Int,
                seed: UInt64, capacity: Int) {
        self.side = side
        self.sharding = sharding
        self.seed = seed
        self.capacity = capacity
        store = RowStore(widths: widths, localCount: sharding.localCount(of: totalIDs))
        extras = ExtraState(width: extraWidth, store: store)
        maxWidth = widths.max()!
        ownedOf = pool.make(store.localCount, Int32(-1))
        locals = pool.make(capacity, Int32(0))
        frequencies = pool.make(capacity, UInt32(0))
        temporarySize = pool.make(capacity, Int32(-1))
        temporaryRows = pool.make(capacity * maxWidth, Float(0))
        summedGradients = pool.make(capacity * maxWidth, Float(0))
        gradientOffset = pool.make(capacity, 0)
        summedExtraGradients = pool.make(capacity * extraWidth, Float(0))
        entryOwned = pool.make(capacity, Int32(0))
        // Every record of the global batch is at most one value.
        valueBufferBytes = capacity * WireFormat.valuesEntryBytes(count: 1)
        valueBuffer = pool.raw(valueBufferBytes)
    }

    /// Bytes of this side's per-batch buffers (not the rows, not the extra state).
    public var bytes: Int { pool.bytes }
    public var widths: [Int] { store.widths }

    // MARK: - What a policy reads

    @inline(__always) public func local(_ o: Int) -> Int { Int(locals[o]) }
    /// Where o's per-ID state lives in the store's columns (valid while its row lives).
    @inline(__always) public func entry(_ o: Int) -> Int { store.entry(of: Int(locals[o]))! }
    @inline(__always) public func globalID(_ o: Int) -> Int { sharding.global(of: Int(locals[o])) }
    /// The key of o's random draws: its global ID, so that any owner draws the
    /// same numbers (a planted fault keys them by the local index instead).
    @inline(__always) public func drawKey(_ o: Int) -> Int { drawsKeyedByLocalID ? local(o) : globalID(o) }
    /// The largest frequency of o's ID over every requester.
    @inline(__always) public func frequency(_ o: Int) -> UInt32 { frequencies[o] }
    /// The width index o's row is stored at.
    @inline(__always) public func sizeIndex(_ o: Int) -> Int { store.sizeIndex(of: Int(locals[o]))! }
    /// o's stored row values (its width is `widths[sizeIndex(o)]`).
    @inline(__always) public func row(_ o: Int) -> UnsafePointer<Float> { UnsafePointer(store.row(Int(locals[o])).values) }
    /// o's extra floats (soft selection's logits), which travel with its row.
    @inline(__always) public func extra(_ o: Int) -> UnsafeMutablePointer<Float> { extras.of(entry(o)) }
    /// The gradient of o's extra floats, summed over every requester (after `returnGradients`).
    @inline(__always) public func extraGradient(_ o: Int) -> UnsafePointer<Float> {
        UnsafePointer(summedExtraGradients + o * extras.width)
    }
    /// Every owned ID's extra gradient, (count, extra width) in owned order.
    public var extraGradients: UnsafePointer<Float> { UnsafePointer(summedExtraGradients) }

    /// Calls `body(o, values, c)` for each request entry in global stream order
    /// (ranks in order, records in slice order), with the `c` per-record values
    /// that reached o's ID through `ShardedTable.sendRecordValues` this batch.
    @inline(__always)
    public func forEachRecordValues(_ body: (_ owned: Int, _ values: UnsafePointer<Float>, _ count: Int) -> Void) {
        var byte = 0
        for e in 0..<valueEntries {
            let c = WireFormat.readValuesHeader(valueBuffer + byte)
            body(Int(entryOwned[e]), UnsafePointer(WireFormat.values(valueBuffer + byte)), c)
            byte += WireFormat.valuesEntryBytes(count: c)
        }
    }

    // MARK: - What a policy may do

    /// Whether moving o's row to width index `size` fits the shard's budget without evicting (always without one).
    @inline(__always)
    public func fits(_ o: Int, size: Int) -> Bool {
        guard let budget else { return true }
        return budget.fits(store.resizeCost(Int(locals[o]), to: size))
    }

    /// Counts an enlargement the policy wanted for o and the budget refused.
    public func refuse(_ o: Int) { store.counts.refused_enlargements += 1 }

    /// Moves o's row to width index `size` for good: `fill(old, new)` writes the
    /// new values (through the policy's transform); moments start at zero at `step`.
    public func resize(_ o: Int, to size: Int, step: Int,
                       _ fill: (_ old: UnsafePointer<Float>, _ new: UnsafeMutablePointer<Float>) -> Void) {
        store.resize(Int(locals[o]), to: size, step: step, fill)
    }

    /// Answers this batch's requests for o with a row of width index `size`
    /// instead of the stored one, storing nothing; returns that row for the
    /// caller to fill. Dropped by `clearTemporaryRows` or at the end of the batch.
    public func serveTemporary(_ o: Int, size: Int) -> UnsafeMutablePointer<Float> {
        precondition(size >= 0 && size < widths.count, "temporary row of size index \(size)")
        temporarySize[o] = Int32(size)
        return temporaryRows + o * maxWidth
    }

    public func clearTemporaryRows() {
        for o in 0..<count { temporarySize[o] = -1 }
    }

    // MARK: - Rows: creation, catch-up, the optimizer (the trainer's)

    /// Marks the owned rows seen at lookup `stamp` (before either side admits
    /// new IDs, so that no row of this lookup is evicted to make room).
    public func touchRows(stamp: Int) {
        for o in 0..<count { store.touch(Int(locals[o]), stamp: stamp) }
    }

    /// Creates missing rows at width index `initialSize` (N(0, 1), keyed by
    /// the global ID so any owner draws the same row; under a budget, after
    /// evicting the least recently seen rows of earlier lookups as needed) and
    /// brings existing rows up to step `readStep` before they are read.
    public func prepareRows(initialSize: Int, readStep: Int, optimizer: RowAdam, stamp: Int = 0) {
        self.readStep = readStep
        for o in 0..<count {
            let local = Int(locals[o])
            if store.entry(of: local) == nil {
                budget?.makeRoom(protecting: stamp) { store.creationCost(local, size: initialSize) }
                let values = store.create(local, size: initialSize, step: readStep, stamp: stamp)
                initRow(values: values, width: store.widths[initialSize], seed: seed, id: sharding.global(of: local), side: side)
            } else {
                catchUp(local, to: readStep, optimizer)
            }
        }
    }

    /// Applies global step `t` to every owned row with its summed gradient.
    public func applyOptimizer(_ optimizer: RowAdam, step t: Int) {
        for o in 0..<count {
            let local = Int(locals[o])
            let r = store.row(local)
            optimizer.step(values: r.values, m: r.m, v: r.v, grads: summedGradients + gradientOffset[o], width: r.width, step: t)
            store.setLastStep(of: local, t)
        }
    }

    /// Brings every row this rank owns to step `t` (end of stream, checkpoint).
    public func catchUpAll(optimizer: RowAdam, to t: Int) {
        for local in 0..<store.indexHigh where store.entry(of: local) != nil {
            catchUp(local, to: t, optimizer)
        }
    }

    /// Brings `local`'s row from its last step to step `t` (catch-up Adam's missed steps).
    @inline(__always)
    private func catchUp(_ local: Int, to t: Int, _ optimizer: RowAdam) {
        let from = store.lastStep(of: local)
        guard from < t else { return }
        let r = store.row(local)
        optimizer.catchUp(values: r.values, m: r.m, v: r.v, width: r.width, lastStep: from, to: t)
        store.setLastStep(of: local, t)
    }

    // MARK: - Filled by the exchange

    /// Starts a batch's merge of requests.
    func beginMerge(entries: Int) {
        precondition(entries <= capacity, "\(entries) requests arrive for an owner sized for \(capacity)")
        entryCount = entries
        count = 0
    }

    /// Merges request entry `e` for global ID `id`, keeping the largest frequency.
    @inline(__always)
    func merge(entry e: Int, id: Int, frequency f: UInt32) {
        let local = sharding.local(of: id)
        var o = Int(ownedOf[local])
        if o < 0 {
            o = count
            count += 1
            ownedOf[local] = Int32(o)
            locals[o] = Int32(local)
            frequencies[o] = f
            temporarySize[o] = -1
        } else if f > frequencies[o] {
            frequencies[o] = f
        }
        entryOwned[e] = Int32(o)
    }

    /// The size index and row to answer request entry `e` with.
    @inline(__always)
    func answer(entry e: Int) -> (size: Int, row: UnsafePointer<Float>, extra: UnsafePointer<Float>) {
        let o = Int(entryOwned[e])
        let local = Int(locals[o])
        let extra = UnsafePointer(extras.of(store.entry(of: local)!))
        if temporarySize[o] >= 0 { return (Int(temporarySize[o]), UnsafePointer(temporaryRows + o * maxWidth), extra) }
        return (store.sizeIndex(of: local)!, UnsafePointer(store.row(local).values), extra)
    }

    /// Zeroes the summed gradients before the entries of this batch are added.
    func beginGradients() {
        var offset = 0
        for o in 0..<count {
            gradientOffset[o] = offset
            offset += store.width(of: Int(locals[o]))
        }
        summedGradients.update(repeating: 0, count: offset)
        summedExtraGradients.update(repeating: 0, count: count * extras.width)
    }

    /// Adds entry `e`'s gradient floats (row, then extra) into its owned ID's sums; returns the row width.
    @inline(__always)
    func addGradient(entry e: Int, _ g: UnsafePointer<Float>) -> Int {
        let o = Int(entryOwned[e])
        let w = store.width(of: Int(locals[o]))
        let acc = summedGradients + gradientOffset[o]
        for j in 0..<w { acc[j] += g[j] }
        let A = extras.width
        let attached = summedExtraGradients + o * A
        for j in 0..<A { attached[j] += g[w + j] }
        return w
    }

    /// Clears the markers (O(owned), not O(IDs)).
    func finish() {
        for o in 0..<count { ownedOf[Int(locals[o])] = -1 }
        count = 0
        entryCount = 0
        valueEntries = 0
    }

    // MARK: - Without an exchange

    /// Makes the owned IDs of a batch with no exchange: each `(globalID,
    /// frequency)` a request entry, merged as an owner merges them, rows created
    /// at `initialSize`. For tests of the policies on one process.
    public func receiveLocally(requests: [(id: Int, frequency: UInt32)], initialSize: Int = 0, optimizer: RowAdam) {
        finish()
        beginMerge(entries: requests.count)
        for (e, r) in requests.enumerated() { merge(entry: e, id: r.id, frequency: r.frequency) }
        prepareRows(initialSize: initialSize, readStep: 0, optimizer: optimizer)
    }

    /// Delivers per-record values to the owned IDs with no exchange: one entry
    /// per request entry of `receiveLocally`, in that order.
    public func receiveValuesLocally(_ perEntry: [[Float]]) {
        precondition(perEntry.count == entryCount, "\(perEntry.count) value entries for \(entryCount) requests")
        var byte = 0
        for values in perEntry {
            WireFormat.writeValuesHeader(valueBuffer + byte, count: values.count)
            WireFormat.values(valueBuffer + byte).update(from: values, count: values.count)
            byte += WireFormat.valuesEntryBytes(count: values.count)
        }
        valueEntries = perEntry.count
    }

    /// Sets the summed gradients with no exchange (row part, extra part per owned ID).
    public func receiveGradientsLocally(rows: [[Float]], extras extraGradients: [[Float]]) {
        beginGradients()
        for o in 0..<count {
            (summedGradients + gradientOffset[o]).update(from: rows[o], count: rows[o].count)
            (summedExtraGradients + o * extras.width).update(from: extraGradients[o], count: extraGradients[o].count)
        }
    }
}
