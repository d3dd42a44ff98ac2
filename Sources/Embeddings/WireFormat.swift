// The three kinds of entry the exchange moves (ARCHITECTURE §4), laid out
// here once. Every entry is 4-byte aligned; buffers are raw bytes.
//   request        requester → owner   UInt32 global ID, UInt32 largest frequency in the slice
//   row entry      owner → requester   Int32 size index, the row's w floats, the ID's extra floats
//                  requester → owner   the same layout, holding their gradients (the size index unused)
//   record values  requester → owner   Int32 count c, then c floats (one per record of the ID, in slice order)

enum WireFormat {
    static let requestBytes = 8

    @inline(__always)
    static func writeRequest(_ at: UnsafeMutableRawPointer, id: Int, frequency: UInt32) {
        at.storeBytes(of: UInt32(id), as: UInt32.self)
        (at + 4).storeBytes(of: frequency, as: UInt32.self)
    }

    @inline(__always)
    static func readRequest(_ at: UnsafeRawPointer) -> (id: Int, frequency: UInt32) {
        (Int(at.load(as: UInt32.self)), (at + 4).load(as: UInt32.self))
    }

    /// Bytes of a row entry at width `width` with `extra` floats beside the row.
    @inline(__always)
    static func rowEntryBytes(width: Int, extra: Int) -> Int { 4 + 4 * (width + extra) }

    @inline(__always)
    static func writeRowHeader(_ at: UnsafeMutableRawPointer, sizeIndex: Int) {
        at.storeBytes(of: Int32(sizeIndex), as: Int32.self)
    }

    @inline(__always)
    static func readRowHeader(_ at: UnsafeRawPointer) -> Int { Int(at.load(as: Int32.self)) }

    /// The floats of a row entry: the row, then the extra floats.
    @inline(__always)
    static func rowFloats(_ at: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Float> {
        (at + 4).assumingMemoryBound(to: Float.self)
    }

    /// Bytes of a record-values entry of `count` values.
    @inline(__always)
    static func valuesEntryBytes(count: Int) -> Int { 4 + 4 * count }

    @inline(__always)
    static func writeValuesHeader(_ at: UnsafeMutableRawPointer, count: Int) {
        at.storeBytes(of: Int32(count), as: Int32.self)
    }

    @inline(__always)
    static func readValuesHeader(_ at: UnsafeRawPointer) -> Int { Int(at.load(as: Int32.self)) }

    /// The values of a record-values entry, after its count.
    @inline(__always)
    static func values(_ at: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Float> {
        (at + 4).assumingMemoryBound(to: Float.self)
    }
}
