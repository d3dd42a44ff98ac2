// Embedding rows stored at their own width (ARCHITECTURE §2, §4), and
// everything else an ID holds, per live ID (docs/budget.md):
//   - one slab per candidate width: live rows packed in slots 0..<live, each
//     slot [values | m | v] (the row optimizer's moments beside the values);
//     freeing a row moves the slab's last row into its slot, so a slab's
//     touched memory is its live rows plus what was freed since the last trim;
//   - one entry per live ID: its width index, slot, last optimizer step, when
//     it was last seen (the lookup stamp), its place in the recency list, and
//     the per-ID state columns its policy registered (ESAPN's loss history,
//     soft selection's logits, DARTS' moments), zeroed when the entry is taken;
//   - per ID of the stream only the index: 4 bytes, 0 (never seen), 1
//     (evicted) or the entry + 2.
// Every part is an anonymous mapping sized for the most it can hold: taking a
// slot or an entry is arithmetic, the operating system backs a page only when
// it is first written, and a trim gives freed pages back (madvise), so the
// bytes counted resident are the bytes the process holds. With a shard budget
// (ShardBudget) the store evicts the least recently seen rows to admit new
// IDs; freed slots are taken again at no cost, and trimmed (their pages given
// back) when another width needs the bytes.

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import Kernels

/// Pages the OS backs only when written, and can be handed back.
final class AnonymousRegion {
    let base: UnsafeMutableRawPointer
    let bytes: Int
    static let page = Int(sysconf(Int32(_SC_PAGESIZE)))

    init(bytes requested: Int, what: @autoclosure () -> String) {
        bytes = max(Self.page, (requested + Self.page - 1) / Self.page * Self.page)
        let mapped = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let mapped, mapped != MAP_FAILED else {
            fatalError("cannot map \(bytes) bytes for \(what()): \(String(cString: strerror(errno)))")
        }
        base = mapped
    }

    deinit { munmap(base, bytes) }

    /// Gives back the whole pages of bytes from..<to (they read as zero afterwards).
    func release(from: Int, to: Int) {
        let lo = (from + Self.page - 1) / Self.page * Self.page
        let hi = min(bytes, (to + Self.page - 1) / Self.page * Self.page)
        if hi > lo { madvise(base + lo, hi - lo, MADV_DONTNEED) }
    }
}

/// Rows of one width, packed in slots 0..<live, each [values | m | v].
final class Slab {
    let width: Int
    let rowFloats: Int
    let capacity: Int
    private(set) var live = 0
    /// Slots written since the last trim (live ones and freed ones).
    private(set) var touched = 0
    private let rows: AnonymousRegion
    private let owners: AnonymousRegion
    private let values: UnsafeMutablePointer<Float>
    /// Slot → the entry whose row it holds.
    private let ownerOf: UnsafeMutablePointer<Int32>

    init(width: Int, capacity: Int) {
        self.width = width
        rowFloats = 3 * width
        self.capacity = max(1, capacity)
        rows = AnonymousRegion(bytes: self.capacity * 3 * width * 4, what: "rows of width \(width)")
        owners = AnonymousRegion(bytes: self.capacity * 4, what: "the slots of width \(width)")
        values = rows.base.assumingMemoryBound(to: Float.self)
        ownerOf = owners.base.assumingMemoryBound(to: Int32.self)
    }

    /// Bytes a slot costs: values, two moments and its owner.
    var slotBytes: Int { rowFloats * 4 + 4 }

    @inline(__always)
    func row(_ slot: Int) -> (values: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>) {
        let p = values + slot * rowFloats
        return (p, p + width, p + 2 * width)
    }

    @inline(__always) func owner(_ slot: Int) -> Int { Int(ownerOf[slot]) }

    /// Whether one more row writes a slot not yet touched.
    var appendGrows: Bool { live == touched }

    /// Takes the next slot for `entry`; moments are zeroed, values left for the caller.
    func append(entry: Int) -> Int {
        precondition(live < capacity, "slab of width \(width) is full (\(live) rows)")
        let slot = live
        live += 1
        touched = max(touched, live)
        ownerOf[slot] = Int32(entry)
        let r = row(slot)
        r.m.update(repeating: 0, count: width)
        r.v.update(repeating: 0, count: width)
        return slot
    }

    /// Frees `slot`: the last row moves into it. Returns the entry whose row moved (or nil).
    func remove(_ slot: Int) -> (entry: Int, slot: Int)? {
        live -= 1
        guard slot != live else { return nil }
        row(slot).values.update(from: row(live).values, count: rowFloats)
        ownerOf[slot] = ownerOf[live]
        return (Int(ownerOf[slot]), slot)
    }

    /// Hands the pages of freed slots back to the OS.
    func trim() {
        guard touched > live else { return }
        rows.release(from: live * rowFloats * 4, to: touched * rowFloats * 4)
        owners.release(from: live * 4, to: touched * 4)
        touched = live
    }

    /// A checkpoint's touched high-water (never below the live rows).
    func restoreTouched(_ t: Int) { touched = max(live, min(t, capacity)) }

    var residentBytes: Int { touched * slotBytes }
    var mappedBytes: Int { rows.bytes + owners.bytes }
}

/// Per-ID state a policy keeps beside an ID's row: `width` elements per live
/// ID, zeroed when the ID's entry is taken, saved with its row.
public final class IDColumn {
    public let name: String
    public let element: StateBuffer.Element
    public let width: Int
    public let elementBytes: Int
    private let region: AnonymousRegion

    init(name: String, element: StateBuffer.Element, width: Int, capacity: Int) {
        self.name = name
        self.element = element
        self.width = width
        elementBytes = element == .f64 ? 8 : element == .i8 ? 1 : 4
        region = AnonymousRegion(bytes: max(1, capacity) * width * elementBytes, what: "per-ID state '\(name)'")
    }

    public var bytesPerID: Int { width * elementBytes }
    @inline(__always) public func raw(_ entry: Int) -> UnsafeMutableRawPointer { region.base + entry * bytesPerID }
    @inline(__always) public func floats(_ entry: Int) -> UnsafeMutablePointer<Float> { raw(entry).assumingMemoryBound(to: Float.self) }
    @inline(__always) public func ints(_ entry: Int) -> UnsafeMutablePointer<Int32> { raw(entry).assumingMemoryBound(to: Int32.self) }
    var mappedBytes: Int { region.bytes }
}

/// Memory a store holds, as the memory report and Table 2 need it.
public struct RowMemory: Codable, Equatable, Sendable {
    /// Live rows per candidate width, in the order of `widths`.
    public var rowsBySize: [Int]
    public var widths: [Int]
    /// Floats in live row values (Σ rows × width): the paper's "total dims".
    public var valueFloats: Int
    /// Bytes touched: slots (values + moments + owner), entries with their per-ID state, and the index.
    public var residentBytes: Int
    /// Address space mapped for the most rows, entries and IDs this store can hold (backed only when touched).
    public var reservedBytes: Int
    /// The index from ID to entry alone: the one thing kept per ID of the stream (4 bytes each, up to the largest seen).
    public var indexBytes: Int
    /// Entries touched, each with its per-ID state columns.
    public var entryBytes: Int

    public static func + (a: RowMemory, b: RowMemory) -> RowMemory {
        precondition(a.widths == b.widths, "adding memory of stores with different widths")
        return RowMemory(rowsBySize: zip(a.rowsBySize, b.rowsBySize).map(+), widths: a.widths,
                         valueFloats: a.valueFloats + b.valueFloats, residentBytes: a.residentBytes + b.residentBytes,
                         reservedBytes: a.reservedBytes + b.reservedBytes, indexBytes: a.indexBytes + b.indexBytes,
                         entryBytes: a.entryBytes + b.entryBytes)
    }
}

/// What a budget did to one store (results.json's `budget`).
public struct EvictionCounts: Codable, Equatable, Sendable, BitwiseCopyable {
    /// Rows evicted to admit new IDs or to end a batch within the budget.
    public var evictions = 0
    /// Enlargements the policy wanted that did not fit.
    public var refused_enlargements = 0
    /// Evicted IDs that came back (and started again as new rows).
    public var readmissions = 0
    public init() {}
    public static func + (a: Self, b: Self) -> Self {
        var c = Self()
        c.evictions = a.evictions + b.evictions
        c.refused_enlargements = a.refused_enlargements + b.refused_enlargements
        c.readmissions = a.readmissions + b.readmissions
        return c
    }
}

/// The rows one rank owns for one side (users or items), with their per-ID state.
public final class RowStore {
    public let widths: [Int]
    /// Number of local IDs this rank may own.
    public let localCount: Int
    private let slabs: [Slab]
    /// Per local ID: 0 never seen, 1 evicted, else its entry + 2.
    private let indexRegion: AnonymousRegion
    private let index: UnsafeMutablePointer<Int32>
    /// Local IDs below this one have been indexed (the index's touched part).
    private(set) var indexHigh = 0
    /// Per entry: width index, slot, last step, local ID, stamp, recency links (one region, 7 Int32 each).
    private let entryRegion: AnonymousRegion
    private let entries: UnsafeMutablePointer<Int32>
    static let entryFields = 7
    private let entryCapacity: Int
    /// Entries ever taken (the touched part), the first free one (-1: none), and how many are live.
    public private(set) var entryHigh = 0
    private var freeEntry: Int32 = -1
    public private(set) var liveIDs = 0
    /// IDs that ever had a row here (live or evicted).
    public private(set) var seenIDs = 0
    /// Least and most recently seen live entries (-1: none).
    private var coldest: Int32 = -1, hottest: Int32 = -1
    /// Per-ID state registered by the policy and the table, saved with the rows.
    public private(set) var columns: [IDColumn] = []
    public var counts = EvictionCounts()

    public init(widths: [Int], localCount: Int) {
        precondition(!widths.isEmpty && widths.count < 127, "a store needs 1…126 candidate widths, got \(widths.count)")
        self.widths = widths
        self.localCount = localCount
        entryCapacity = max(1, localCount)
        slabs = widths.map { Slab(width: $0, capacity: max(1, localCount)) }
        indexRegion = AnonymousRegion(bytes: entryCapacity * 4, what: "the index of \(localCount) IDs")
        index = indexRegion.base.assumingMemoryBound(to: Int32.self)
        entryRegion = AnonymousRegion(bytes: entryCapacity * Self.entryFields * 4, what: "the entries of \(localCount) IDs")
        entries = entryRegion.base.assumingMemoryBound(to: Int32.self)
    }

    /// Registers per-ID state of `width` elements (before any row exists).
    public func addColumn(_ name: String, _ element: StateBuffer.Element, width: Int) -> IDColumn {
        precondition(liveIDs == 0 && entryHigh == 0, "per-ID state '\(name)' registered after rows exist")
        let c = IDColumn(name: name, element: element, width: width, capacity: entryCapacity)
        columns.append(c)
        return c
    }

    // MARK: - Entries

    private enum Field: Int { case size = 0, slot, lastStep, local, stamp, previous, next }
    @inline(__always) private func field(_ e: Int, _ f: Field) -> Int32 { entries[e * Self.entryFields + f.rawValue] }
    @inline(__always) private func set(_ e: Int, _ f: Field, _ v: Int32) { entries[e * Self.entryFields + f.rawValue] = v }

    /// The entry of `local`'s row, or nil if it has none.
    @inline(__always)
    public func entry(of local: Int) -> Int? {
        let i = index[local]
        return i >= 2 ? Int(i) - 2 : nil
    }

    /// Whether `local` had a row that was evicted (and has none now).
    @inline(__always) public func wasEvicted(_ local: Int) -> Bool { index[local] == 1 }

    /// The width index of `local`'s row, or nil if it has none.
    @inline(__always)
    public func sizeIndex(of local: Int) -> Int? {
        guard let e = entry(of: local) else { return nil }
        return Int(field(e, .size))
    }

    @inline(__always) public func width(of local: Int) -> Int { widths[Int(field(entry(of: local)!, .size))] }
    @inline(__always) public func lastStep(of local: Int) -> Int { Int(field(entry(of: local)!, .lastStep)) }
    @inline(__always) public func setLastStep(of local: Int, _ t: Int) { set(entry(of: local)!, .lastStep, Int32(t)) }
    /// The lookup stamp `local` was last seen at.
    @inline(__always) public func stamp(of local: Int) -> Int { Int(field(entry(of: local)!, .stamp)) }

    /// Pointers to `local`'s values and moments (valid until a row of this store is created, resized or freed).
    @inline(__always)
    public func row(_ local: Int) -> (values: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>,
                                      v: UnsafeMutablePointer<Float>, width: Int) {
        let e = entry(of: local)!
        let s = slabs[Int(field(e, .size))]
        let r = s.row(Int(field(e, .slot)))
        return (r.values, r.m, r.v, s.width)
    }

    // MARK: - Recency

    private func unlink(_ e: Int) {
        let p = field(e, .previous), n = field(e, .next)
        if p >= 0 { set(Int(p), .next, n) } else { coldest = n }
        if n >= 0 { set(Int(n), .previous, p) } else { hottest = p }
    }

    private func linkHottest(_ e: Int) {
        set(e, .previous, hottest)
        set(e, .next, -1)
        if hottest >= 0 { set(Int(hottest), .next, Int32(e)) } else { coldest = Int32(e) }
        hottest = Int32(e)
    }

    /// Marks `local`'s row seen at `stamp`: it becomes the most recently seen.
    @inline(__always)
    public func touch(_ local: Int, stamp: Int) {
        guard let e = entry(of: local) else { return }
        set(e, .stamp, Int32(stamp))
        if hottest != Int32(e) { unlink(e); linkHottest(e) }
    }

    /// The least recently seen live row's (local ID, stamp), or nil when the store is empty.
    public var coldestRow: (local: Int, stamp: Int)? {
        coldest < 0 ? nil : (Int(field(Int(coldest), .local)), Int(field(Int(coldest), .stamp)))
    }

    /// Live local IDs from the least to the most recently seen.
    public func byRecency() -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(liveIDs)
        var e = coldest
        while e >= 0 { out.append(Int(field(Int(e), .local))); e = field(Int(e), .next) }
        return out
    }

    /// Puts the live rows in recency order `order` (local IDs, least recent first), as a checkpoint saved it.
    public func setRecency(_ order: [Int]) {
        precondition(order.count == liveIDs, "a recency order of \(order.count) IDs for \(liveIDs) live ones")
        coldest = -1; hottest = -1
        for local in order { linkHottest(entry(of: local)!) }
    }

    // MARK: - Rows

    /// Bytes creating a row for `local` at width index `size` adds to the resident bytes.
    public func creationCost(_ local: Int, size: Int) -> Int {
        (slabs[size].appendGrows ? slabs[size].slotBytes : 0) + (freeEntry < 0 ? entryBytesPerID : 0)
            + max(0, local + 1 - indexHigh) * 4
    }

    /// Bytes moving `local`'s row to width index `size` adds (the old slot stays touched until a trim).
    public func resizeCost(_ local: Int, to size: Int) -> Int {
        slabs[size].appendGrows ? slabs[size].slotBytes : 0
    }

    /// Hands the pages of every slab's freed slots back to the OS (resident bytes drop to the live rows').
    public func trim() { for s in slabs { s.trim() } }

    /// The same for one width index.
    public func trim(size: Int) { slabs[size].trim() }

    /// Bytes touched by freed slots, which a trim would give back.
    public var trimmableBytes: Int { slabs.reduce(0) { $0 + ($1.touched - $1.live) * $1.slotBytes } }

    /// Creates `local`'s row at width index `size`, with zero moments and zero
    /// per-ID state, most recently seen at `stamp`; returns its values for the caller to initialise.
    public func create(_ local: Int, size: Int, step: Int, stamp: Int = 0) -> UnsafeMutablePointer<Float> {
        precondition(entry(of: local) == nil, "row \(local) exists already")
        if index[local] == 1 { counts.readmissions += 1 } else { seenIDs += 1 }
        let e: Int
        if freeEntry >= 0 {
            e = Int(freeEntry)
            freeEntry = field(e, .next)
        } else {
            e = entryHigh
            entryHigh += 1
        }
        for c in columns { c.raw(e).initializeMemory(as: UInt8.self, repeating: 0, count: c.bytesPerID) }
        let slot = slabs[size].append(entry: e)
        set(e, .size, Int32(size)); set(e, .slot, Int32(slot)); set(e, .lastStep, Int32(step))
        set(e, .local, Int32(local)); set(e, .stamp, Int32(stamp))
        linkHottest(e)
        index[local] = Int32(e + 2)
        indexHigh = max(indexHigh, local + 1)
        liveIDs += 1
        return slabs[size].row(slot).values
    }

    /// Frees e's slot; the slab's pages stay touched (a freed slot is taken again at no cost) until a trim.
    private func free(slabOf e: Int) {
        let s = slabs[Int(field(e, .size))]
        if let moved = s.remove(Int(field(e, .slot))) { set(moved.entry, .slot, Int32(moved.slot)) }
    }

    /// Moves `local`'s row to width index `size`: `fill(old, new)` writes the
    /// new values from the old ones, then the old slot is freed. Moments start at zero.
    public func resize(_ local: Int, to size: Int, step: Int,
                       _ fill: (_ old: UnsafePointer<Float>, _ new: UnsafeMutablePointer<Float>) -> Void) {
        let e = entry(of: local)!
        let oldSize = Int(field(e, .size))
        precondition(oldSize != size, "resizing row \(local) from \(oldSize) to \(size)")
        let newSlab = slabs[size]
        let newSlot = newSlab.append(entry: e)
        fill(slabs[oldSize].row(Int(field(e, .slot))).values, newSlab.row(newSlot).values)
        free(slabOf: e)
        set(e, .size, Int32(size)); set(e, .slot, Int32(newSlot)); set(e, .lastStep, Int32(step))
    }

    /// Evicts `local`'s row: its slot, entry and per-ID state go; the ID comes
    /// back as a new row. Returns the width index it was at.
    @discardableResult
    public func evict(_ local: Int) -> Int {
        let e = entry(of: local)!
        let size = Int(field(e, .size))
        free(slabOf: e)
        unlink(e)
        set(e, .next, freeEntry)
        freeEntry = Int32(e)
        index[local] = 1
        liveIDs -= 1
        counts.evictions += 1
        return size
    }

    /// Local IDs whose rows were evicted and have none now (for checkpoints).
    public var evictedIDs: [Int] { (0..<indexHigh).filter { index[$0] == 1 } }

    /// Marks `local` as evicted (a checkpoint's eviction state), without counting it.
    public func markEvicted(_ local: Int) {
        precondition(entry(of: local) == nil, "marking live row \(local) evicted")
        if index[local] == 0 { seenIDs += 1 }
        index[local] = 1
        indexHigh = max(indexHigh, local + 1)
    }

    /// Every row this store holds, in local-ID order: (local ID, width index, values, m, v, last step).
    public func forEachRow(_ body: (_ local: Int, _ size: Int, _ values: UnsafePointer<Float>, _ m: UnsafePointer<Float>,
                                    _ v: UnsafePointer<Float>, _ lastStep: Int) -> Void) {
        for local in 0..<indexHigh {
            guard let e = entry(of: local) else { continue }
            let r = row(local)
            body(local, Int(field(e, .size)), r.values, r.m, r.v, Int(field(e, .lastStep)))
        }
    }

    /// Puts back a row a checkpoint saved: width index, values, moments, last step and stamp
    /// (its per-ID state follows through `columns`).
    public func restore(_ local: Int, size: Int, lastStep step: Int, stamp: Int = 0, values: UnsafePointer<Float>,
                        m: UnsafePointer<Float>, v: UnsafePointer<Float>) {
        let w = widths[size]
        if index[local] == 1 { index[local] = 0; seenIDs -= 1 }
        let new = create(local, size: size, step: step, stamp: stamp)
        new.update(from: values, count: w)
        let r = row(local)
        r.m.update(from: m, count: w)
        r.v.update(from: v, count: w)
    }

    /// What a checkpoint saves of the store's accounting, so a resume decides as the run would have.
    public var accounting: [Int] { [entryHigh, indexHigh] + slabs.map(\.touched) }

    /// Restores `accounting` after the rows (same number of ranks only): the
    /// touched high-waters as they were (entries beyond the live ones become free).
    public func restoreAccounting(_ saved: [Int]) {
        guard saved.count == 2 + slabs.count else { return }
        while entryHigh < min(saved[0], entryCapacity) {
            set(entryHigh, .next, freeEntry)
            freeEntry = Int32(entryHigh)
            entryHigh += 1
        }
        indexHigh = max(indexHigh, min(saved[1], localCount))
        for (s, t) in zip(slabs, saved.dropFirst(2)) { s.restoreTouched(t) }
    }

    /// Bytes the index grows by until it covers every local ID.
    public var unindexedBytes: Int { (localCount - indexHigh) * 4 }

    /// Bytes one more ID at the smallest width costs (a slot and an entry).
    public var creationCostAtSmallest: Int { slabs[0].slotBytes + entryBytesPerID }

    var entryBytesPerID: Int { Self.entryFields * 4 + columns.reduce(0) { $0 + $1.bytesPerID } }

    public var memory: RowMemory {
        let rows = slabs.map(\.live)
        let floats = zip(rows, widths).reduce(0) { $0 + $1.0 * $1.1 }
        let indexBytes = indexHigh * 4, entryBytes = entryHigh * entryBytesPerID
        let mapped = indexRegion.bytes + entryRegion.bytes + slabs.reduce(0) { $0 + $1.mappedBytes }
            + columns.reduce(0) { $0 + $1.mappedBytes }
        return RowMemory(rowsBySize: rows, widths: widths, valueFloats: floats,
                         residentBytes: slabs.reduce(indexBytes + entryBytes) { $0 + $1.residentBytes },
                         reservedBytes: mapped, indexBytes: indexBytes, entryBytes: entryBytes)
    }

    /// Resident bytes alone (what the budget checks; cheaper than `memory`).
    public var residentBytes: Int {
        slabs.reduce(indexHigh * 4 + entryHigh * entryBytesPerID) { $0 + $1.residentBytes }
    }
}

