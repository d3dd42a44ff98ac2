// Embedding rows stored at their own width (ARCHITECTURE §2, §4): one slab per
// candidate width, each a contiguous block of rows with the row optimizer's
// moments beside them and a free list, so creating, enlarging or freeing a
// row allocates nothing once its chunk is there (slabs grow by chunks of
// ~16 KiB of values, and rows never move). A rank holds only the rows it
// owns, indexed by local ID (global ID / P).
//
// Memory is reported two ways. Reserved: the chunks allocated, which the
// trainer does up front for every local ID at the creation width so that the
// per-batch path never allocates. Resident: what has been touched, the slots
// up to each slab's high-water mark (freed slots stay touched) and the index;
// the operating system backs only touched pages, so this is what a rank's
// RSS grows by.

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Where a row lives: its width index and its slot in that width's slab.
public struct RowLocation: Equatable, Sendable {
    public var sizeIndex: Int
    public var slot: Int
}

/// Rows of one width, with Adam's first and second moments beside the
/// values. Rows live in chunks of about 16 KiB of values (width 128: 32 rows;
/// width 2: 2048 rows), each chunk one allocation laid out as
/// [values | m | v]: a slab grows by one chunk without moving any row, and
/// holds at most one partly used chunk beyond its rows. Freed slots form an
/// intrusive free list (the next free slot is kept in the freed row's first
/// value), so freeing costs no memory. The chunks are consecutive pieces of
/// one anonymous mapping sized for the most rows the slab can hold: taking a
/// chunk is pointer arithmetic, and the operating system backs a page only
/// when a row in it is first written, so the process's RSS grows exactly by
/// the rows touched (malloc would write a header into every chunk).
final class Slab {
    static let chunkFloats = 4096
    let width: Int
    let rowsPerChunk: Int
    private(set) var live = 0
    private(set) var used = 0
    private var chunks: UnsafeMutablePointer<UnsafeMutablePointer<Float>>
    private(set) var chunkCount = 0
    private let maxChunks: Int
    /// The mapping every chunk lives in, and its size in bytes.
    private let region: UnsafeMutableRawPointer
    private let regionBytes: Int
    /// First free slot, or -1.
    private var freeHead: Int32 = -1

    /// `maxRows`: the most rows this slab can ever hold (the owner's IDs), so the
    /// chunk table and free list are sized once.
    init(width: Int, maxRows: Int) {
        self.width = width
        rowsPerChunk = max(1, Self.chunkFloats / width)
        maxChunks = max(1, (maxRows + rowsPerChunk - 1) / rowsPerChunk)
        chunks = .allocate(capacity: maxChunks)
        regionBytes = maxChunks * 3 * rowsPerChunk * width * MemoryLayout<Float>.stride
        let mapped = mmap(nil, regionBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let mapped, mapped != MAP_FAILED else {
            fatalError("cannot map \(regionBytes) bytes for rows of width \(width): \(String(cString: strerror(errno)))")
        }
        region = mapped
    }

    deinit {
        munmap(region, regionBytes)
        chunks.deallocate()
    }

    /// Hands out the next chunk of the mapping (nothing is allocated or touched).
    @inline(__always)
    private func addChunk() {
        chunks[chunkCount] = (region + chunkCount * 3 * rowsPerChunk * width * MemoryLayout<Float>.stride)
            .assumingMemoryBound(to: Float.self)
        chunkCount += 1
    }

    /// Values, m and v of `slot`.
    @inline(__always)
    func row(_ slot: Int) -> (values: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>) {
        let chunk = chunks[slot / rowsPerChunk]
        let offset = (slot % rowsPerChunk) * width
        let stride = rowsPerChunk * width
        return (chunk + offset, chunk + stride + offset, chunk + 2 * stride + offset)
    }

    /// Allocates the chunks for `rows` slots now, so that taking them later allocates nothing.
    func reserve(_ rows: Int) {
        while chunkCount * rowsPerChunk < min(rows, maxChunks * rowsPerChunk) { addChunk() }
    }

    /// Takes a slot (reusing a freed one first). Moments are zeroed; values are left for the caller.
    func allocate() -> Int {
        let slot: Int
        if freeHead >= 0 {
            slot = Int(freeHead)
            freeHead = Int32(bitPattern: row(slot).values[0].bitPattern)
        } else {
            if used == chunkCount * rowsPerChunk {
                precondition(chunkCount < maxChunks, "slab of width \(width) is full (\(used) rows)")
                addChunk()
            }
            slot = used
            used += 1
        }
        live += 1
        let r = row(slot)
        r.m.update(repeating: 0, count: width)
        r.v.update(repeating: 0, count: width)
        return slot
    }

    func release(_ slot: Int) {
        row(slot).values[0] = Float(bitPattern: UInt32(bitPattern: freeHead))
        freeHead = Int32(slot)
        live -= 1
    }

    /// Bytes allocated: its chunks (values and two moments) and the chunk table.
    var reservedBytes: Int { chunkCount * rowsPerChunk * width * 12 + maxChunks * 8 }
    /// Bytes touched: every slot ever taken (values and two moments) and the chunk table's used entries.
    var residentBytes: Int { used * width * 12 + chunkCount * 8 }
}

/// Memory a store holds, as the memory report and Table 2 need it.
public struct RowMemory: Codable, Equatable, Sendable {
    /// Live rows per candidate width, in the order of `widths`.
    public var rowsBySize: [Int]
    public var widths: [Int]
    /// Floats in live row values (Σ rows × width): the paper's "total dims".
    public var valueFloats: Int
    /// Bytes touched: slots ever taken (values + moments), used chunk-table entries, and the per-ID index.
    public var residentBytes: Int
    /// Bytes allocated: whole chunks (touched or not), chunk tables, and the per-ID index.
    public var reservedBytes: Int
    /// The per-ID index alone (width index, slot, last step): what any layout needs.
    public var indexBytes: Int

    public static func + (a: RowMemory, b: RowMemory) -> RowMemory {
        precondition(a.widths == b.widths, "adding memory of stores with different widths")
        return RowMemory(rowsBySize: zip(a.rowsBySize, b.rowsBySize).map(+), widths: a.widths,
                         valueFloats: a.valueFloats + b.valueFloats, residentBytes: a.residentBytes + b.residentBytes,
                         reservedBytes: a.reservedBytes + b.reservedBytes, indexBytes: a.indexBytes + b.indexBytes)
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
        slabs = widths.map { Slab(width: $0, maxRows: max(1, localCount)) }
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

    /// Pointers to `local`'s values and moments (valid until this row is resized or freed: rows never move otherwise).
    @inline(__always)
    public func row(_ local: Int) -> (values: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>,
                                      v: UnsafeMutablePointer<Float>, width: Int) {
        let s = slabs[Int(sizeIndex[local])]
        let r = s.row(Int(slot[local]))
        return (r.values, r.m, r.v, s.width)
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
        return s.row(newSlot).values
    }

    /// Makes room now for `rows` rows at width index `size`, so that creating
    /// them later allocates nothing (the trainer reserves every local ID at
    /// the width rows are created at, keeping that slab's growth out of the hot path).
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
        fill(oldSlab.row(oldSlot).values, newSlab.row(newSlot).values)
        oldSlab.release(oldSlot)
        sizeIndex[local] = Int8(size)
        slot[local] = Int32(newSlot)
        lastStep[local] = Int32(step)
    }

    /// Every row this store holds, in local-ID order: (local ID, width index, values, m, v, last step).
    public func forEachRow(_ body: (_ local: Int, _ size: Int, _ values: UnsafePointer<Float>, _ m: UnsafePointer<Float>,
                                    _ v: UnsafePointer<Float>, _ lastStep: Int) -> Void) {
        for local in 0..<localCount where sizeIndex[local] >= 0 {
            let r = row(local)
            body(local, Int(sizeIndex[local]), r.values, r.m, r.v, Int(lastStep[local]))
        }
    }

    /// Puts back a row a checkpoint saved: width index, values, moments and last step.
    public func restore(_ local: Int, size: Int, lastStep step: Int, values: UnsafePointer<Float>,
                        m: UnsafePointer<Float>, v: UnsafePointer<Float>) {
        let w = widths[size]
        let new = create(local, size: size, step: step)
        new.update(from: values, count: w)
        let r = row(local)
        r.m.update(from: m, count: w)
        r.v.update(from: v, count: w)
    }

    public var memory: RowMemory {
        let rows = slabs.map(\.live)
        let floats = zip(rows, widths).reduce(0) { $0 + $1.0 * $1.1 }
        let index = max(1, localCount) * (1 + 4 + 4)
        return RowMemory(rowsBySize: rows, widths: widths, valueFloats: floats,
                         residentBytes: slabs.reduce(index) { $0 + $1.residentBytes },
                         reservedBytes: slabs.reduce(index) { $0 + $1.reservedBytes }, indexBytes: index)
    }
}
