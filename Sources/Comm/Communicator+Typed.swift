// The small collectives of a run's edges (opening, agreeing on failure,
// checkpoints, reports, progress), typed: a caller gathers a plain struct,
// an array or a string, and sums named segments of one buffer, with no byte
// or index arithmetic of its own. Each is one primitive collective. They
// allocate, except `FusedSum.allReduce`, which the per-batch path may call.

// MARK: - Gathers

extension Communicator {
    /// One value of a plain type from every rank, in rank order (one all-gather).
    public func allGather<T: BitwiseCopyable>(_ value: T) -> [T] {
        allGather([value]).map { $0[0] }
    }

    /// An array of `values.count` elements from every rank, the same count on
    /// every rank, in rank order (one all-gather).
    public func allGather<T: BitwiseCopyable>(_ values: [T]) -> [[T]] {
        let n = values.count
        guard n > 0 else { return [[T]](repeating: [], count: size) }
        let flat = [T](unsafeUninitializedCapacity: n * size) { buffer, count in
            values.withUnsafeBytes { s in allGather(s, into: UnsafeMutableRawBufferPointer(buffer)) }
            count = n * size
        }
        return (0..<size).map { r in Array(flat[(r * n)..<((r + 1) * n)]) }
    }

    /// A string from every rank (its first `maxBytes` bytes of UTF-8, cut
    /// at a character boundary), in rank order (one all-gather).
    public func allGather(string: String, maxBytes: Int) -> [String] {
        precondition(maxBytes > 0, "allGather(string:): maxBytes must be positive")
        var utf8 = Array(string.utf8)
        if utf8.count > maxBytes {
            var end = maxBytes
            while end > 0 && (utf8[end] & 0xC0) == 0x80 { end -= 1 }  // not inside a character
            utf8 = Array(utf8[..<end])
        }
        // A length in front, so a string may hold any byte.
        let width = 4 + maxBytes
        var mine = [UInt8](repeating: 0, count: width)
        withUnsafeBytes(of: UInt32(utf8.count).littleEndian) { mine.replaceSubrange(0..<4, with: $0) }
        mine.replaceSubrange(4..<(4 + utf8.count), with: utf8)
        return allGather(mine).map { record in
            let count = record[0..<4].withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self))) }
            return String(decoding: record[4..<(4 + min(count, maxBytes))], as: UTF8.self)
        }
    }
}

// MARK: - Agreeing on failure

/// A failure on some rank that every rank learnt of through `agree`.
public struct AgreedFailure: Error, CustomStringConvertible {
    /// The lowest rank that failed, and its error's text.
    public let rank: Int
    public let message: String
    /// Whether the run had more than one rank (the description then names the rank).
    public let ranks: Int
    public var description: String { ranks > 1 ? "rank \(rank): \(message)" : message }
}

extension Communicator {
    /// Runs `body` on every rank and agrees on the outcome (one all-gather),
    /// so that no rank goes on into a collective that a failed rank will not
    /// make: if any rank threw, every rank throws the lowest failing rank's
    /// error as an `AgreedFailure`. The message keeps its first 1,020 bytes.
    public func agree(_ body: () throws -> Void) throws {
        var failed = false, message = ""
        do { try body() } catch { failed = true; message = "\(error)" }
        // The flag travels in the string's first byte: "0" passed, "1…" failed with the message.
        let all = allGather(string: (failed ? "1" : "0") + message, maxBytes: 1021)
        if let r = all.firstIndex(where: { $0.hasPrefix("1") }) {
            throw AgreedFailure(rank: r, message: String(all[r].dropFirst()), ranks: size)
        }
    }
}

// MARK: - One all-reduce of several segments

/// Named segments of one buffer of doubles summed over every rank by one
/// all-reduce: each caller takes its segment once (`segment(_:)`), fills it,
/// and after `allReduce` reads the sums in the same place. The buffer is made
/// once, so the per-batch path may reduce through it without allocating.
public final class FusedSum {
    public struct Segment: Sendable {
        public let offset: Int
        public let count: Int
    }
    private var storage: UnsafeMutableBufferPointer<Double>
    private var used = 0
    private var sealed = false

    public init() { storage = .allocate(capacity: 0) }
    deinit { storage.deallocate() }

    /// A segment of `count` doubles (before the first `allReduce`).
    public func segment(_ count: Int) -> Segment {
        precondition(!sealed, "FusedSum: segments are taken before the first all-reduce")
        let s = Segment(offset: used, count: count)
        used += count
        return s
    }

    private func seal() {
        guard !sealed else { return }
        sealed = true
        storage.deallocate()
        storage = .allocate(capacity: used)
        storage.initialize(repeating: 0)
    }

    /// The doubles of `s`, to fill before `allReduce` and read after it.
    public subscript(s: Segment) -> UnsafeMutableBufferPointer<Double> {
        seal()
        return UnsafeMutableBufferPointer(rebasing: storage[s.offset..<(s.offset + s.count)])
    }

    /// Sets every segment to zero.
    public func clear() {
        seal()
        storage.update(repeating: 0)
    }

    /// Sums every segment over every rank, in place (one all-reduce).
    public func allReduce(_ comm: any Communicator) {
        seal()
        comm.allReduceSum(storage)
    }
}
