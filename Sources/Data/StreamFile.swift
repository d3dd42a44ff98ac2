// The binary stream file (ARCHITECTURE §5): a versioned, checksummed header
// and a columnar body, read by memory mapping.
//
// Layout, little-endian, every column aligned to 64 bytes:
//   header (256 bytes)
//     0  magic "ESAPNSTR"        8  version u32         12 order u32 (0 time, 1 shuffle)
//     16 records u64            24 users u64           32 items u64
//     40 seed u64               48 checksum u64 (of the whole file with this field zero)
//     56 source length u32      60 source, UTF-8 (at most 196 bytes)
//   body
//     user u32[N]  item u32[N]  rating f32[N]  timestamp i64[N]
//     userFrequency u32[N]  itemFrequency u32[N]
//     userIDs u64[users]  itemIDs u64[items]      (dense ID → original ID)
// Dense IDs number users and items by first appearance in stream order;
// frequency = how many records of that user (item) up to and including this one.

public enum StreamOrder: String, CaseIterable, Sendable, Codable {
    case time
    case shuffle
}

public struct StreamHeader: Equatable, Sendable {
    public static let magic: [UInt8] = Array("ESAPNSTR".utf8)
    public static let version: UInt32 = 1
    public static let size = 256
    static let checksumOffset = 48
    static let maxSource = size - 60

    public var records: Int
    public var users: Int
    public var items: Int
    public var order: StreamOrder
    public var seed: UInt64
    public var checksum: UInt64
    public var source: String

    public init(records: Int, users: Int, items: Int, order: StreamOrder, seed: UInt64, checksum: UInt64 = 0, source: String) {
        self.records = records; self.users = users; self.items = items
        self.order = order; self.seed = seed; self.checksum = checksum; self.source = source
    }
}

/// Byte offsets of the columns for given counts.
public struct StreamLayout: Equatable, Sendable {
    public let user, item, rating, timestamp, userFrequency, itemFrequency, userIDs, itemIDs, fileSize: Int

    public init(records n: Int, users: Int, items: Int) {
        func align(_ x: Int) -> Int { (x + 63) & ~63 }
        var o = StreamHeader.size
        user = o; o = align(o + 4 * n)
        item = o; o = align(o + 4 * n)
        rating = o; o = align(o + 4 * n)
        timestamp = o; o = align(o + 8 * n)
        userFrequency = o; o = align(o + 4 * n)
        itemFrequency = o; o = align(o + 4 * n)
        userIDs = o; o = align(o + 8 * users)
        itemIDs = o; o = align(o + 8 * items)
        fileSize = o
    }
}

extension StreamHeader {
    func encode(into p: UnsafeMutableRawPointer) {
        p.initializeMemory(as: UInt8.self, repeating: 0, count: Self.size)
        for (i, b) in Self.magic.enumerated() { p.storeBytes(of: b, toByteOffset: i, as: UInt8.self) }
        p.storeBytes(of: Self.version.littleEndian, toByteOffset: 8, as: UInt32.self)
        p.storeBytes(of: UInt32(order == .time ? 0 : 1).littleEndian, toByteOffset: 12, as: UInt32.self)
        p.storeBytes(of: UInt64(records).littleEndian, toByteOffset: 16, as: UInt64.self)
        p.storeBytes(of: UInt64(users).littleEndian, toByteOffset: 24, as: UInt64.self)
        p.storeBytes(of: UInt64(items).littleEndian, toByteOffset: 32, as: UInt64.self)
        p.storeBytes(of: seed.littleEndian, toByteOffset: 40, as: UInt64.self)
        p.storeBytes(of: checksum.littleEndian, toByteOffset: Self.checksumOffset, as: UInt64.self)
        var src = Array(source.utf8.prefix(Self.maxSource))
        while !src.isEmpty && String(validating: src, as: UTF8.self) == nil { src.removeLast() }
        p.storeBytes(of: UInt32(src.count).littleEndian, toByteOffset: 56, as: UInt32.self)
        for (i, b) in src.enumerated() { p.storeBytes(of: b, toByteOffset: 60 + i, as: UInt8.self) }
    }

    static func decode(_ b: UnsafeRawBufferPointer, path: String) throws -> StreamHeader {
        guard b.count >= size else {
            throw DataError.notAStream(path: path, reason: "only \(b.count) bytes, shorter than the \(size)-byte header")
        }
        guard Array(b[0..<8]) == magic else { throw DataError.notAStream(path: path, reason: "wrong magic bytes") }
        let version = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        guard version == Self.version else {
            throw DataError.notAStream(path: path, reason: version > Self.version
                ? "format version \(version) is newer than this esapn reads (\(Self.version)): update esapn, or prepare the stream again with this one"
                : "format version \(version), this esapn reads version \(Self.version): prepare the stream again")
        }
        let orderCode = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        guard orderCode <= 1 else { throw DataError.notAStream(path: path, reason: "unknown order code \(orderCode)") }
        func count(_ offset: Int, _ name: String) throws -> Int {
            let v = UInt64(littleEndian: b.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            guard v <= UInt64(UInt32.max) else { throw DataError.notAStream(path: path, reason: "implausible \(name) count \(v)") }
            return Int(v)
        }
        let srcLen = Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 56, as: UInt32.self)))
        guard srcLen <= maxSource else { throw DataError.notAStream(path: path, reason: "bad source length \(srcLen)") }
        return StreamHeader(
            records: try count(16, "record"), users: try count(24, "user"), items: try count(32, "item"),
            order: orderCode == 0 ? .time : .shuffle,
            seed: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 40, as: UInt64.self)),
            checksum: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: checksumOffset, as: UInt64.self)),
            source: String(decoding: b[60..<(60 + srcLen)], as: UTF8.self))
    }
}

/// Checksum of a whole stream file image, reading its checksum field as zero.
func streamChecksum(_ file: UnsafeRawBufferPointer) -> UInt64 {
    var c = Checksum64()
    let off = StreamHeader.checksumOffset
    c.update(UnsafeRawBufferPointer(rebasing: file[0..<off]))
    var zero: UInt64 = 0
    withUnsafeBytes(of: &zero) { c.update($0) }
    // Keep 32-byte chunk alignment of the lanes: header rest then body.
    c.update(UnsafeRawBufferPointer(rebasing: file[(off + 8)...]))
    return c.value
}

// MARK: - Reading

/// A prepared stream, memory-mapped. Columns are views into the mapping.
public final class StreamFile {
    public let path: String
    public let header: StreamHeader
    public let layout: StreamLayout
    private let file: MappedFile

    public var count: Int { header.records }

    /// Opens and validates `path`. With `verify` (the default) the checksum
    /// of the whole file is recomputed and compared; a truncated or altered
    /// file is refused.
    public init(path: String, verify: Bool = true) throws {
        self.path = path
        file = try MappedFile(path: path)
        header = try StreamHeader.decode(file.bytes, path: path)
        layout = StreamLayout(records: header.records, users: header.users, items: header.items)
        guard file.bytes.count == layout.fileSize else {
            throw DataError.notAStream(path: path,
                reason: "size \(file.bytes.count) bytes, expected \(layout.fileSize) for \(header.records) records: the file is truncated or has trailing data")
        }
        if verify {
            let computed = streamChecksum(file.bytes)
            guard computed == header.checksum else {
                throw DataError.checksumMismatch(path: path, stored: header.checksum, computed: computed)
            }
        }
    }

    private func column<T>(_ offset: Int, _ n: Int, _: T.Type) -> UnsafeBufferPointer<T> {
        UnsafeBufferPointer(start: (file.bytes.baseAddress! + offset).assumingMemoryBound(to: T.self), count: n)
    }

    /// Dense user ID of each record.
    public var users: UnsafeBufferPointer<UInt32> { column(layout.user, count, UInt32.self) }
    /// Dense item ID of each record.
    public var items: UnsafeBufferPointer<UInt32> { column(layout.item, count, UInt32.self) }
    public var ratings: UnsafeBufferPointer<Float> { column(layout.rating, count, Float.self) }
    public var timestamps: UnsafeBufferPointer<Int64> { column(layout.timestamp, count, Int64.self) }
    /// Records of this record's user up to and including it.
    public var userFrequencies: UnsafeBufferPointer<UInt32> { column(layout.userFrequency, count, UInt32.self) }
    /// Records of this record's item up to and including it.
    public var itemFrequencies: UnsafeBufferPointer<UInt32> { column(layout.itemFrequency, count, UInt32.self) }
    /// Original user ID of each dense user ID.
    public var userIDs: UnsafeBufferPointer<UInt64> { column(layout.userIDs, header.users, UInt64.self) }
    /// Original item ID of each dense item ID.
    public var itemIDs: UnsafeBufferPointer<UInt64> { column(layout.itemIDs, header.items, UInt64.self) }
}
