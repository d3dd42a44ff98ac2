// The per-batch exchange of one side's rows (ARCHITECTURE §4): requests are
// deduplicated, owners answer with rows at their native width, gradients go
// back and are summed at the owner, which steps each row once; markers are
// reset between batches. On one rank (LocalCommunicator) and on three
// threaded ranks, where several requesters share IDs.
import Comm
import Embeddings
import Foundation
import Kernels
import TestSupport
import XCTest

final class ShardedTableTests: XCTestCase {
    static let widths = [2, 4, 8]
    static let seed: UInt64 = 5
    static let lr = 1e-3

    func table(totalIDs: Int, comm: any Communicator = LocalCommunicator(), maxSlice: Int = 16, maxBatch: Int = 16) -> ShardedTable {
        ShardedTable(side: .item, totalIDs: totalIDs, widths: Self.widths, comm: comm, seed: Self.seed,
                     maxSlice: maxSlice, maxBatch: maxBatch)
    }

    func request(_ t: ShardedTable, _ ids: [UInt32], _ frequencies: [UInt32]) {
        ids.withUnsafeBufferPointer { i in
            frequencies.withUnsafeBufferPointer { f in t.request(ids: i.baseAddress!, frequencies: f.baseAddress!, count: ids.count) }
        }
    }

    /// The N(0,1) row a fresh ID gets, computed independently of the table.
    static func freshRow(_ id: Int, width: Int) -> [Float] {
        var row = [Float](repeating: .nan, count: width)
        row.withUnsafeMutableBufferPointer { initRow(values: $0.baseAddress!, width: width, seed: seed, id: id, side: .item) }
        return row
    }

    /// The row a requester received for distinct index `d`.
    static func received(_ t: ShardedTable, _ d: Int) -> [Float] {
        let w = widths[t.received.sizeIndex(d)]
        return Array(UnsafeBufferPointer(start: t.received.row(d), count: w))
    }

    static func stored(_ t: ShardedTable, local: Int) -> [Float] {
        let r = t.store.row(local)
        return Array(UnsafeBufferPointer(start: r.values, count: r.width))
    }

    /// Adam from zero moments over the gradients of steps 1, 2, …, by hand in Double
    /// (PyTorch's formula, ARCHITECTURE §2): what RowAdam must produce.
    static func adamByHand(_ start: [Float], gradients: [[Double]], lr: Double = lr) -> [Float] {
        let b1 = 0.9, b2 = 0.999, eps = 1e-8
        var p = start.map(Double.init), m = [Double](repeating: 0, count: start.count), v = m
        for (index, g) in gradients.enumerated() {
            let t = Double(index + 1)
            for i in 0..<p.count {
                m[i] = b1 * m[i] + (1 - b1) * g[i]
                v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
                p[i] -= lr / (1 - pow(b1, t)) * m[i] / ((v[i] / (1 - pow(b2, t))).squareRoot() + eps)
            }
        }
        return p.map(Float.init)
    }

    // MARK: - One rank

    func testRequestDeduplicatesAndKeepsTheLargestFrequency() {
        let t = table(totalIDs: 12)
        request(t, [5, 3, 5, 9, 3, 5], [1, 1, 4, 2, 2, 3])
        XCTAssertEqual(t.received.distinctCount, 3)
        XCTAssertEqual((0..<3).map { t.received.globalID($0) }, [5, 3, 9], "distinct IDs in first-appearance order")
        XCTAssertEqual((0..<3).map { t.received.frequency($0) }, [4, 2, 2], "largest frequency per ID")
        XCTAssertEqual((0..<6).map { t.received.distinct(ofRecord: $0) }, [0, 1, 0, 2, 1, 0])
        // One rank owns everything: the merged requests are the same IDs (local = global).
        XCTAssertEqual(t.owned.count, 3)
        XCTAssertEqual((0..<3).map { t.owned.local($0) }, [5, 3, 9])
        XCTAssertEqual((0..<3).map { t.owned.frequency($0) }, [4, 2, 2])
    }

    func testAnswerReturnsTheStoredRowsAtTheirNativeWidth() {
        let t = table(totalIDs: 12)
        let optimizer = RowAdam(lr: Self.lr)
        request(t, [7, 2, 7, 11], [1, 1, 2, 1])
        t.owned.prepareRows(initialSize: 0, readStep: 0, optimizer: optimizer)
        t.answer()
        for d in 0..<t.received.distinctCount {
            let id = Int(t.received.globalID(d))
            XCTAssertEqual(t.received.sizeIndex(d), 0, "fresh rows are created at the initial size")
            XCTAssertEqual(Self.received(t, d), Self.freshRow(id, width: 2), "fresh row of \(id)")
        }
        t.finishBatch()

        // Enlarge two rows by hand; the next batch receives them at their new widths.
        t.store.resize(2, to: 2, step: 0) { old, new in for j in 0..<8 { new[j] = old[j % 2] + Float(j) } }
        t.store.resize(11, to: 1, step: 0) { old, new in for j in 0..<4 { new[j] = -old[j % 2] } }
        request(t, [11, 2, 7], [2, 2, 3])
        t.owned.prepareRows(initialSize: 0, readStep: 0, optimizer: optimizer)
        t.answer()
        let expectedSizes = [1, 2, 0]
        for d in 0..<3 {
            let id = Int(t.received.globalID(d))
            XCTAssertEqual(t.received.sizeIndex(d), expectedSizes[d], "size of \(id)")
            XCTAssertEqual(Self.received(t, d), Self.stored(t, local: id), "row of \(id) as stored")
            XCTAssertEqual(Self.received(t, d).count, Self.widths[expectedSizes[d]], "sent at its own width")
        }
        let fresh2 = Self.freshRow(2, width: 2)
        XCTAssertEqual(Self.received(t, 1), (0..<8).map { fresh2[$0 % 2] + Float($0) })
    }

    func testGradientOfARepeatedIDIsOneEntryAndTheRowStepsOnce() {
        let t = table(totalIDs: 12)
        let optimizer = RowAdam(lr: Self.lr)
        // ID 4 in three records, ID 6 in one.
        request(t, [4, 6, 4, 4], [1, 1, 2, 3])
        t.owned.prepareRows(initialSize: 0, readStep: 0, optimizer: optimizer)
        t.answer()
        XCTAssertEqual(t.received.distinctCount, 2)
        let before = [Self.stored(t, local: 4), Self.stored(t, local: 6)]
        let gradients: [[Double]] = [[0.5, -2], [3, 0.25]]
        for d in 0..<2 {
            for j in 0..<2 { t.received.gradient(d)[j] = Float(gradients[d][j]) }
        }
        t.returnGradients()
        t.owned.applyOptimizer(optimizer, step: 1)
        for d in 0..<2 {
            let id = Int(t.received.globalID(d))
            let expected = Self.adamByHand(before[d], gradients: [gradients[d]])
            assertClose(Self.stored(t, local: id), expected, rtol: 0, atol: 1e-6, "row \(id) after one step")
            XCTAssertEqual(t.store.lastStep(of: id), 1)
            let moved = zip(Self.stored(t, local: id), before[d]).map { abs($0 - $1) }
            XCTAssert(moved.allSatisfy { abs($0 - Float(Self.lr)) < 1e-5 }, "Adam's first step moves each element by lr once: \(moved)")
        }
        // The moments hold one step's worth.
        let r = t.store.row(4)
        assertClose([r.m[0], r.m[1]], [0.05, -0.2], rtol: 1e-6, atol: 0)
        assertClose([r.v[0], r.v[1]], [0.00025, 0.004], rtol: 1e-5, atol: 0)
    }

    func testFinishBatchResetsTheMarkersSoTheNextBatchIsClean() {
        let t = table(totalIDs: 12)
        let optimizer = RowAdam(lr: Self.lr)
        request(t, [1, 2, 3, 2], [1, 1, 1, 2])
        t.owned.prepareRows(initialSize: 0, readStep: 0, optimizer: optimizer)
        t.answer()
        let row3 = Self.stored(t, local: 3)
        t.finishBatch()
        XCTAssertEqual(t.received.distinctCount, 0)
        XCTAssertEqual(t.owned.count, 0)

        request(t, [3, 4, 3], [2, 1, 3])
        XCTAssertEqual(t.received.distinctCount, 2, "only this batch's IDs")
        XCTAssertEqual((0..<2).map { t.received.globalID($0) }, [3, 4])
        XCTAssertEqual((0..<3).map { t.received.distinct(ofRecord: $0) }, [0, 1, 0], "indices restart at 0")
        XCTAssertEqual((0..<2).map { t.received.frequency($0) }, [3, 1], "frequencies of this batch only")
        XCTAssertEqual(t.owned.count, 2)
        XCTAssertEqual((0..<2).map { t.owned.local($0) }, [3, 4])
        t.owned.prepareRows(initialSize: 0, readStep: 0, optimizer: optimizer)
        t.answer()
        XCTAssertEqual(Self.received(t, 0), row3, "an existing row is kept, not recreated")
        XCTAssertEqual(Self.received(t, 1), Self.freshRow(4, width: 2))
        XCTAssertEqual(t.store.memory.rowsBySize, [4, 0, 0])
    }

    // MARK: - Three threaded ranks

    /// Three ranks request overlapping IDs (each with repeats); rows of several
    /// widths are answered to every requester; each requester sends its own
    /// gradient, and the owner steps the row with their sum, once per batch,
    /// over two batches (so that the magnitudes, not only the signs, matter).
    func testThreeRanksShareIDsAndTheOwnerSumsTheirGradients() {
        let P = 3, totalIDs = 14
        // Per batch, per rank: the records' IDs. ID 13 is requested by nobody.
        let batches: [[[UInt32]]] = [
            [[0, 1, 2, 5, 1, 7, 12], [2, 3, 5, 5, 8, 11, 0], [5, 2, 9, 10, 6, 4, 2]],
            [[2, 5, 9, 2], [0, 5, 12], [11, 2, 7, 7, 3]],
        ]
        /// Size index each ID is set to by its owner before the first answer.
        @Sendable func size(_ id: Int) -> Int { id % 3 }
        @Sendable func enlarged(_ id: Int, _ j: Int) -> Float { Float(id) * 0.5 - Float(j) * 0.125 }
        /// Rank r's gradient for ID `id`, element j, in batch b: signs differ across
        /// ranks, so a lost or overwritten contribution changes the result.
        @Sendable func gradient(_ b: Int, _ r: Int, _ id: Int, _ j: Int) -> Double {
            [1.0, -3.0, 1.5][r] * (b == 0 ? 1 : 0.3) * (0.2 + 0.05 * Double(j) + 0.01 * Double(id))
        }

        struct RankResult {
            var received: [Int: [Float]] = [:]          // batch 0, every requested ID
            var ownedFrequency: [Int: UInt32] = [:]      // batch 0
            var startRows: [Int: [Float]] = [:]          // owned IDs before any step
            var finalRows: [Int: [Float]] = [:]
            var finalStep: [Int: Int32] = [:]
        }
        let results = Locked([RankResult](repeating: RankResult(), count: P))
        let world = ThreadedWorld(size: P)
        world.run { comm in
            let r = comm.rank
            let maxSlice = batches.map { $0[r].count }.max()!
            let t = ShardedTable(side: .item, totalIDs: totalIDs, widths: Self.widths, comm: comm, seed: Self.seed,
                                 maxSlice: maxSlice, maxBatch: batches.map { $0.reduce(0) { $0 + $1.count } }.max()!)
            let optimizer = RowAdam(lr: Self.lr)
            var mine = RankResult()
            for (b, batch) in batches.enumerated() {
                let ids = batch[r]
                let frequencies = ids.enumerated().map { UInt32(10 * r + $0.offset + 1) }
                ids.withUnsafeBufferPointer { i in
                    frequencies.withUnsafeBufferPointer { f in t.request(ids: i.baseAddress!, frequencies: f.baseAddress!, count: ids.count) }
                }
                t.owned.prepareRows(initialSize: 0, readStep: b, optimizer: optimizer)
                if b == 0 {
                    for o in 0..<t.owned.count {
                        let local = t.owned.local(o), id = t.sharding.global(of: local)
                        mine.ownedFrequency[id] = t.owned.frequency(o)
                        if size(id) > 0 {
                            t.store.resize(local, to: size(id), step: 0) { _, new in
                                for j in 0..<Self.widths[size(id)] { new[j] = enlarged(id, j) }
                            }
                        }
                        mine.startRows[id] = Self.stored(t, local: local)
                    }
                }
                t.answer()
                for d in 0..<t.received.distinctCount {
                    let id = Int(t.received.globalID(d))
                    if b == 0 { mine.received[id] = Self.received(t, d) }
                    for j in 0..<Self.widths[t.received.sizeIndex(d)] { t.received.gradient(d)[j] = Float(gradient(b, r, id, j)) }
                }
                t.returnGradients()
                t.owned.applyOptimizer(optimizer, step: b + 1)
                t.finishBatch()
            }
            for local in 0..<t.store.localCount where t.store.sizeIndex(of: local) != nil {
                let id = t.sharding.global(of: local)
                mine.finalRows[id] = Self.stored(t, local: local)
                mine.finalStep[id] = Int32(t.store.lastStep(of: local))
            }
            results.update { $0[r] = mine }
        }

        let all = results.value
        for id in 0..<totalIDs {
            let owner = id % P
            let requesters = (0..<P).filter { r in batches[0][r].contains(UInt32(id)) }
            guard let start = all[owner].startRows[id] else {
                XCTAssertTrue(requesters.isEmpty && !batches[1].joined().contains(UInt32(id)), "ID \(id) was requested but has no row")
                XCTAssertNil(all[owner].finalRows[id], "ID \(id) was never requested, yet has a row")
                continue
            }
            // Sizes and rows as the owner holds them, at their own width, to every requester.
            XCTAssertEqual(start.count, Self.widths[size(id)], "ID \(id) width")
            if size(id) == 0 { XCTAssertEqual(start, Self.freshRow(id, width: 2), "fresh row of \(id)") }
            for r in requesters { XCTAssertEqual(all[r].received[id], start, "row of \(id) as received by rank \(r)") }
            // Largest frequency over all requesters' records.
            let largest = requesters.map { r in
                batches[0][r].enumerated().filter { $0.element == UInt32(id) }.map { UInt32(10 * r + $0.offset + 1) }.max()!
            }.max()!
            XCTAssertEqual(all[owner].ownedFrequency[id], largest, "owner's frequency of \(id)")
            // One step per batch with the sum of the requesters' gradients.
            var stepGradients: [[Double]] = []
            for (b, batch) in batches.enumerated() {
                let who = (0..<P).filter { batch[$0].contains(UInt32(id)) }
                stepGradients.append((0..<start.count).map { j in who.reduce(0.0) { $0 + gradient(b, $1, id, j) } })
            }
            // A row absent from batch 2 takes no step 2 (lazy: catch-up happens on the next read).
            var expected: [Float]
            if batches[1].joined().contains(UInt32(id)) {
                expected = Self.adamByHand(start, gradients: stepGradients)
                XCTAssertEqual(all[owner].finalStep[id], 2)
            } else {
                expected = Self.adamByHand(start, gradients: [stepGradients[0]])
                XCTAssertEqual(all[owner].finalStep[id], 1)
            }
            assertClose(all[owner].finalRows[id]!, expected, rtol: 0, atol: 2e-6, "row \(id) owned by rank \(owner)")
        }
    }

    /// Per-record values reach the owners of their IDs: each owned ID gets
    /// the values of its records from every rank, ranks in order and records
    /// in slice order, whatever the order of the requests; an ID nobody
    /// requested gets nothing.
    func testRecordValuesReachTheirOwnersInStreamOrder() {
        let P = 3, totalIDs = 10
        let slices: [[UInt32]] = [[4, 1, 4, 7, 1, 4], [1, 9, 0, 1], [7, 7, 3, 4, 0]]
        /// The value of rank r's record k: distinct everywhere.
        @Sendable func value(_ r: Int, _ k: Int) -> Float { Float(100 * r + k) }
        let received = Locked([Int: [Float]]())
        let world = ThreadedWorld(size: P)
        world.run { comm in
            let r = comm.rank
            let ids = slices[r]
            let t = ShardedTable(side: .user, totalIDs: totalIDs, widths: [2], comm: comm, seed: 1,
                                 maxSlice: ids.count, maxBatch: slices.reduce(0) { $0 + $1.count })
            let frequencies = ids.map { _ in UInt32(1) }
            ids.withUnsafeBufferPointer { i in
                frequencies.withUnsafeBufferPointer { f in t.request(ids: i.baseAddress!, frequencies: f.baseAddress!, count: ids.count) }
            }
            let values = (0..<ids.count).map { value(r, $0) }
            values.withUnsafeBufferPointer { t.sendRecordValues($0.baseAddress!, records: ids.count) }
            var mine = [Int: [Float]]()
            t.owned.forEachRecordValues { o, v, c in
                mine[t.owned.globalID(o), default: []] += Array(UnsafeBufferPointer(start: v, count: c))
            }
            t.finishBatch()
            received.update { all in for (id, v) in mine { all[id] = v } }
        }
        var expected = [Int: [Float]]()
        for (r, ids) in slices.enumerated() {
            for (k, id) in ids.enumerated() { expected[Int(id), default: []].append(value(r, k)) }
        }
        XCTAssertEqual(received.value, expected)
        XCTAssertNil(received.value[2], "ID 2 was not requested")
    }

    /// BatchExchange moves both sides' legs of each step as one exchange, and
    /// every table then holds, bit for bit, what it holds after running its
    /// own steps alone: received rows and sizes, owners' merged frequencies,
    /// rows after the gradients' step, per-record values. With half the collectives.
    func testBothSidesInOneExchangeHoldWhatEachSideAloneHolds() {
        let P = 3, totals = [11, 7]
        // Per batch, per side, per rank: the slice's IDs (users then items; both sides' slices have one length).
        let batches: [[[[UInt32]]]] = [
            [[[0, 3, 3, 9], [1, 4, 10, 2], [5, 3, 8, 0]], [[6, 1, 1, 2], [0, 6, 5, 3], [4, 4, 4, 1]]],
            [[[7, 7, 2], [3, 9, 0], [10, 1, 6]], [[2, 0, 5], [1, 1, 1], [6, 3, 0]]],
        ]
        struct Seen: Equatable {
            var received: [[Float]] = []     // per step: every received row, with its size index and ID
            var owned: [[Float]] = []        // per step: every owned entry's ID, frequency, size, values
            var final: [[Float]] = []
        }
        let seen = Locked([[Seen]](repeating: [Seen(), Seen()], count: P))   // [rank][fused?]
        let calls = Locked([[Int]](repeating: [0, 0], count: P))              // collectives: [rank][fused?]
        let world = ThreadedWorld(size: P)
        world.run { inner in
            let r = inner.rank
            for fusedRun in [false, true] {
                let comm = CountingCommunicator(inner)
                let tables = EmbeddingSide.allCases.map { side in
                    ShardedTable(side: side, totalIDs: totals[side.index], widths: Self.widths, comm: comm, seed: Self.seed,
                                 maxSlice: 4, maxBatch: 12)
                }
                let exchange = BatchExchange(tables: tables, comm: comm)
                let optimizer = RowAdam(lr: Self.lr)
                var mine = Seen()
                let ids = (0..<2).map { _ in UnsafeMutablePointer<UInt32>.allocate(capacity: 4) }
                let frequencies = (0..<2).map { _ in UnsafeMutablePointer<UInt32>.allocate(capacity: 4) }
                let values = UnsafeMutablePointer<Float>.allocate(capacity: 4)
                for (b, batch) in batches.enumerated() {
                    let n = batch[0][r].count
                    for s in 0..<2 {
                        for k in 0..<n {
                            ids[s][k] = batch[s][r][k]
                            frequencies[s][k] = UInt32(1 + 3 * r + k + s)
                        }
                    }
                    for k in 0..<n { values[k] = Float(100 * b + 10 * r + k) }
                    if fusedRun {
                        exchange.request(ids: ids, frequencies: frequencies, count: n)
                    } else {
                        for t in tables { t.request(ids: ids[t.side.index], frequencies: frequencies[t.side.index], count: n) }
                    }
                    for t in tables {
                        t.owned.prepareRows(initialSize: 0, readStep: b, optimizer: optimizer)
                        for o in 0..<t.owned.count where b == 0 {
                            let local = t.owned.local(o), id = t.sharding.global(of: local)
                            let size = (id + t.side.index) % 3
                            if size > 0 { t.store.resize(local, to: size, step: 0) { _, new in
                                for j in 0..<Self.widths[size] { new[j] = Float(id) + 0.1 * Float(j) } } }
                        }
                        mine.owned.append((0..<t.owned.count).flatMap { o in
                            [Float(t.owned.globalID(o)), Float(t.owned.frequency(o)), Float(t.owned.sizeIndex(o))] })
                    }
                    if fusedRun { exchange.answer() } else { for t in tables { t.answer() } }
                    for t in tables {
                        mine.received.append((0..<t.received.distinctCount).flatMap { d in
                            [Float(t.received.globalID(d)), Float(t.received.sizeIndex(d))] + Self.received(t, d) })
                        for d in 0..<t.received.distinctCount {
                            for j in 0..<Self.widths[t.received.sizeIndex(d)] {
                                t.received.gradient(d)[j] = 0.01 * Float(r + 1) * Float(j + 1) + Float(t.side.index)
                            }
                        }
                    }
                    if fusedRun { exchange.returnGradients() } else { for t in tables { t.returnGradients() } }
                    if fusedRun {
                        exchange.sendRecordValues(values, records: n) { _ in true }
                    } else {
                        for t in tables { t.sendRecordValues(values, records: n) }
                    }
                    for t in tables {
                        var got: [Float] = []
                        t.owned.forEachRecordValues { o, v, c in
                            got += [Float(t.owned.globalID(o))] + Array(UnsafeBufferPointer(start: v, count: c))
                        }
                        mine.owned.append(got)
                        t.owned.applyOptimizer(optimizer, step: b + 1)
                        t.finishBatch()
                    }
                }
                for t in tables {
                    mine.final.append((0..<t.store.localCount).flatMap { local in
                        t.store.sizeIndex(of: local) == nil ? [] : Self.stored(t, local: local) })
                }
                let made = CountingCommunicator.Kind.allCases.map { comm.calls[$0.rawValue] }.reduce(0, +)
                seen.update { $0[r][fusedRun ? 1 : 0] = mine }
                calls.update { $0[r][fusedRun ? 1 : 0] = made }
                for p in ids + frequencies { p.deallocate() }
                values.deallocate()
            }
        }
        for r in 0..<P {
            let alone = seen.value[r][0], fused = seen.value[r][1]
            XCTAssertFalse(alone.received.joined().isEmpty, "rank \(r) received rows")
            XCTAssertEqual(fused.received, alone.received, "rank \(r): rows received")
            XCTAssertEqual(fused.owned, alone.owned, "rank \(r): owners' entries and per-record values")
            XCTAssertEqual(fused.final, alone.final, "rank \(r): rows after the gradients' steps")
            // Per batch alone: 4 steps × 2 sides × (counts + bytes), but gradients need no counts: 14.
            // Fused: requests, rows, values 2 each, gradients 1: 7.
            XCTAssertEqual(calls.value[r], [2 * 14, 2 * 7], "rank \(r): collectives alone, fused")
        }
    }
}
