// One side's (users' or items') embedding rows, sharded by ID across ranks,
// and the per-batch exchange of ARCHITECTURE §4:
//   1. requesters send each owner the distinct IDs of their slice with their
//      largest frequency (all-to-all-v); owners merge them;
//   2. owners create, catch up and (through a policy) resize their rows, then
//      answer with (size index, row at its native width);
//   3. requesters send row gradients back; owners sum them and step the rows.
// Every buffer is sized once for the largest batch and zero-filled, so it is
// resident from the start: the per-batch path allocates nothing, and the
// process does not grow when a batch has more distinct IDs than the last.
import Comm
import Kernels

extension EmbeddingSide {
    public var name: String { self == .user ? "users" : "items" }
}

public final class ShardedTable {
    public let side: EmbeddingSide
    public let sharding: Sharding
    public let store: RowStore
    public let totalIDs: Int
    let comm: any Communicator
    let seed: UInt64
    let maxSlice: Int
    let maxBatch: Int
    /// A bug planted by the contract tests (`.none` otherwise).
    let fault: InjectedFault
    public let maxWidth: Int
    /// Floats attached to every ID beside its row (soft selection's six
    /// architecture weights), sent with the row and returned with a gradient.
    public let attachmentWidth: Int
    /// Per local ID: its attachment (localCount × attachmentWidth), zero at first.
    public let attachments: UnsafeMutablePointer<Float>
    /// Bytes of one reply or gradient entry at width w: an Int32 size index, w floats, the attachment.
    @inline(__always) func entryBytes(_ w: Int) -> Int { 4 + 4 * (w + attachmentWidth) }

    // MARK: Requester state (this rank's slice)
    /// Global ID → index among this batch's distinct IDs, or -1. Reset after each batch.
    private let distinctOf: UnsafeMutablePointer<Int32>
    public private(set) var distinctCount = 0
    /// Distinct global IDs of the slice, in first-appearance order.
    public let distinctIDs: UnsafeMutablePointer<Int32>
    /// Largest frequency of each distinct ID in the slice.
    public let distinctFrequency: UnsafeMutablePointer<UInt32>
    /// Record of the slice → its distinct index.
    public let recordDistinct: UnsafeMutablePointer<Int32>
    /// Width index of each distinct ID's row as received.
    public let distinctSize: UnsafeMutablePointer<Int32>
    /// Pointer to each distinct ID's received row values.
    public let distinctRow: UnsafeMutablePointer<UnsafeMutablePointer<Float>>
    /// Pointer to each distinct ID's gradient (same layout as the rows).
    public let distinctGradient: UnsafeMutablePointer<UnsafeMutablePointer<Float>>
    /// Pointers to each distinct ID's received attachment and its gradient.
    public let distinctAttachment: UnsafeMutablePointer<UnsafeMutablePointer<Float>>
    public let distinctAttachmentGradient: UnsafeMutablePointer<UnsafeMutablePointer<Float>>
    /// Position in the owner-grouped send order → distinct index.
    private let distinctAtPosition: UnsafeMutablePointer<Int32>
    private let requestSend: UnsafeMutablePointer<UInt32>
    private let rowReceive: UnsafeMutableRawPointer
    private let gradientSend: UnsafeMutableRawPointer

    // MARK: Owner state (merged requests for the IDs this rank owns)
    private let requestReceive: UnsafeMutablePointer<UInt32>
    private var entryCount = 0
    /// Local ID → index among this batch's owned IDs, or -1. Reset after each batch.
    private let ownedOf: UnsafeMutablePointer<Int32>
    public private(set) var ownedCount = 0
    /// Local IDs requested this batch, in first-request order (ranks 0…P-1).
    public let ownedLocal: UnsafeMutablePointer<Int32>
    /// Largest frequency of each owned ID over all requesting ranks.
    public let ownedFrequency: UnsafeMutablePointer<UInt32>
    /// Request entry → owned index.
    private let entryOwned: UnsafeMutablePointer<Int32>
    private let rowSend: UnsafeMutableRawPointer
    private let gradientReceive: UnsafeMutableRawPointer
    /// Summed attachment gradient of each owned ID (ownedCount × attachmentWidth).
    public let ownedAttachmentGradient: UnsafeMutablePointer<Float>
    /// Summed gradient of each owned row, at `ownedGradientOffset` floats.
    private let ownedGradient: UnsafeMutablePointer<Float>
    private let ownedGradientOffset: UnsafeMutablePointer<Int>
    /// Optional per owned ID: answer with this size and row instead of the stored one
    /// (ESAPN's temporary enlargement). -1: no override.
    public let overrideSize: UnsafeMutablePointer<Int32>
    /// Scratch rows for overrides, `maxWidth` floats per owned index.
    public let overrideRows: UnsafeMutablePointer<Float>

    // MARK: Per-record values to owners (losses), one entry per distinct ID
    /// Records of the slice grouped by distinct index (slice order within a group).
    private let recordsByDistinct: UnsafeMutablePointer<Int32>
    private let distinctRecordStart: UnsafeMutablePointer<Int32>
    private let valueSend: UnsafeMutableRawPointer
    private let valueReceive: UnsafeMutableRawPointer

    // MARK: The three exchanges' byte counts: requests to owners, replies (and gradients back), per-record values
    private let requests, replies, recordValues: ExchangePlan

    public init(side: EmbeddingSide, totalIDs: Int, widths: [Int], comm: any Communicator, seed: UInt64,
                maxSlice: Int, maxBatch: Int, attachmentWidth: Int = 0, fault: InjectedFault = .none) {
        self.attachmentWidth = attachmentWidth
        self.fault = fault
        self.side = side
        self.comm = comm
        self.seed = seed
        self.totalIDs = totalIDs
        sharding = Sharding(rank: comm.rank, ranks: comm.size)
        store = RowStore(widths: widths, localCount: sharding.localCount(of: totalIDs))
        self.maxSlice = maxSlice
        self.maxBatch = maxBatch
        maxWidth = widths.max()!
        func ints<T: FixedWidthInteger>(_ n: Int, _ value: T) -> UnsafeMutablePointer<T> {
            let p = UnsafeMutablePointer<T>.allocate(capacity: max(1, n))
            p.initialize(repeating: value, count: max(1, n))
            return p
        }
        distinctOf = ints(totalIDs, Int32(-1))
        distinctIDs = ints(maxSlice, Int32(0))
        distinctFrequency = ints(maxSlice, UInt32(0))
        recordDistinct = ints(maxSlice, Int32(0))
        distinctSize = ints(maxSlice, Int32(0))
        distinctRow = .allocate(capacity: max(1, maxSlice))
        distinctGradient = .allocate(capacity: max(1, maxSlice))
        distinctAttachment = .allocate(capacity: max(1, maxSlice))
        distinctAttachmentGradient = .allocate(capacity: max(1, maxSlice))
        attachments = .allocate(capacity: max(1, store.localCount * attachmentWidth))
        attachments.initialize(repeating: 0, count: max(1, store.localCount * attachmentWidth))
        ownedAttachmentGradient = .allocate(capacity: max(1, maxBatch * attachmentWidth))
        ownedAttachmentGradient.initialize(repeating: 0, count: max(1, maxBatch * attachmentWidth))
        distinctAtPosition = ints(maxSlice, Int32(0))
        requestSend = ints(2 * maxSlice, UInt32(0))
        let entry = 4 + 4 * (maxWidth + attachmentWidth)
        rowReceive = .allocate(byteCount: max(1, maxSlice * entry), alignment: 64)
        rowReceive.initializeMemory(as: UInt8.self, repeating: 0, count: max(1, maxSlice * entry))
        gradientSend = .allocate(byteCount: max(1, maxSlice * entry), alignment: 64)
        gradientSend.initializeMemory(as: UInt8.self, repeating: 0, count: max(1, maxSlice * entry))
        requestReceive = ints(2 * maxBatch, UInt32(0))
        ownedOf = ints(store.localCount, Int32(-1))
        ownedLocal = ints(maxBatch, Int32(0))
        ownedFrequency = ints(maxBatch, UInt32(0))
        entryOwned = ints(maxBatch, Int32(0))
        rowSend = .allocate(byteCount: max(1, maxBatch * entry), alignment: 64)
        rowSend.initializeMemory(as: UInt8.self, repeating: 0, count: max(1, maxBatch * entry))
        gradientReceive = .allocate(byteCount: max(1, maxBatch * entry), alignment: 64)
        gradientReceive.initializeMemory(as: UInt8.self, repeating: 0, count: max(1, maxBatch * entry))
        ownedGradient = .allocate(capacity: max(1, maxBatch * maxWidth))
        ownedGradient.initialize(repeating: 0, count: max(1, maxBatch * maxWidth))
        ownedGradientOffset = ints(maxBatch, 0)
        overrideSize = ints(maxBatch, Int32(-1))
        overrideRows = .allocate(capacity: max(1, maxBatch * maxWidth))
        overrideRows.initialize(repeating: 0, count: max(1, maxBatch * maxWidth))
        recordsByDistinct = ints(maxSlice, Int32(0))
        distinctRecordStart = ints(maxSlice + 1, Int32(0))
        valueSend = .allocate(byteCount: max(1, 8 * maxSlice), alignment: 64)
        valueReceive = .allocate(byteCount: max(1, 8 * maxBatch), alignment: 64)
        requests = ExchangePlan(ranks: comm.size)
        replies = ExchangePlan(ranks: comm.size)
        recordValues = ExchangePlan(ranks: comm.size)
    }

    deinit {
        distinctOf.deallocate(); distinctIDs.deallocate(); distinctFrequency.deallocate(); recordDistinct.deallocate()
        distinctSize.deallocate(); distinctRow.deallocate(); distinctGradient.deallocate(); distinctAtPosition.deallocate()
        distinctAttachment.deallocate(); distinctAttachmentGradient.deallocate(); attachments.deallocate()
        ownedAttachmentGradient.deallocate()
        requestSend.deallocate(); rowReceive.deallocate(); gradientSend.deallocate(); requestReceive.deallocate()
        ownedOf.deallocate(); ownedLocal.deallocate(); ownedFrequency.deallocate(); entryOwned.deallocate()
        rowSend.deallocate(); gradientReceive.deallocate(); ownedGradient.deallocate(); ownedGradientOffset.deallocate()
        overrideSize.deallocate(); overrideRows.deallocate()
        recordsByDistinct.deallocate(); distinctRecordStart.deallocate(); valueSend.deallocate(); valueReceive.deallocate()
    }

    /// Bytes of the exchange's own buffers (not rows): reported beside the store.
    public var scratchBytes: Int {
        let entry = entryBytes(maxWidth)
        // Markers over every global ID (distinctOf) and every local ID (ownedOf).
        let markers = 4 * totalIDs + 4 * store.localCount
        // Per slice record: four Int32 columns, four pointer columns, the send
        // position, the request, rows in and gradients out, the record grouping, values out.
        let slice = maxSlice * (16 + 32 + 4 + 8 + 2 * entry + 4 + 4 + 8) + 4
        // Per request an owner may receive: the request, owned index columns, rows out and
        // gradients in, summed gradients and override rows, gradient offsets, override
        // sizes, attachment gradients, values in.
        let owner = maxBatch * (8 + 12 + 2 * entry + 8 * maxWidth + 8 + 4 + 4 * attachmentWidth + 8)
        let plans = 3 * 4 * sharding.ranks * 8
        return markers + slice + owner + plans
    }

    // MARK: - 1. Requests

    /// Collects the distinct IDs of this rank's slice (`ids[k]`, frequency
    /// `frequencies[k]`) and delivers them to their owners, who merge them.
    public func request(ids: UnsafePointer<UInt32>, frequencies: UnsafePointer<UInt32>, count n: Int) {
        precondition(n <= maxSlice, "slice of \(n) records exceeds the \(maxSlice) the table was sized for")
        let P = sharding.ranks
        distinctCount = 0
        for k in 0..<n {
            let id = Int(ids[k])
            var d = Int(distinctOf[id])
            if d < 0 {
                d = distinctCount
                distinctCount += 1
                distinctOf[id] = Int32(d)
                distinctIDs[d] = Int32(id)
                distinctFrequency[d] = frequencies[k]
            } else if frequencies[k] > distinctFrequency[d] {
                distinctFrequency[d] = frequencies[k]
            }
            recordDistinct[k] = Int32(d)
        }
        // Group by owner (counting sort), 8 bytes (ID, frequency) per request.
        let counts = requests.sendCounts, offsets = requests.sendOffsets
        for p in 0..<P { counts[p] = 0 }
        for d in 0..<distinctCount { counts[sharding.owner(of: Int(distinctIDs[d]))] += 1 }
        var running = 0
        for p in 0..<P { offsets[p] = running; running += counts[p] }
        for d in 0..<distinctCount {
            let p = sharding.owner(of: Int(distinctIDs[d]))
            let pos = offsets[p]
            offsets[p] += 1
            distinctAtPosition[pos] = Int32(d)
            requestSend[2 * pos] = UInt32(distinctIDs[d])
            requestSend[2 * pos + 1] = distinctFrequency[d]
        }
        running = 0
        for p in 0..<P { offsets[p] = running * 8; running += counts[p]; counts[p] *= 8 }
        let received = requests.run(comm, send: requestSend, sendBytes: 8 * distinctCount,
                                    receive: requestReceive, capacity: 8 * maxBatch,
                                    "requests to the owners of \(side.name)")
        // Owner: merge requests from all ranks, keeping each ID's largest frequency.
        entryCount = received / 8
        ownedCount = 0
        for e in 0..<entryCount {
            let local = sharding.local(of: Int(requestReceive[2 * e]))
            let f = requestReceive[2 * e + 1]
            var o = Int(ownedOf[local])
            if o < 0 {
                o = ownedCount
                ownedCount += 1
                ownedOf[local] = Int32(o)
                ownedLocal[o] = Int32(local)
                ownedFrequency[o] = f
                overrideSize[o] = -1
            } else if f > ownedFrequency[o] && fault != .ownerDropsLaterRanksFrequency {
                ownedFrequency[o] = f
            }
            entryOwned[e] = Int32(o)
        }
    }

    // MARK: - 2. Owner prepares rows, then answers

    /// Creates missing rows at width index `initialSize` (N(0,1), keyed by the
    /// global ID so any owner draws the same row) and brings existing rows up
    /// to step `readStep` before they are read.
    public func prepareOwnedRows(initialSize: Int, readStep: Int, optimizer: RowAdam) {
        for o in 0..<ownedCount {
            let local = Int(ownedLocal[o])
            if store.sizeIndex(of: local) == nil {
                let values = store.create(local, size: initialSize, step: readStep)
                initialiseRow(values, width: store.widths[initialSize], globalID: sharding.global(of: local))
            } else {
                catchUp(local, to: readStep, optimizer)
            }
        }
    }

    /// Brings `local`'s row from its last step to step `t` (catch-up Adam's missed steps).
    @inline(__always)
    private func catchUp(_ local: Int, to t: Int, _ optimizer: RowAdam) {
        let from = Int(store.lastStep[local])
        guard from < t else { return }
        let r = store.row(local)
        optimizer.catchUp(values: r.values, m: r.m, v: r.v, width: r.width, lastStep: from, to: t)
        store.lastStep[local] = Int32(t)
    }

    /// A fresh row: N(0, 1) as PyTorch's nn.Embedding, keyed by the global ID.
    public func initialiseRow(_ values: UnsafeMutablePointer<Float>, width: Int, globalID: Int) {
        initRow(values: values, width: width, seed: seed, id: globalID, side: side)
    }

    /// Answers every request with (size index, row at native width); afterwards
    /// `distinctSize`, `distinctRow` and `distinctGradient` describe this rank's slice.
    public func answer() {
        let P = sharding.ranks
        // Owner: entries are grouped by requesting rank, in its send order.
        var byte = 0
        var e = 0
        for p in 0..<P {
            replies.sendOffsets[p] = byte
            let end = e + requests.receiveCounts[p] / 8
            while e < end {
                let o = Int(entryOwned[e])
                let size: Int
                let source: UnsafePointer<Float>
                if overrideSize[o] >= 0 {
                    size = Int(overrideSize[o])
                    source = UnsafePointer(overrideRows + o * maxWidth)
                } else {
                    let local = Int(ownedLocal[o])
                    size = store.sizeIndex(of: local)!
                    source = UnsafePointer(store.row(local).values)
                }
                let w = store.widths[size]
                (rowSend + byte).storeBytes(of: Int32(size), as: Int32.self)
                let out = (rowSend + byte + 4).assumingMemoryBound(to: Float.self)
                out.update(from: source, count: w)
                if attachmentWidth > 0 {
                    (out + w).update(from: attachments + Int(ownedLocal[o]) * attachmentWidth, count: attachmentWidth)
                }
                byte += entryBytes(w)
                e += 1
            }
            replies.sendCounts[p] = byte - replies.sendOffsets[p]
        }
        let running = replies.run(comm, send: rowSend, sendBytes: byte, receive: rowReceive,
                                  capacity: maxSlice * entryBytes(maxWidth), "rows of \(side.name)")
        // Requester: replies arrive grouped by owner, in this rank's send order.
        byte = 0
        for pos in 0..<distinctCount {
            let d = Int(distinctAtPosition[pos])
            let size = Int((rowReceive + byte).load(as: Int32.self))
            distinctSize[d] = Int32(size)
            let w = store.widths[size]
            distinctRow[d] = (rowReceive + byte + 4).assumingMemoryBound(to: Float.self)
            distinctGradient[d] = (gradientSend + byte + 4).assumingMemoryBound(to: Float.self)
            distinctAttachment[d] = distinctRow[d] + w
            distinctAttachmentGradient[d] = distinctGradient[d] + w
            byte += entryBytes(w)
        }
        precondition(byte == running, "reply of \(running) bytes does not match the \(byte) expected")
        gradientSend.initializeMemory(as: UInt8.self, repeating: 0, count: byte)
    }

    // MARK: - 3. Gradients back to owners

    /// Sends each distinct row's gradient (written through `distinctGradient`)
    /// to its owner, which sums the contributions of all ranks per row.
    public func returnGradients() {
        replies.runBack(comm, send: gradientSend, sendCapacity: maxSlice * entryBytes(maxWidth),
                        receive: gradientReceive, capacity: maxBatch * entryBytes(maxWidth))
        var offset = 0
        for o in 0..<ownedCount {
            ownedGradientOffset[o] = offset
            offset += store.width(of: Int(ownedLocal[o]))
        }
        ownedGradient.update(repeating: 0, count: offset)
        let A = attachmentWidth
        ownedAttachmentGradient.update(repeating: 0, count: ownedCount * A)
        var byte = 0
        for e in 0..<entryCount {
            let o = Int(entryOwned[e])
            let w = store.width(of: Int(ownedLocal[o]))
            let g = (gradientReceive + byte + 4).assumingMemoryBound(to: Float.self)
            let acc = ownedGradient + ownedGradientOffset[o]
            for j in 0..<w { acc[j] += g[j] }
            let attached = ownedAttachmentGradient + o * A
            for j in 0..<A { attached[j] += g[w + j] }
            byte += entryBytes(w)
        }
    }

    /// Applies global step `t` to every owned row that was requested this batch.
    public func applyOptimizer(_ optimizer: RowAdam, step t: Int) {
        for o in 0..<ownedCount {
            let local = Int(ownedLocal[o])
            let r = store.row(local)
            optimizer.step(values: r.values, m: r.m, v: r.v, grads: ownedGradient + ownedGradientOffset[o], width: r.width, step: t)
            store.lastStep[local] = Int32(t)
        }
    }

    /// Brings every row this rank owns to step `t` (end of stream, checkpoint).
    public func catchUpAll(optimizer: RowAdam, to t: Int) {
        for local in 0..<store.localCount where store.sizeIndex(of: local) != nil {
            catchUp(local, to: t, optimizer)
        }
    }

    // MARK: - 4. Per-record values to owners

    /// Sends each record's `values[k]` (k in this rank's slice of `n` records)
    /// to the owner of its ID. The owner sees, for each request entry in
    /// global stream order (ranks in order, records in slice order), the owned
    /// index and that ID's values: `receive(owned, values, count)`.
    public func sendRecordValues(_ values: UnsafePointer<Float>, records n: Int,
                                 _ receive: (_ owned: Int, _ values: UnsafePointer<Float>, _ count: Int) -> Void) {
        let P = sharding.ranks
        // Group the slice's records by distinct ID (counting sort keeps slice order).
        distinctRecordStart.update(repeating: 0, count: distinctCount + 1)
        for k in 0..<n { distinctRecordStart[Int(recordDistinct[k]) + 1] += 1 }
        for d in 0..<distinctCount { distinctRecordStart[d + 1] += distinctRecordStart[d] }
        for k in 0..<n {
            let d = Int(recordDistinct[k])
            recordsByDistinct[Int(distinctRecordStart[d])] = Int32(k)
            distinctRecordStart[d] += 1
        }
        for d in stride(from: distinctCount, to: 0, by: -1) { distinctRecordStart[d] = distinctRecordStart[d - 1] }
        distinctRecordStart[0] = 0
        // Pack in send order: per entry an Int32 count then the values; 4 + 4c bytes.
        var byte = 0
        var pos = 0
        for p in 0..<P {
            recordValues.sendOffsets[p] = byte
            let end = pos + requests.sendCounts[p] / 8
            while pos < end {
                let d = Int(distinctAtPosition[pos])
                let lo = Int(distinctRecordStart[d]), hi = Int(distinctRecordStart[d + 1])
                (valueSend + byte).storeBytes(of: Int32(hi - lo), as: Int32.self)
                let out = (valueSend + byte + 4).assumingMemoryBound(to: Float.self)
                for j in lo..<hi { out[j - lo] = values[Int(recordsByDistinct[j])] }
                byte += 4 + 4 * (hi - lo)
                pos += 1
            }
            recordValues.sendCounts[p] = byte - recordValues.sendOffsets[p]
        }
        recordValues.run(comm, send: valueSend, sendBytes: byte, receive: valueReceive, capacity: 8 * maxBatch,
                   "per-record values of \(side.name)")
        byte = 0
        let dropFrom = fault == .ownerDropsLastRanksLosses && P > 1 ? entryCount - requests.receiveCounts[P - 1] / 8 : entryCount
        for e in 0..<entryCount {
            let c = Int((valueReceive + byte).load(as: Int32.self))
            if e < dropFrom {
                receive(Int(entryOwned[e]), UnsafePointer((valueReceive + byte + 4).assumingMemoryBound(to: Float.self)), c)
            }
            byte += 4 + 4 * c
        }
    }

    /// Drops every override (after a validation forward).
    public func clearOverrides() {
        for o in 0..<ownedCount { overrideSize[o] = -1 }
    }

    /// Clears the per-batch markers (O(distinct), not O(IDs)).
    public func finishBatch() {
        for d in 0..<distinctCount { distinctOf[Int(distinctIDs[d])] = -1 }
        for o in 0..<ownedCount { ownedOf[Int(ownedLocal[o])] = -1 }
        distinctCount = 0
        ownedCount = 0
    }
}
