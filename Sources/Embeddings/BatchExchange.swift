// The one path of every exchange step of ARCHITECTURE §4 — requests, rows,
// gradients, per-record values — for one or more tables at once (the
// trainer's: users' and items'), so a batch makes one exchange per step
// whatever the number of sides. Each table packs its leg as it would alone
// (ShardedTable's `pack…` halves); here the legs are interleaved per
// destination rank into one buffer (table 0's bytes for rank p, then table
// 1's, …), moved by one all-to-all-v, and copied back into each table's own
// receive buffer in rank order, where the table's finishing half reads them.
// Where counts must travel (requests, rows, values), every leg's count for a
// rank goes in one small all-to-all-v first; gradients retrace the rows'
// pairs and need none. After each step the fault-injection seam
// (FaultSeam.swift) may tamper with what arrived; nothing else knows of it.
// The per-batch path allocates nothing: the buffers are sized once, for the
// largest leg of each table.
import Comm

public final class BatchExchange {
    /// The tables, in lane order (the trainer's: EmbeddingSide order).
    public let tables: [ShardedTable]
    let comm: any Communicator
    private let pool = BufferPool()
    /// The fused exchange's counts, and the counts' own exchange (one Int per leg per rank).
    private let fused, counts: ExchangePlan
    private let countSend, countReceive: UnsafeMutablePointer<Int>
    private let sendBuffer, receiveBuffer: UnsafeMutableRawPointer
    private let sendCapacity, receiveCapacity: Int
    /// The legs of the step under way (one per table taking part), and how many.
    private let legs: UnsafeMutablePointer<ExchangeLeg>
    private var legCount = 0
    /// A bug the contract tests plant (`.none` in real runs).
    public internal(set) var fault: InjectedFault = .none

    public init(tables: [ShardedTable], comm: any Communicator) {
        precondition(!tables.isEmpty, "BatchExchange: at least one table")
        self.tables = tables
        self.comm = comm
        let P = comm.size
        fused = ExchangePlan(ranks: P)
        counts = ExchangePlan(ranks: P)
        countSend = pool.make(tables.count * P, 0)
        countReceive = pool.make(tables.count * P, 0)
        sendCapacity = tables.map(\.largestLeg.send).reduce(0, +)
        receiveCapacity = tables.map(\.largestLeg.receive).reduce(0, +)
        sendBuffer = pool.raw(sendCapacity)
        receiveBuffer = pool.raw(receiveCapacity)
        legs = .allocate(capacity: tables.count)
        plant(InjectedFault.fromEnvironment())
    }

    deinit { legs.deallocate() }

    /// Bytes of the fused exchange's buffers (the tables count their own).
    public var scratchBytes: Int { pool.bytes + fused.bytes + counts.bytes }

    // MARK: - The four steps, every table at once

    /// Requests: table i's slice columns are `ids[i]`, `frequencies[i]`; owners merge them.
    public func request(ids: [UnsafeMutablePointer<UInt32>], frequencies: [UnsafeMutablePointer<UInt32>], count n: Int) {
        for (i, t) in tables.enumerated() { add(t.packRequests(ids: ids[i], frequencies: frequencies[i], count: n)) }
        run(.requests)
        for t in tables { t.mergeRequests() }
    }

    /// Rows: owners answer every request; afterwards each table's `received` describes this rank's slice.
    public func answer() {
        for t in tables { add(t.packRows()) }
        run(.rows)
        for t in tables { t.placeRows() }
    }

    /// Gradients: each distinct row's gradient back to its owner, which sums them per ID.
    public func returnGradients() {
        for t in tables { add(t.gradientLeg()) }
        run(.gradients)
        for t in tables { t.sumGradients() }
    }

    /// Per-record values (`values[k]` for record k of this rank's slice) to the
    /// owners of the records' IDs, for the tables `to` selects.
    public func sendRecordValues(_ values: UnsafePointer<Float>, records n: Int, to selected: (ShardedTable) -> Bool) {
        for t in tables where selected(t) { add(t.packRecordValues(values, records: n)) }
        guard legCount > 0 else { return }
        run(.values)
        for t in tables where selected(t) { t.finishRecordValues() }
    }

    // MARK: - Moving the legs of a step as one

    private func add(_ leg: ExchangeLeg) {
        (legs + legCount).initialize(to: leg)
        legCount += 1
    }

    /// Moves the legs added for `step` with one all-to-all-v (after one for
    /// the counts, unless they retrace a run), lays each leg's bytes out where
    /// its table reads them, and lets the seam tamper with what arrived.
    private func run(_ step: ExchangeStep) {
        let P = comm.size, L = legCount
        defer {
            legs.deinitialize(count: L)
            legCount = 0
        }
        if step != .gradients {
            for p in 0..<P { for l in 0..<L { countSend[L * p + l] = legs[l].plan.sendCounts[p] } }
            let entry = L * MemoryLayout<Int>.stride
            for p in 0..<P {
                counts.sendCounts[p] = entry; counts.sendOffsets[p] = p * entry
                counts.receiveCounts[p] = entry; counts.receiveOffsets[p] = p * entry
            }
            comm.allToAllV(send: UnsafeRawBufferPointer(start: countSend, count: P * entry),
                           sendCounts: UnsafeBufferPointer(counts.sendCounts), sendOffsets: UnsafeBufferPointer(counts.sendOffsets),
                           receive: UnsafeMutableRawBufferPointer(start: countReceive, count: P * entry),
                           receiveCounts: UnsafeBufferPointer(counts.receiveCounts),
                           receiveOffsets: UnsafeBufferPointer(counts.receiveOffsets))
            for l in 0..<L { layOut(legs[l], lane: l, of: L) }
        }
        // Interleave per destination: each leg's bytes for rank p, in lane order.
        var byte = 0
        for p in 0..<P {
            fused.sendOffsets[p] = byte
            for l in 0..<L { byte += copy(legs[l].outCounts[p], from: legs[l].send + legs[l].outOffsets[p], to: sendBuffer + byte) }
            fused.sendCounts[p] = byte - fused.sendOffsets[p]
        }
        precondition(byte <= sendCapacity, "BatchExchange: \(byte) bytes to send for a buffer of \(sendCapacity)")
        var running = 0
        for p in 0..<P {
            fused.receiveOffsets[p] = running
            var c = 0
            for l in 0..<L { c += legs[l].inCounts[p] }
            fused.receiveCounts[p] = c
            running += c
        }
        precondition(running <= receiveCapacity, "BatchExchange: \(running) bytes arrive for a buffer of \(receiveCapacity)")
        comm.allToAllV(send: UnsafeRawBufferPointer(start: sendBuffer, count: byte),
                       sendCounts: UnsafeBufferPointer(fused.sendCounts), sendOffsets: UnsafeBufferPointer(fused.sendOffsets),
                       receive: UnsafeMutableRawBufferPointer(start: receiveBuffer, count: receiveCapacity),
                       receiveCounts: UnsafeBufferPointer(fused.receiveCounts),
                       receiveOffsets: UnsafeBufferPointer(fused.receiveOffsets))
        // Each leg's bytes back where its table reads them.
        for p in 0..<P {
            var at = receiveBuffer + fused.receiveOffsets[p]
            for l in 0..<L { at += copy(legs[l].inCounts[p], from: UnsafeRawPointer(at), to: legs[l].receive + legs[l].inOffsets[p]) }
        }
        if fault != .none { for l in 0..<L { tamper(after: step, legs[l]) } }
    }

    /// A forward leg's receive counts from lane `lane` of `lanes` in the counts
    /// that arrived, laid out contiguously in rank order.
    private func layOut(_ leg: ExchangeLeg, lane: Int, of lanes: Int) {
        var running = 0
        for p in 0..<comm.size {
            leg.plan.receiveCounts[p] = countReceive[lanes * p + lane]
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

/// The steps of an exchange, in the order a batch takes them.
public enum ExchangeStep: Sendable {
    case requests, rows, gradients, values
}
