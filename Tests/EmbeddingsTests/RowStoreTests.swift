// RowStore: rows at their own width in per-width slabs with free lists; the
// memory it reports must be exact, since Table 2 and the memory report are
// built from it.
import Embeddings
import Random
import TestSupport
import XCTest

final class RowStoreTests: XCTestCase {
    /// Bytes of the per-ID index: width index (1) + slot (4) + last step (4).
    static let indexBytesPerID = 9

    func testCreateResizeAndFreedSlotReuseWithoutGrowth() {
        let store = RowStore(widths: [2, 4, 8], localCount: 10)
        XCTAssertNil(store.sizeIndex(of: 0))

        let a = store.create(0, size: 0, step: 3)
        a[0] = 1.5; a[1] = -2
        var row = store.row(0)
        XCTAssertEqual(row.width, 2)
        XCTAssertEqual(store.sizeIndex(of: 0), 0)
        XCTAssertEqual(store.lastStep[0], 3)
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
        XCTAssertEqual(store.lastStep[0], 5)
        XCTAssertEqual((0..<8).map { row.values[$0] }, (0..<8).map { [1.5, -2][$0 % 2] * Float($0 + 1) })
        XCTAssertEqual((0..<8).map { row.m[$0] }, [Float](repeating: 0, count: 8), "moments start at zero after a resize")
        XCTAssertEqual((0..<8).map { row.v[$0] }, [Float](repeating: 0, count: 8), "moments start at zero after a resize")
        XCTAssertEqual(store.memory.rowsBySize, [0, 0, 1])
        XCTAssertEqual(store.memory.valueFloats, 8)

        // The freed width-2 slot is taken again by the next width-2 row: no growth.
        let before = store.memory
        let b = store.create(1, size: 0, step: 6)
        XCTAssertEqual(b, oldSlot, "a freed slot is reused")
        XCTAssertEqual(store.memory.reservedBytes, before.reservedBytes, "reusing a slot allocates nothing")
        XCTAssertEqual(store.memory.residentBytes, before.residentBytes, "a freed slot stays touched: reusing it adds nothing")
        let reused = store.row(1)
        XCTAssertEqual([reused.m[0], reused.m[1], reused.v[0], reused.v[1]], [0, 0, 0, 0],
                       "moments are zeroed when a freed slot is handed out again")
        XCTAssertEqual(store.memory.rowsBySize, [1, 0, 1])
        XCTAssertEqual(store.memory.valueFloats, 10)
        XCTAssertEqual(afterFirst.rowsBySize, [1, 0, 0])
    }

    func testReserveSizesTheSlabOnceAndCreatingWithinItDoesNotGrow() {
        let store = RowStore(widths: [4, 16], localCount: 1000)
        store.reserve(rows: 1000, size: 0)
        let reserved = store.memory.reservedBytes
        // Width 4: one chunk of 1024 rows (values, m, v); chunk tables of 1 and 4 entries; the index.
        XCTAssertEqual(reserved, 1024 * 4 * 12 + (1 + 4) * 8 + 1000 * Self.indexBytesPerID)
        // Nothing touched yet but the index and the one chunk-table entry.
        XCTAssertEqual(store.memory.residentBytes, 8 + 1000 * Self.indexBytesPerID)
        var rows: [UnsafeMutablePointer<Float>] = []
        for local in 0..<1000 {
            let v = store.create(local, size: 0, step: 0)
            for j in 0..<4 { v[j] = Float(local * 4 + j) }
            rows.append(v)
        }
        XCTAssertEqual(store.memory.reservedBytes, reserved, "rows within the reservation allocate nothing")
        XCTAssertEqual(store.memory.residentBytes, 1000 * 4 * 12 + 8 + 1000 * Self.indexBytesPerID,
                       "resident: the 1000 slots touched, not the 1024 reserved")
        XCTAssertEqual(Set(rows).count, 1000, "every row has its own slot")
        for local in stride(from: 0, to: 1000, by: 37) {
            XCTAssertEqual(store.row(local).values, rows[local], "rows did not move")
            XCTAssertEqual(store.row(local).values[3], Float(local * 4 + 3))
        }
        store.reserve(rows: 10, size: 0)
        XCTAssertEqual(store.memory.reservedBytes, reserved, "reserving less than held changes nothing")
    }

    /// A random sequence of create / resize / reserve against a naive model of
    /// slabs (high-water mark, free list, chunks of ~4096 floats added one at a
    /// time, or up to the reservation): rows per width, value floats, resident bytes and index
    /// bytes are exact after every operation, and every row keeps its values
    /// and moments across slab growth.
    func testMemoryAccountingMatchesANaiveModelOverRandomOperations() {
        let widths = [2, 4, 8, 16, 64, 128]
        let localCount = 900
        let store = RowStore(widths: widths, localCount: localCount)
        var rng = RandomStream(seed: 11, purpose: .test)

        struct SlabModel { var used = 0, free = 0, live = 0, chunks = 0 }
        var slabs = [SlabModel](repeating: SlabModel(), count: widths.count)
        let rowsPerChunk = widths.map { max(1, 4096 / $0) }
        let maxChunks = rowsPerChunk.map { (localCount + $0 - 1) / $0 }
        var size = [Int?](repeating: nil, count: localCount)
        var version = [Int](repeating: 0, count: localCount)

        /// The content a row must hold: a function of its ID, version and element.
        func value(_ local: Int, _ version: Int, _ j: Int) -> Float { Float(local) + Float(version) * 0.25 + Float(j) * 1e-3 }
        func fill(_ local: Int) {
            let r = store.row(local)
            for j in 0..<r.width {
                r.values[j] = value(local, version[local], j)
                r.m[j] = -value(local, version[local], j)
                r.v[j] = value(local, version[local], j) + 1
            }
        }
        func take(_ s: Int) {
            if slabs[s].free > 0 {
                slabs[s].free -= 1
            } else {
                if slabs[s].used == slabs[s].chunks * rowsPerChunk[s] { slabs[s].chunks += 1 }
                slabs[s].used += 1
            }
            slabs[s].live += 1
        }
        func checkMemory(_ step: Int, file: StaticString = #filePath, line: UInt = #line) {
            let m = store.memory
            XCTAssertEqual(m.widths, widths)
            XCTAssertEqual(m.rowsBySize, slabs.map(\.live), "rows by size after operation \(step)", file: file, line: line)
            XCTAssertEqual(m.valueFloats, zip(slabs, widths).reduce(0) { $0 + $1.0.live * $1.1 },
                           "value floats after operation \(step)", file: file, line: line)
            let index = localCount * Self.indexBytesPerID
            XCTAssertEqual(m.indexBytes, index, file: file, line: line)
            // Reserved, per slab: its chunks' rows × width × (values, m, v) floats + its chunk table (8 bytes a
            // chunk it may hold). Resident: the slots up to the high-water mark + the chunk-table entries in use.
            var slabBytes = 0, touchedBytes = 0
            for s in 0..<widths.count {
                slabBytes += slabs[s].chunks * rowsPerChunk[s] * widths[s] * 12 + maxChunks[s] * 8
                touchedBytes += slabs[s].used * widths[s] * 12 + slabs[s].chunks * 8
            }
            XCTAssertEqual(m.reservedBytes, index + slabBytes, "reserved bytes after operation \(step)", file: file, line: line)
            XCTAssertEqual(m.residentBytes, index + touchedBytes, "resident bytes after operation \(step)", file: file, line: line)
        }

        var operations = 0
        while operations < 4000 {
            operations += 1
            let roll = rng.below(100)
            if roll < 2 {
                let s = rng.below(widths.count), rows = rng.below(1200)
                store.reserve(rows: rows, size: s)
                let wanted = (min(rows, maxChunks[s] * rowsPerChunk[s]) + rowsPerChunk[s] - 1) / rowsPerChunk[s]
                slabs[s].chunks = max(slabs[s].chunks, wanted)
            } else if roll < 50, let local = (0..<20).lazy.map({ _ in rng.below(localCount) }).first(where: { size[$0] == nil }) {
                let s = rng.below(widths.count)
                _ = store.create(local, size: s, step: operations)
                take(s)
                size[local] = s
                version[local] += 1
                let r = store.row(local)
                XCTAssertEqual((0..<r.width).map { r.m[$0] }, [Float](repeating: 0, count: r.width), "fresh moments")
                XCTAssertEqual((0..<r.width).map { r.v[$0] }, [Float](repeating: 0, count: r.width), "fresh moments")
                fill(local)
            } else if let local = (0..<20).lazy.map({ _ in rng.below(localCount) }).first(where: { size[$0] != nil }) {
                let from = size[local]!
                var to = rng.below(widths.count - 1)
                if to >= from { to += 1 }
                let oldVersion = version[local]
                store.resize(local, to: to, step: operations) { old, new in
                    // The old row is intact when `fill` runs.
                    for j in 0..<widths[from] where old[j] != value(local, oldVersion, j) {
                        XCTFail("row \(local) element \(j) lost before resize")
                        break
                    }
                }
                let r = store.row(local)
                XCTAssertEqual((0..<r.width).map { r.m[$0] }, [Float](repeating: 0, count: r.width), "moments after resize")
                take(to)
                slabs[from].free += 1
                slabs[from].live -= 1
                size[local] = to
                version[local] += 1
                fill(local)
                XCTAssertEqual(store.lastStep[local], Int32(operations))
            }
            if operations % 97 == 0 || operations == 4000 { checkMemory(operations) }
        }
        XCTAssertGreaterThan(slabs.map(\.chunks).max()!, 1, "the sequence made some slab grow")

        // Every row: its width and its values and moments, across all the growth above.
        var slots = Set<UnsafeMutablePointer<Float>>()
        for local in 0..<localCount {
            XCTAssertEqual(store.sizeIndex(of: local), size[local], "size of \(local)")
            guard let s = size[local] else { continue }
            let r = store.row(local)
            XCTAssertEqual(r.width, widths[s])
            XCTAssertEqual(store.width(of: local), widths[s])
            slots.insert(r.values)
            for j in 0..<r.width where r.values[j] != value(local, version[local], j)
                || r.m[j] != -value(local, version[local], j) || r.v[j] != value(local, version[local], j) + 1 {
                XCTFail("row \(local) element \(j): values or moments changed")
                break
            }
        }
        XCTAssertEqual(slots.count, size.compactMap { $0 }.count, "live rows occupy distinct slots")
    }

    func testMemoryOfTwoStoresAdds() {
        let a = RowStore(widths: [2, 8], localCount: 5), b = RowStore(widths: [2, 8], localCount: 3)
        _ = a.create(0, size: 0, step: 0); _ = a.create(1, size: 1, step: 0); _ = b.create(2, size: 1, step: 0)
        let sum = a.memory + b.memory
        XCTAssertEqual(sum.rowsBySize, [1, 2])
        XCTAssertEqual(sum.valueFloats, 2 + 8 + 8)
        XCTAssertEqual(sum.residentBytes, a.memory.residentBytes + b.memory.residentBytes)
        XCTAssertEqual(sum.indexBytes, (5 + 3) * Self.indexBytesPerID)
    }
}
