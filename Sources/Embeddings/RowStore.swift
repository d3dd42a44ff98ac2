// Embedding rows stored at their own width (ARCHITECTURE §2, §4): one slab per
// candidate width, each a contiguous block of rows with the row optimizer's
// moments beside them and a free list, so creating, enlarging or freeing a
// row allocates nothing (slabs grow by doubling). A rank holds only the rows
// it owns, indexed by local ID (global ID / P).

/// Where a row lives: its width index and its slot in that width's slab.
public struct RowLocation: Equatable, Sendable {
    public var sizeIndex: Int
    public var slot: Int
}

/// Rows of one width, with Adam's first and second moments beside the values.
final class Slab {
    let width: Int
    private(set) var capacity = 0
    private(set) var live = 0
    private(set) var values: UnsafeMutablePointer<Float>
    private(set) var m: UnsafeMutablePointer<Float>
    private(set) var v: UnsafeMutablePointer<Float>
    private var free: UnsafeMutablePointer<Int32>
    private var freeCount = 0
    private var used = 0

    init(width: Int) {
        self.width = width
        values = .allocate(capacity: 0)
        m = .allocate(capacity: 0)
        v = .allocate(capacity: 0)
        free = .allocate(capacity: 0)
    }

    deinit {
        values.deallocate(); m.deallocate(); v.deallocate(); free.deallocate()
    }

    /// Takes a slot (reusing a freed one first). Moments are zeroed; values are left for the caller.
    func allocate() -> Int {
        let slot: Int
        if freeCount > 0 {
            freeCount -= 1
            slot = Int(free[freeCount])
        } else {
            if used == capacity { grow(to: max(256, capacity * 2)) }
            slot = used
            used += 1
        }
        live += 1
        (m + slot * width).update(repeating: 0, count: width)
        (v + slot * width).update(repeating: 0, count: width)
        return slot
    }

    func release(_ slot: Int) {
        free[freeCount] = Int32(slot)
        freeCount += 1
        live -= 1
    }

    /// Makes room for `rows` slots in all, so that taking them allocates nothing.
    func reserve(_ rows: Int) {
        if rows > capacity { grow(to: rows) }
    }

    private func grow(to newCapacity: Int) {
        func moved(_ p: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
            let q = UnsafeMutablePointer<Float>.allocate(capacity: newCapacity * width)
            q.update(from: p, count: used * width)
            p.deallocate()
            return q
        }
        values = moved(values); m = moved(m); v = moved(v)
        let f = UnsafeMutablePointer<Int32>.allocate(capacity: newCapacity)
        f.update(from: free, count: freeCount)
        free.deallocate()
        free = f
        capacity = newCapacity
    }

    /// Bytes this slab holds: values, two moments, free list.
    var residentBytes: Int { capacity * width * 4 * 3 + capacity * 4 }
}

/// Memory a store holds, as the memory report and Table 2 need it.
public struct RowMemory: Codable, Equatable, Sendable {
    /// Live rows per candidate width, in the order of `widths`.
    public var rowsBySize: [Int]
    public var widths: [Int]
    /// Floats in live row values (Σ rows × width): the paper's "total dims".
    public var valueFloats: Int
    /// Bytes held: slab capacity (values + moments), free lists, and the per-ID index.
    public var residentBytes: Int
    /// The per-ID index alone (width index, slot, last step): what any layout needs.
    public var indexBytes: Int

    public static func + (a: RowMemory, b: RowMemory) -> RowMemory {
        precondition(a.widths == b.widths, "adding memory of stores with different widths")
        return RowMemory(rowsBySize: zip(a.rowsBySize, b.rowsBySize).map(+), widths: a.widths,
                         valueFloats: a.valueFloats + b.valueFloats, residentBytes: a.residentBytes + b.residentBytes,
                         indexBytes: a.indexBytes + b.indexBytes)
    }
}

/// The rows one rank owns for one side (users or items).
public final class RowStore {
    public let widths: [Int]
    /// Number of local IDs this rank may own.
    public let localCount: Int
    private let slabs: [Slab]
    /// Per local ID: width index (-1: no row yet), slot, and the global step its
    /// optimizer state was last brought to (for catch-up Adam).
    private let sizeIndex: UnsafeMutablePointer<Int8>
    private let slot: UnsafeMutablePointer<Int32>
    public let lastStep: UnsafeMutablePointer<Int32>

    public init(widths: [Int], localCount: Int) {
        precondition(!widths.isEmpty && widths.count < 127, "a store needs 1…126 candidate widths, got \(widths.count)")
        self.widths = widths
        self.localCount = localCount
        slabs = widths.map { Slab(width: $0) }
        sizeIndex = .allocate(capacity: max(1, localCount))
        sizeIndex.initialize(repeating: -1, count: max(1, localCount))
        slot = .allocate(capacity: max(1, localCount))
        slot.initialize(repeating: 0, count: max(1, localCount))
        lastStep = .allocate(capacity: max(1, localCount))
        lastStep.initialize(repeating: 0, count: max(1, localCount))
    }

    deinit {
        sizeIndex.deallocate(); slot.deallocate(); lastStep.deallocate()
    }

    /// The width index of `local`'s row, or nil if it has none yet.
    @inline(__always)
    public func sizeIndex(of local: Int) -> Int? {
        let s = sizeIndex[local]
        return s < 0 ? nil : Int(s)
    }

    @inline(__always)
    public func width(of local: Int) -> Int { widths[Int(sizeIndex[local])] }

    /// Pointers to `local`'s values and moments (valid until the next create or enlarge).
    @inline(__always)
    public func row(_ local: Int) -> (values: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>,
                                      v: UnsafeMutablePointer<Float>, width: Int) {
        let s = slabs[Int(sizeIndex[local])]
        let offset = Int(slot[local]) * s.width
        return (s.values + offset, s.m + offset, s.v + offset, s.width)
    }

    /// Creates `local`'s row at width index `size`, with zero moments, and
    /// returns its values for the caller to initialise.
    public func create(_ local: Int, size: Int, step: Int) -> UnsafeMutablePointer<Float> {
        precondition(sizeIndex[local] < 0, "row \(local) exists already")
        let s = slabs[size]
        let newSlot = s.allocate()
        sizeIndex[local] = Int8(size)
        slot[local] = Int32(newSlot)
        lastStep[local] = Int32(step)
        return s.values + newSlot * s.width
    }

    /// Makes room now for `rows` rows at width index `size`, so that creating
    /// them later allocates nothing (the trainer reserves every local ID at
    /// the width rows are created at, keeping slab growth out of the hot path).
    public func reserve(rows: Int, size: Int) {
        precondition(rows >= 0 && size >= 0 && size < widths.count, "reserving \(rows) rows at width index \(size)")
        slabs[size].reserve(rows)
    }

    /// Moves `local`'s row to width index `size`: `fill(old, new)` writes the
    /// new values from the old ones, then the old slot is freed. Moments start at zero.
    public func resize(_ local: Int, to size: Int, step: Int,
                       _ fill: (_ old: UnsafePointer<Float>, _ new: UnsafeMutablePointer<Float>) -> Void) {
        let oldSize = Int(sizeIndex[local])
        precondition(oldSize >= 0 && oldSize != size, "resizing row \(local) from \(oldSize) to \(size)")
        let oldSlab = slabs[oldSize], newSlab = slabs[size]
        let newSlot = newSlab.allocate()
        let oldSlot = Int(slot[local])
        fill(oldSlab.values + oldSlot * oldSlab.width, newSlab.values + newSlot * newSlab.width)
        oldSlab.release(oldSlot)
        sizeIndex[local] = Int8(size)
        slot[local] = Int32(newSlot)
        lastStep[local] = Int32(step)
    }

    public var memory: RowMemory {
        let rows = slabs.map(\.live)
        let floats = zip(rows, widths).reduce(0) { $0 + $1.0 * $1.1 }
        let index = max(1, localCount) * (1 + 4 + 4)
        return RowMemory(rowsBySize: rows, widths: widths, valueFloats: floats,
                         residentBytes: slabs.reduce(index) { $0 + $1.residentBytes }, indexBytes: index)
    }
}
