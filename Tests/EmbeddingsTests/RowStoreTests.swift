// RowStore: rows at their own width in packed per-width slabs, one entry per
// live ID with its per-ID state, 4 bytes of index per ID; the memory it
// reports must be exact, since Table 2, the memory report and the shard
// budget are built from it.
import Embeddings
import Random
import TestSupport
import XCTest

final class RowStoreTests: XCTestCase {
    /// Bytes of the index per ID, of an entry (7 Int32 fields) and of a slot beyond its floats (its owner).
    static let indexBytesPerID = 4, entryBytes = 28, slotOwnerBytes = 4

    func testCreateResizeAndFreedSlotReuseWithoutGrowth() {
        let store = RowStore(widths: [2, 4, 8], localCount: 10)
        XCTAssertNil(store.sizeIndex(of: 0))

        let a = store.create(0, size: 0, step: 3)
        a[0] = 1.5; a[1] = -2
        var row = store.row(0)
        XCTAssertEqual(row.width, 2)
        XCTAssertEqual(store.sizeIndex(of: 0), 0)
        XCTAssertEqual(store.lastStep(of: 0), 3)
        XCTAssertEqual(row.values, a)
        // Dirty the moments: a later row in this slot must not inherit them.
        row.m[0] = 7; row.m[1] = 7; row.v[0] = 9; row.v[1] = 9
        let oldSlot = row.values
        let afterFirst = store.memory

        store.resize(0, to: 2, step: 5) { old, new in
            for j in 0..<8 { new[j] = old[j % 2] * Float(j + 1) }
        }
        row = store.row(0)
        XCTAssertEqual(row.width, 8)
        XCTAssertEqual(store.sizeIndex(of: 0), 2)
        XCTAssertEqual(store.lastStep(of: 0), 5)
        XCTAssertEqual((0..<8).map { row.values[$0] }, (0..<8).map { [1.5, -2][$0 % 2] * Float($0 + 1) })
        XCTAssertEqual((0..<8).map { row.m[$0] }, [Float](repeating: 0, count: 8), "moments start at zero after a resize")
        XCTAssertEqual((0..<8).map { row.v[$0] }, [Float](repeating: 0, count: 8), "moments start at zero after a resize")
        XCTAssertEqual(store.memory.rowsBySize, [0, 0, 1])
        XCTAssertEqual(store.memory.valueFloats, 8)

        // The freed width-2 slot is taken again by the next width-2 row: no growth but the new ID's entry.
        let before = store.memory
        let b = store.create(1, size: 0, step: 6)
        XCTAssertEqual(b, oldSlot, "a freed slot is reused")
        XCTAssertEqual(store.memory.reservedBytes, before.reservedBytes, "reusing a slot maps nothing")
        XCTAssertEqual(store.memory.residentBytes, before.residentBytes + Self.entryBytes + Self.indexBytesPerID,
                       "a freed slot stays touched (no budget: no trim); the new ID adds its entry and index")
        let reused = store.row(1)
        XCTAssertEqual([reused.m[0], reused.m[1], reused.v[0], reused.v[1]], [0, 0, 0, 0],
                       "moments are zeroed when a freed slot is handed out again")
        XCTAssertEqual(store.memory.rowsBySize, [1, 0, 1])
        XCTAssertEqual(store.memory.valueFloats, 10)
        XCTAssertEqual(afterFirst.rowsBySize, [1, 0, 0])
    }

    /// Rows are packed: freeing a row moves the slab's last row into its slot
    /// (values and moments), and every other row keeps its own.
    func testFreeingARowMovesTheLastRowIntoItsSlot() {
        let store = RowStore(widths: [4, 8], localCount: 10)
        for local in 0..<5 {
            let v = store.create(local, size: 0, step: 0)
            for j in 0..<4 { v[j] = Float(10 * local + j) }
            store.row(local).m[0] = Float(local)
        }
        store.resize(1, to: 1, step: 1) { old, new in for j in 0..<8 { new[j] = old[j % 4] } }
        XCTAssertEqual(store.row(4).values, store.row(0).values + 3 * 4, "the last row moved into the freed slot 1")
        for local in [0, 2, 3, 4] {
            XCTAssertEqual((0..<4).map { store.row(local).values[$0] }, (0..<4).map { Float(10 * local + $0) }, "row \(local)")
            XCTAssertEqual(store.row(local).m[0], Float(local), "row \(local)'s moments moved with it")
        }
        XCTAssertEqual((0..<8).map { store.row(1).values[$0] }, (0..<8).map { Float(10 + $0 % 4) })
        store.evict(3)
        XCTAssertNil(store.sizeIndex(of: 3))
        XCTAssertTrue(store.wasEvicted(3))
        XCTAssertEqual(store.counts.evictions, 1)
        XCTAssertEqual(store.evictedIDs, [3])
        _ = store.create(3, size: 0, step: 2)
        XCTAssertEqual(store.counts.readmissions, 1, "an evicted ID that comes back is a re-admission")
        XCTAssertEqual(store.seenIDs, 5)
    }

    /// Per-ID state columns are zero for every new row (a re-admitted or reused entry included) and move with nothing.
    func testColumnsAreZeroedWhenAnEntryIsTakenAgain() {
        let store = RowStore(widths: [2], localCount: 4)
        let column = store.addColumn("state", .f32, width: 3)
        _ = store.create(0, size: 0, step: 0)
        let e = store.entry(of: 0)!
        column.floats(e).update(repeating: 5, count: 3)
        store.evict(0)
        _ = store.create(2, size: 0, step: 0)
        XCTAssertEqual(store.entry(of: 2), e, "the freed entry is taken again")
        XCTAssertEqual(Array(UnsafeBufferPointer(start: column.floats(e), count: 3)), [0, 0, 0])
        XCTAssertEqual(store.memory.entryBytes, Self.entryBytes + 12)
    }

    /// Recency: touching makes a row the most recently seen; the order a checkpoint saves is restored.
    func testRecencyOrder() {
        let store = RowStore(widths: [2], localCount: 6)
        for local in [4, 1, 3, 0] { _ = store.create(local, size: 0, step: 0, stamp: 1) }
        XCTAssertEqual(store.byRecency(), [4, 1, 3, 0])
        store.touch(1, stamp: 3)
        store.touch(4, stamp: 3)
        XCTAssertEqual(store.byRecency(), [3, 0, 1, 4])
        XCTAssertEqual(store.coldestRow?.local, 3)
        XCTAssertEqual(store.coldestRow?.stamp, 1)
        store.evict(0)
        XCTAssertEqual(store.byRecency(), [3, 1, 4])
        store.setRecency([4, 3, 1])
        XCTAssertEqual(store.byRecency(), [4, 3, 1])
        XCTAssertEqual(store.coldestRow?.local, 4)
    }

    /// The budget: admission evicts the least recently seen rows of either
    /// side, never one seen at the current stamp; enlargements fit without
    /// evicting and keep room for unseen IDs; the end of a batch evicts until
    /// it holds; a freed slot is taken again at no cost, and trimmed when another width needs its bytes.
    func testShardBudgetEvictsTheColdestAndHolds() {
        let users = RowStore(widths: [2, 8], localCount: 100), items = RowStore(widths: [2, 8], localCount: 100)
        let slot2 = 3 * 2 * 4 + Self.slotOwnerBytes, slot8 = 3 * 8 * 4 + Self.slotOwnerBytes
        let perID = slot2 + Self.entryBytes
        // Room for the index of both sides and 10 IDs at width 2.
        let limit = 2 * 100 * Self.indexBytesPerID + 10 * perID
        let budget = ShardBudget(limit: limit, stores: [users, items])
        func admit(_ store: RowStore, _ local: Int, stamp: Int) {
            XCTAssertTrue(budget.makeRoom(protecting: stamp) { store.creationCost(local, size: 0) })
            _ = store.create(local, size: 0, step: 0, stamp: stamp)
        }
        // Index the whole side once, so its growth does not blur the counts below.
        admit(users, 99, stamp: 0); admit(items, 99, stamp: 0)
        for local in 0..<4 { admit(users, local, stamp: 1) }
        for local in 0..<4 { admit(items, local, stamp: 2) }
        XCTAssertEqual(budget.resident, limit, "ten IDs at width 2 and both indexes: exactly the budget")
        XCTAssertEqual(users.counts.evictions + items.counts.evictions, 0)
        users.touch(0, stamp: 3)
        admit(items, 50, stamp: 3)
        XCTAssertEqual(users.evictedIDs, [99], "the least recently seen row goes first, of either side")
        admit(users, 50, stamp: 3)
        XCTAssertEqual(items.evictedIDs, [99])
        admit(users, 51, stamp: 3)
        XCTAssertEqual(users.evictedIDs, [1, 99], "then the coldest of stamp 1; user 0 was seen at 3")
        XCTAssertLessThanOrEqual(budget.resident, limit)
        // Everything seen at stamp 9: nothing can be evicted for it.
        for store in [users, items] { for local in store.byRecency() { store.touch(local, stamp: 9) } }
        XCTAssertFalse(budget.makeRoom(protecting: 9) { users.creationCost(60, size: 0) })
        // An enlargement does not evict: it fits or it does not.
        XCTAssertFalse(budget.fits(users.resizeCost(0, to: 1)), "no room for a width-8 row")
        XCTAssertEqual(users.resizeCost(0, to: 1), slot8, "the old slot stays touched until a trim")
        // Over the budget (a batch's own rows), the end of the batch evicts the least recently seen until it holds.
        _ = users.create(60, size: 0, step: 0, stamp: 9)
        users.resize(60, to: 1, step: 0) { _, _ in }
        XCTAssertGreaterThan(budget.resident, limit)
        let evicted = budget.enforce()
        XCTAssertGreaterThan(evicted, 0)
        XCTAssertLessThanOrEqual(budget.resident, limit)
        XCTAssertEqual(budget.resident, users.memory.residentBytes + items.memory.residentBytes)
        let m = users.memory
        XCTAssertEqual(m.residentBytes, m.indexBytes + m.entryBytes + m.rowsBySize[0] * slot2 + m.rowsBySize[1] * slot8,
                       "trimmed: resident bytes are the live rows, entries and index")
    }

    /// The room kept for unseen IDs: their fair share of the budget each when
    /// that holds the smallest width; else the smallest width, at most half the budget.
    func testEnlargementsKeepRoomForUnseenIDs() {
        let store = RowStore(widths: [2, 64], localCount: 10)
        let perID = 3 * 2 * 4 + Self.slotOwnerBytes + Self.entryBytes
        // Less than every ID at width 2 and its index: the smallest width each, at most half the budget.
        let small = ShardBudget(limit: 5 * (perID + Self.indexBytesPerID), stores: [store])
        XCTAssertEqual(small.reserve, small.limit / 2)
        // A fair share of 1,000 bytes per ID: each unseen ID keeps 1,000 − 4 (its index is counted apart).
        let roomy = ShardBudget(limit: 10_000, stores: [store])
        XCTAssertEqual(roomy.reserve, 10 * 996 + 10 * Self.indexBytesPerID)
        _ = store.create(9, size: 0, step: 0)
        XCTAssertEqual(roomy.reserve, 9 * 996, "nine IDs unseen, the index covered")
        // An enlargement fits exactly when the resident bytes, its cost and the room kept are within the limit.
        let cost = store.resizeCost(9, to: 1)
        XCTAssertEqual(cost, 3 * 64 * 4 + Self.slotOwnerBytes, "the new slot; the old stays touched until a trim")
        let exact = ShardBudget(limit: 10_000, stores: [store])
        let spare = exact.limit - exact.resident - exact.reserve
        XCTAssertEqual(exact.fits(cost), cost <= spare)
        XCTAssertTrue(exact.fits(spare), "exactly the spare bytes fit")
        XCTAssertFalse(exact.fits(spare + 1), "one byte more does not")
    }

    /// A random sequence of create / resize / evict, with and without
    /// trimming, against a naive model (packed slabs with a touched high-water,
    /// entries reused from a free list, the index up to the largest ID): rows
    /// per width, value floats and every part of the resident bytes are exact
    /// after every operation, and every row keeps its values and moments.
    func testMemoryAccountingMatchesANaiveModelOverRandomOperations() {
        for trimming in [false, true] { randomOperations(trimming: trimming) }
    }

    func randomOperations(trimming: Bool) {
        let widths = [2, 4, 8, 16, 64, 128]
        let localCount = 900
        let store = RowStore(widths: widths, localCount: localCount)
        let column = store.addColumn("history", .f32, width: 5)
        var rng = RandomStream(seed: 11, purpose: .test)

        struct SlabModel { var live = 0, touched = 0 }
        var slabs = [SlabModel](repeating: SlabModel(), count: widths.count)
        var size = [Int?](repeating: nil, count: localCount)
        var version = [Int](repeating: 0, count: localCount)
        var live = 0, entryHigh = 0, indexHigh = 0
        let entryBytes = Self.entryBytes + 5 * 4

        /// The content a row must hold: a function of its ID, version and element.
        func value(_ local: Int, _ version: Int, _ j: Int) -> Float { Float(local) + Float(version) * 0.25 + Float(j) * 1e-3 }
        func fill(_ local: Int) {
            let r = store.row(local)
            for j in 0..<r.width {
                r.values[j] = value(local, version[local], j)
                r.m[j] = -value(local, version[local], j)
                r.v[j] = value(local, version[local], j) + 1
            }
            column.floats(store.entry(of: local)!)[0] = value(local, version[local], 0)
        }
        func take(_ s: Int) { slabs[s].live += 1; slabs[s].touched = max(slabs[s].touched, slabs[s].live) }
        func give(_ s: Int) { slabs[s].live -= 1; if trimming { slabs[s].touched = slabs[s].live } }
        func checkMemory(_ step: Int, file: StaticString = #filePath, line: UInt = #line) {
            let m = store.memory
            XCTAssertEqual(m.widths, widths)
            XCTAssertEqual(m.rowsBySize, slabs.map(\.live), "rows by size after operation \(step)", file: file, line: line)
            XCTAssertEqual(m.valueFloats, zip(slabs, widths).reduce(0) { $0 + $1.0.live * $1.1 },
                           "value floats after operation \(step)", file: file, line: line)
            XCTAssertEqual(m.indexBytes, indexHigh * Self.indexBytesPerID, file: file, line: line)
            XCTAssertEqual(m.entryBytes, entryHigh * entryBytes, "entries after operation \(step)", file: file, line: line)
            let touched = zip(slabs, widths).reduce(0) { $0 + $1.0.touched * ($1.1 * 12 + Self.slotOwnerBytes) }
            XCTAssertEqual(m.residentBytes, m.indexBytes + m.entryBytes + touched, "resident bytes after operation \(step)",
                           file: file, line: line)
            XCTAssertEqual(store.residentBytes, m.residentBytes)
        }

        var operations = 0
        while operations < 4000 {
            operations += 1
            let roll = rng.below(100)
            if roll < 45, let local = (0..<20).lazy.map({ _ in rng.below(localCount) }).first(where: { size[$0] == nil }) {
                let s = rng.below(widths.count)
                let cost = store.creationCost(local, size: s)
                let before = store.residentBytes
                _ = store.create(local, size: s, step: operations)
                XCTAssertEqual(store.residentBytes - before, cost, "the creation cost is what creating adds")
                take(s)
                if live == entryHigh { entryHigh += 1 }
                live += 1
                indexHigh = max(indexHigh, local + 1)
                size[local] = s
                version[local] += 1
                let r = store.row(local)
                XCTAssertEqual((0..<r.width).map { r.m[$0] }, [Float](repeating: 0, count: r.width), "fresh moments")
                XCTAssertEqual((0..<r.width).map { r.v[$0] }, [Float](repeating: 0, count: r.width), "fresh moments")
                XCTAssertEqual(column.floats(store.entry(of: local)!)[1], 0, "fresh per-ID state")
                fill(local)
            } else if roll < 60, let local = (0..<20).lazy.map({ _ in rng.below(localCount) }).first(where: { size[$0] != nil }) {
                store.evict(local)
                give(size[local]!)
                if trimming { store.trim() }
                live -= 1
                size[local] = nil
            } else if let local = (0..<20).lazy.map({ _ in rng.below(localCount) }).first(where: { size[$0] != nil }) {
                let from = size[local]!
                var to = rng.below(widths.count - 1)
                if to >= from { to += 1 }
                let oldVersion = version[local]
                let cost = store.resizeCost(local, to: to), before = store.residentBytes
                store.resize(local, to: to, step: operations) { old, new in
                    // The old row is intact when `fill` runs.
                    for j in 0..<widths[from] where old[j] != value(local, oldVersion, j) {
                        XCTFail("row \(local) element \(j) lost before resize")
                        break
                    }
                }
                XCTAssertEqual(store.residentBytes - before, cost, "the resize cost is what resizing adds (before a trim)")
                if trimming { store.trim() }
                let r = store.row(local)
                XCTAssertEqual((0..<r.width).map { r.m[$0] }, [Float](repeating: 0, count: r.width), "moments after resize")
                XCTAssertEqual(column.floats(store.entry(of: local)!)[0], value(local, oldVersion, 0), "per-ID state stays")
                take(to)
                give(from)
                size[local] = to
                version[local] += 1
                fill(local)
                XCTAssertEqual(store.lastStep(of: local), operations)
            }
            if operations % 97 == 0 || operations == 4000 { checkMemory(operations) }
        }

        // Every row: its width and its values and moments, across all the moves above.
        var slots = Set<UnsafeMutablePointer<Float>>()
        for local in 0..<localCount {
            XCTAssertEqual(store.sizeIndex(of: local), size[local], "size of \(local)")
            guard let s = size[local] else { continue }
            let r = store.row(local)
            XCTAssertEqual(r.width, widths[s])
            XCTAssertEqual(store.width(of: local), widths[s])
            slots.insert(r.values)
            XCTAssertEqual(column.floats(store.entry(of: local)!)[0], value(local, version[local], 0))
            for j in 0..<r.width where r.values[j] != value(local, version[local], j)
                || r.m[j] != -value(local, version[local], j) || r.v[j] != value(local, version[local], j) + 1 {
                XCTFail("row \(local) element \(j): values or moments changed")
                break
            }
        }
        XCTAssertEqual(slots.count, size.compactMap { $0 }.count, "live rows occupy distinct slots")
        XCTAssertEqual(store.liveIDs, live)
    }

    func testMemoryOfTwoStoresAdds() {
        let a = RowStore(widths: [2, 8], localCount: 5), b = RowStore(widths: [2, 8], localCount: 3)
        _ = a.create(0, size: 0, step: 0); _ = a.create(1, size: 1, step: 0); _ = b.create(2, size: 1, step: 0)
        let sum = a.memory + b.memory
        XCTAssertEqual(sum.rowsBySize, [1, 2])
        XCTAssertEqual(sum.valueFloats, 2 + 8 + 8)
        XCTAssertEqual(sum.residentBytes, a.memory.residentBytes + b.memory.residentBytes)
        XCTAssertEqual(sum.indexBytes, (2 + 3) * Self.indexBytesPerID, "the index up to the largest ID seen")
        XCTAssertEqual(sum.entryBytes, 3 * Self.entryBytes)
    }
}
