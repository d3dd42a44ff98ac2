// One side's (users' or items') embedding rows, sharded by ID across ranks,
// and the per-batch exchange of ARCHITECTURE §4. This file is the exchange
// and nothing else:
//   1. requests   requesters send each owner the distinct IDs of their slice
//                 with their largest frequency; owners merge them;
//   2. rows       owners answer with (size index, row at its own width, extra floats);
//   3. gradients  requesters send the rows' gradients back along the same
//                 pairs; owners sum them per ID;
//   4. values     requesters send per-record values (losses) to the owners of
//                 their IDs, in stream order.
// Between 1 and 2 the trainer and the policy work on the owner's view
// (`owned`: create, catch up, resize, serve temporary rows); after 2 the
// formers read the requester's view (`received`). Entries are laid out by
// WireFormat and packed by ExchangePlan.pack, one routine for every
// direction. Each step is two halves around the move of the bytes: `pack…`
// returns an ExchangeLeg, the matching finish reads what arrived; the bytes
// move in BatchExchange, the one path of every step (one table or several).
// Every buffer is sized once for the largest batch and zero-filled: the
// per-batch path allocates nothing.
import Comm
import Kernels

public final class ShardedTable {
    public let side: EmbeddingSide
    public let sharding: Sharding
    public let totalIDs: Int
    let comm: any Communicator
    /// The communicator its exchanges run over.
    public var communicator: any Communicator { comm }
    /// The requester's view: what the formers read.
    public let received: ReceivedRows
    /// The owner's view: what the policies (and the row optimizer) work on.
    public let owned: OwnedRows
    public var store: RowStore { owned.store }

    let pool = BufferPool()
    /// Send position (owner-grouped order) → distinct index.
    private let distinctAtPosition: UnsafeMutablePointer<Int32>
    /// Per owner rank: where its requests end in the send order.
    private let ownerEnd: UnsafeMutablePointer<Int>
    private let requestSend, requestReceive, rowSend, gradientReceive, valueSend: UnsafeMutableRawPointer
    private let rowEntryCapacity: Int
    /// Records of the slice grouped by distinct index (slice order within a group), and each group's start.
    private let recordsByDistinct, distinctRecordStart: UnsafeMutablePointer<Int32>
    /// Byte counts of the three exchanges: requests (whose pairs the gradients
    /// and the values retrace), rows, per-record values.
    private let requests, replies, recordValues: ExchangePlan

    public init(side: EmbeddingSide, totalIDs: Int, widths: [Int], comm: any Communicator, seed: UInt64,
                maxSlice: Int, maxBatch: Int, extraWidth: Int = 0) {
        self.side = side
        self.comm = comm
        self.totalIDs = totalIDs
        sharding = Sharding(rank: comm.rank, ranks: comm.size)
        received = ReceivedRows(widths: widths, extraWidth: extraWidth, totalIDs: totalIDs, capacity: maxSlice)
        owned = OwnedRows(side: side, sharding: sharding, widths: widths, totalIDs: totalIDs, extraWidth: extraWidth,
                          seed: seed, capacity: maxBatch)
        rowEntryCapacity = WireFormat.rowEntryBytes(width: widths.max()!, extra: extraWidth)
        distinctAtPosition = pool.make(maxSlice, Int32(0))
        ownerEnd = pool.make(comm.size, 0)
        requestSend = pool.raw(maxSlice * WireFormat.requestBytes)
        requestReceive = pool.raw(maxBatch * WireFormat.requestBytes)
        rowSend = pool.raw(maxBatch * rowEntryCapacity)
        gradientReceive = pool.raw(maxBatch * rowEntryCapacity)
        valueSend = pool.raw(maxSlice * WireFormat.valuesEntryBytes(count: 1))
        recordsByDistinct = pool.make(maxSlice, Int32(0))
        distinctRecordStart = pool.make(maxSlice + 1, Int32(0))
        requests = ExchangePlan(ranks: comm.size)
        replies = ExchangePlan(ranks: comm.size)
        recordValues = ExchangePlan(ranks: comm.size)
        largestLeg = (send: max(maxSlice * WireFormat.requestBytes, maxBatch * rowEntryCapacity, received.bufferBytes,
                                maxSlice * WireFormat.valuesEntryBytes(count: 1)),
                      receive: max(owned.capacity * WireFormat.requestBytes, received.bufferBytes,
                                   owned.capacity * rowEntryCapacity, owned.valueBufferBytes))
    }

    /// The most bytes one leg of this table sends and receives in any step
    /// (what BatchExchange sizes its buffers by).
    let largestLeg: (send: Int, receive: Int)

    /// Bytes of the exchange's buffers, both views' per-batch buffers
    /// included (not the rows): each counted as it was allocated.
    public var scratchBytes: Int { pool.bytes + received.bytes + owned.bytes + 3 * requests.bytes }

    // MARK: - 1. Requests

    /// The requester's half: the distinct IDs of this rank's slice (`ids[k]`,
    /// frequency `frequencies[k]`) grouped by owner and packed.
    func packRequests(ids: UnsafePointer<UInt32>, frequencies: UnsafePointer<UInt32>, count n: Int) -> ExchangeLeg {
        let r = received
        r.collect(ids: ids, frequencies: frequencies, count: n)
        // Group by owner (counting sort, first-appearance order within an owner).
        let P = sharding.ranks
        for p in 0..<P { ownerEnd[p] = 0 }
        for d in 0..<r.distinctCount { ownerEnd[sharding.owner(of: r.globalID(d))] += 1 }
        var running = 0
        for p in 0..<P { let c = ownerEnd[p]; ownerEnd[p] = running; running += c }
        for d in 0..<r.distinctCount {
            let p = sharding.owner(of: r.globalID(d))
            distinctAtPosition[ownerEnd[p]] = Int32(d)
            ownerEnd[p] += 1
        }
        _ = requests.pack(into: requestSend, entries: { p in ownerEnd[p] - (p == 0 ? 0 : ownerEnd[p - 1]) }) { pos, at in
            let d = Int(distinctAtPosition[pos])
            WireFormat.writeRequest(at, id: r.globalID(d), frequency: r.frequency(d))
            return WireFormat.requestBytes
        }
        return ExchangeLeg(plan: requests, send: UnsafeRawPointer(requestSend), receive: requestReceive,
                           capacity: owned.capacity * WireFormat.requestBytes, side: side, step: "requests to the owners of")
    }

    /// The owner's half: merge the requests of all ranks, in rank order.
    func mergeRequests() {
        let entries = requests.receivedBytes / WireFormat.requestBytes
        owned.beginMerge(entries: entries)
        for e in 0..<entries {
            let q = WireFormat.readRequest(requestReceive + e * WireFormat.requestBytes)
            owned.merge(entry: e, id: q.id, frequency: q.frequency)
        }
    }

    // MARK: - 2. Rows

    /// The owner's half: each request's answer (size index, row at its width,
    /// extra floats), packed in the order the requests arrived.
    func packRows() -> ExchangeLeg {
        let extra = owned.extras.width
        _ = replies.pack(into: rowSend, entries: { requests.receiveCounts[$0] / WireFormat.requestBytes }) { entry, at in
            let a = owned.answer(entry: entry)
            let w = store.widths[a.size]
            WireFormat.writeRowHeader(at, sizeIndex: a.size)
            let out = WireFormat.rowFloats(at)
            out.update(from: a.row, count: w)
            if extra > 0 { (out + w).update(from: a.extra, count: extra) }
            return WireFormat.rowEntryBytes(width: w, extra: extra)
        }
        return ExchangeLeg(plan: replies, send: UnsafeRawPointer(rowSend), receive: received.rowBuffer, capacity: received.bufferBytes,
                           side: side, step: "rows of")
    }

    /// The requester's half: replies arrive grouped by owner, in this rank's send order.
    func placeRows() {
        let arrived = replies.receivedBytes
        var byte = 0
        for pos in 0..<received.distinctCount { byte += received.place(Int(distinctAtPosition[pos]), at: byte) }
        precondition(byte == arrived, "rows of \(side.plural): \(arrived) bytes arrived, \(byte) expected")
        received.clearGradients(bytes: byte)
    }

    // MARK: - 3. Gradients back to owners

    /// The requester's half: each distinct row's gradient (written through
    /// `received.gradient`) goes back along the rows' pairs, laid out as the rows arrived.
    func gradientLeg() -> ExchangeLeg {
        ExchangeLeg(plan: replies, send: UnsafeRawPointer(received.gradientBuffer), receive: gradientReceive,
                    capacity: owned.capacity * rowEntryCapacity, side: side, step: "row gradients of", back: true)
    }

    /// The owner's half: sum the contributions per ID.
    func sumGradients() {
        owned.beginGradients()
        let extra = owned.extras.width
        var byte = 0
        for e in 0..<owned.entryCount {
            let w = owned.addGradient(entry: e, UnsafePointer(WireFormat.rowFloats(gradientReceive + byte)))
            byte += WireFormat.rowEntryBytes(width: w, extra: extra)
        }
    }

    // MARK: - 4. Per-record values to owners

    /// The requester's half: the slice's values grouped per distinct ID, in the requests' order.
    func packRecordValues(_ values: UnsafePointer<Float>, records n: Int) -> ExchangeLeg {
        let r = received
        // Group the slice's records by distinct ID (counting sort keeps slice order).
        let D = r.distinctCount
        distinctRecordStart.update(repeating: 0, count: D + 1)
        for k in 0..<n { distinctRecordStart[r.distinct(ofRecord: k) + 1] += 1 }
        for d in 0..<D { distinctRecordStart[d + 1] += distinctRecordStart[d] }
        for k in 0..<n {
            let d = r.distinct(ofRecord: k)
            recordsByDistinct[Int(distinctRecordStart[d])] = Int32(k)
            distinctRecordStart[d] += 1
        }
        for d in stride(from: D, to: 0, by: -1) { distinctRecordStart[d] = distinctRecordStart[d - 1] }
        distinctRecordStart[0] = 0
        _ = recordValues.pack(into: valueSend, entries: { requests.sendCounts[$0] / WireFormat.requestBytes }) { pos, at in
            let d = Int(distinctAtPosition[pos])
            let lo = Int(distinctRecordStart[d]), hi = Int(distinctRecordStart[d + 1])
            WireFormat.writeValuesHeader(at, count: hi - lo)
            let out = WireFormat.values(at)
            for j in lo..<hi { out[j - lo] = values[Int(recordsByDistinct[j])] }
            return WireFormat.valuesEntryBytes(count: hi - lo)
        }
        return ExchangeLeg(plan: recordValues, send: UnsafeRawPointer(valueSend), receive: owned.valueBuffer,
                           capacity: owned.valueBufferBytes, side: side, step: "per-record values of")
    }

    /// The owner's half: the values are in `owned`'s buffer, one entry per request.
    func finishRecordValues() {
        owned.valueEntries = owned.entryCount
    }

    /// Request entries that arrived from rank `p` in this batch.
    func requestsReceived(from p: Int) -> Int { requests.receiveCounts[p] / WireFormat.requestBytes }

    /// Clears both views' per-batch markers (O(distinct), not O(IDs)).
    public func finishBatch() {
        received.finish()
        owned.finish()
    }
}
