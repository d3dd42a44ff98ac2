// One exchange for both sides (issue 10): each step of ARCHITECTURE §4 —
// requests, rows, gradients, per-record values — moves users' and items'
// entries together, so a batch makes half the collectives it made with one
// exchange per side. Each table packs its leg as it would alone; here the two
// legs are interleaved per destination rank into one buffer (users' bytes for
// rank p, then items'), moved by one all-to-all-v, and copied back into each
// table's own receive buffer, laid out exactly as its own run would have laid
// it: what the tables read is bit for bit the same. Where counts must travel
// (requests, rows, values), both tables' counts for a rank go in one small
// all-to-all-v first; gradients retrace the rows' pairs and need none.
// The per-batch path allocates nothing: the buffers are sized once, for the
// largest leg of each table.
import Comm

public final class BatchExchange {
    /// Users' table, then items' (EmbeddingSide order).
    public let tables: [ShardedTable]
    let comm: any Communicator
    private let pool = BufferPool()
    /// The fused exchange's counts, and the fixed layout of the counts' own exchange (two Ints per rank).
    private let fused, counts: ExchangePlan
    private let countSend, countReceive: UnsafeMutablePointer<Int>
    private let sendBuffer, receiveBuffer: UnsafeMutableRawPointer
    private let sendCapacity, receiveCapacity: Int

    public init(tables: [ShardedTable], comm: any Communicator) {
        precondition(tables.map(\.side) == EmbeddingSide.allCases, "BatchExchange: one table per side, users first")
        self.tables = tables
        self.comm = comm
        let P = comm.size
        fused = ExchangePlan(ranks: P)
        counts = ExchangePlan(ranks: P)
        let entry = 2 * MemoryLayout<Int>.stride
        for p in 0..<P {
            counts.sendCounts[p] = entry; counts.sendOffsets[p] = p * entry
            counts.receiveCounts[p] = entry; counts.receiveOffsets[p] = p * entry
        }
        countSend = pool.make(2 * P, 0)
        countReceive = pool.make(2 * P, 0)
        sendCapacity = tables.map(\.largestLeg.send).reduce(0, +)
        receiveCapacity = tables.map(\.largestLeg.receive).reduce(0, +)
        sendBuffer = pool.raw(sendCapacity)
        receiveBuffer = pool.raw(receiveCapacity)
    }

    /// Bytes of the fused exchange's buffers (the tables count their own).
    public var scratchBytes: Int { pool.bytes + fused.bytes + counts.bytes }

    private var users: ShardedTable { tables[0] }
    private var items: ShardedTable { tables[1] }

    // MARK: - The four steps, both sides at once

    /// ShardedTable.request for both sides: `ids[s]`, `frequencies[s]` are side s's slice columns.
    public func request(ids: [UnsafeMutablePointer<UInt32>], frequencies: [UnsafeMutablePointer<UInt32>], count n: Int) {
        run(users.packRequests(ids: ids[0], frequencies: frequencies[0], count: n),
            items.packRequests(ids: ids[1], frequencies: frequencies[1], count: n))
        users.mergeRequests()
        items.mergeRequests()
    }

    /// ShardedTable.answer for both sides.
    public func answer() {
        run(users.packRows(), items.packRows())
        users.placeRows()
        items.placeRows()
    }

    /// ShardedTable.returnGradients for both sides.
    public func returnGradients() {
        run(users.gradientLeg(), items.gradientLeg())
        users.sumGradients()
        items.sumGradients()
    }

    /// ShardedTable.sendRecordValues for the sides whose policy reads them
    /// (one exchange for both, or one side's alone).
    public func sendRecordValues(_ values: UnsafePointer<Float>, records n: Int, to sides: (EmbeddingSide) -> Bool) {
        switch (sides(.user), sides(.item)) {
        case (true, true):
            run(users.packRecordValues(values, records: n), items.packRecordValues(values, records: n))
            users.finishRecordValues()
            items.finishRecordValues()
        case (true, false): users.sendRecordValues(values, records: n)
        case (false, true): items.sendRecordValues(values, records: n)
        case (false, false): break
        }
    }

    // MARK: - Moving two legs as one

    /// Moves legs `a` and `b` (the two sides' legs of one step) with one
    /// all-to-all-v (after one for the counts, unless they retrace a run).
    func run(_ a: ExchangeLeg, _ b: ExchangeLeg) {
        precondition(a.back == b.back, "BatchExchange: the legs of one step go the same way")
        let P = comm.size
        if !a.back {
            for p in 0..<P {
                countSend[2 * p] = a.plan.sendCounts[p]
                countSend[2 * p + 1] = b.plan.sendCounts[p]
            }
            let bytes = 2 * P * MemoryLayout<Int>.stride
            comm.allToAllV(send: UnsafeRawBufferPointer(start: countSend, count: bytes),
                           sendCounts: UnsafeBufferPointer(counts.sendCounts), sendOffsets: UnsafeBufferPointer(counts.sendOffsets),
                           receive: UnsafeMutableRawBufferPointer(start: countReceive, count: bytes),
                           receiveCounts: UnsafeBufferPointer(counts.receiveCounts),
                           receiveOffsets: UnsafeBufferPointer(counts.receiveOffsets))
            layOut(a, lane: 0)
            layOut(b, lane: 1)
        }
        // Interleave per destination: a's bytes for rank p, then b's.
        var byte = 0
        for p in 0..<P {
            fused.sendOffsets[p] = byte
            byte += copy(a.outCounts[p], from: a.send + a.outOffsets[p], to: sendBuffer + byte)
            byte += copy(b.outCounts[p], from: b.send + b.outOffsets[p], to: sendBuffer + byte)
            fused.sendCounts[p] = byte - fused.sendOffsets[p]
        }
        precondition(byte <= sendCapacity, "BatchExchange: \(byte) bytes to send for a buffer of \(sendCapacity)")
        var running = 0
        for p in 0..<P {
            fused.receiveOffsets[p] = running
            fused.receiveCounts[p] = a.inCounts[p] + b.inCounts[p]
            running += fused.receiveCounts[p]
        }
        precondition(running <= receiveCapacity, "BatchExchange: \(running) bytes arrive for a buffer of \(receiveCapacity)")
        comm.allToAllV(send: UnsafeRawBufferPointer(start: sendBuffer, count: byte),
                       sendCounts: UnsafeBufferPointer(fused.sendCounts), sendOffsets: UnsafeBufferPointer(fused.sendOffsets),
                       receive: UnsafeMutableRawBufferPointer(start: receiveBuffer, count: receiveCapacity),
                       receiveCounts: UnsafeBufferPointer(fused.receiveCounts),
                       receiveOffsets: UnsafeBufferPointer(fused.receiveOffsets))
        // Each leg's bytes back where its own run would have put them.
        for p in 0..<P {
            let at = receiveBuffer + fused.receiveOffsets[p]
            let aBytes = copy(a.inCounts[p], from: UnsafeRawPointer(at), to: a.receive + a.inOffsets[p])
            _ = copy(b.inCounts[p], from: UnsafeRawPointer(at + aBytes), to: b.receive + b.inOffsets[p])
        }
    }

    /// A forward leg's receive counts from lane `lane` of the counts that
    /// arrived, laid out contiguously in rank order (as ExchangePlan.run does).
    private func layOut(_ leg: ExchangeLeg, lane: Int) {
        var running = 0
        for p in 0..<comm.size {
            leg.plan.receiveCounts[p] = countReceive[2 * p + lane]
            leg.plan.receiveOffsets[p] = running
            running += leg.plan.receiveCounts[p]
        }
        precondition(running <= leg.capacity,
                     "\(leg.step) \(leg.side.plural): \(running) bytes arrive for a buffer of \(leg.capacity)")
    }

    @inline(__always)
    private func copy(_ n: Int, from source: UnsafeRawPointer, to target: UnsafeMutableRawPointer) -> Int {
        if n > 0 { target.copyMemory(from: source, byteCount: n) }
        return n
    }
}
