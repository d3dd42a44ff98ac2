// Turns ratings in input order into a stream file image: records ordered by
// time (stable on ties) or shuffled with a seed, IDs remapped densely by first
// appearance, per-record frequencies precomputed, checksummed, and written
// atomically (ARCHITECTURE §5).
import Random

public enum StreamBuilder {
    /// The order of records in the stream: a permutation of 0..<raw.count.
    public static func permutation(_ raw: RawRatings, order: StreamOrder, seed: UInt64) -> [UInt32] {
        let n = raw.count
        precondition(n < Int(UInt32.max), "streams hold fewer than 2^32 records, got \(n)")
        switch order {
        case .shuffle:
            var perm = (0..<n).map { UInt32($0) }
            var rng = RandomStream(seed: seed, purpose: .shuffle)
            perm.withUnsafeMutableBufferPointer { p in
                var i = n - 1
                while i > 0 {
                    let j = rng.below(i + 1)
                    p.swapAt(i, j)
                    i -= 1
                }
            }
            return perm
        case .time:
            return stableTimeOrder(raw.timestamps)
        }
    }

    /// Indices sorted by timestamp, ties kept in input order.
    static func stableTimeOrder(_ ts: [Int64]) -> [UInt32] {
        let n = ts.count
        guard n > 0 else { return [] }
        let lo = ts.min()!, hi = ts.max()!
        let (span, overflow) = hi.subtractingReportingOverflow(lo)
        if !overflow && UInt64(span) < (1 << 32) {
            // Pack (timestamp - min, index) into one 64-bit key: a plain sort of
            // the keys is then stable by construction, and fast.
            var keys = [UInt64](unsafeUninitializedCapacity: n) { buf, count in
                for i in 0..<n { buf[i] = (UInt64(ts[i] &- lo) << 32) | UInt64(i) }
                count = n
            }
            keys.sort()
            return keys.map { UInt32(truncatingIfNeeded: $0) }
        }
        var perm = (0..<n).map { UInt32($0) }
        ts.withUnsafeBufferPointer { t in
            perm.sort { a, b in t[Int(a)] != t[Int(b)] ? t[Int(a)] < t[Int(b)] : a < b }
        }
        return perm
    }

    /// Builds the stream image and writes it to `path` atomically. Returns its header.
    @discardableResult
    public static func write(_ raw: RawRatings, order: StreamOrder, seed: UInt64, source: String, to path: String) throws -> StreamHeader {
        let n = raw.count
        guard n > 0 else { throw DataError.noRecords(path: path) }
        let perm = permutation(raw, order: order, seed: seed)

        // Dense IDs by first appearance in stream order, and running frequencies.
        var userDense = [UInt64: UInt32](), itemDense = [UInt64: UInt32]()
        var userIDs = [UInt64](), itemIDs = [UInt64]()
        var userCount = [UInt32](), itemCount = [UInt32]()
        let u = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: n)
        let it = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: n)
        let uf = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: n)
        let ifr = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: n)
        defer { u.deallocate(); it.deallocate(); uf.deallocate(); ifr.deallocate() }
        for k in 0..<n {
            let src = Int(perm[k])
            let ou = raw.users[src], oi = raw.items[src]
            let du: UInt32
            if let d = userDense[ou] { du = d } else {
                du = UInt32(userIDs.count); userDense[ou] = du; userIDs.append(ou); userCount.append(0)
            }
            let di: UInt32
            if let d = itemDense[oi] { di = d } else {
                di = UInt32(itemIDs.count); itemDense[oi] = di; itemIDs.append(oi); itemCount.append(0)
            }
            userCount[Int(du)] += 1
            itemCount[Int(di)] += 1
            u[k] = du; it[k] = di
            uf[k] = userCount[Int(du)]; ifr[k] = itemCount[Int(di)]
        }
        userDense = [:]; itemDense = [:]

        var header = StreamHeader(records: n, users: userIDs.count, items: itemIDs.count,
                                  order: order, seed: order == .shuffle ? seed : 0, source: source)
        let layout = StreamLayout(records: n, users: userIDs.count, items: itemIDs.count)
        let image = UnsafeMutableRawBufferPointer.allocate(byteCount: layout.fileSize, alignment: 64)
        defer { image.deallocate() }
        image.initializeMemory(as: UInt8.self, repeating: 0)
        let base = image.baseAddress!
        func put<T>(_ offset: Int, _ values: UnsafeBufferPointer<T>) {
            (base + offset).copyMemory(from: values.baseAddress!, byteCount: values.count * MemoryLayout<T>.stride)
        }
        put(layout.user, UnsafeBufferPointer(u))
        put(layout.item, UnsafeBufferPointer(it))
        put(layout.userFrequency, UnsafeBufferPointer(uf))
        put(layout.itemFrequency, UnsafeBufferPointer(ifr))
        let rp = (base + layout.rating).assumingMemoryBound(to: Float.self)
        let tp = (base + layout.timestamp).assumingMemoryBound(to: Int64.self)
        raw.ratings.withUnsafeBufferPointer { r in
            raw.timestamps.withUnsafeBufferPointer { t in
                for k in 0..<n { let s = Int(perm[k]); rp[k] = r[s]; tp[k] = t[s] }
            }
        }
        userIDs.withUnsafeBufferPointer { put(layout.userIDs, $0) }
        itemIDs.withUnsafeBufferPointer { put(layout.itemIDs, $0) }
        header.encode(into: base)
        header.checksum = streamChecksum(UnsafeRawBufferPointer(image))
        header.encode(into: base)
        try writeAtomically(path: path) { write in try write(UnsafeRawBufferPointer(image)) }
        return header
    }
}
