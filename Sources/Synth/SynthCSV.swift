// Writes ratings as MovieLens' `ratings.csv` (header
// `userId,movieId,rating,timestamp`, ratings as "4.0" or "3.5"), so that a
// synthetic stream can go through `prepare` like a real download. Bytes are
// formatted into one 1 MiB buffer and written through `writeAtomically`.
import Data
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes `raw` to `url` as MovieLens `ratings.csv`, atomically (`writeAtomically`).
public func writeMovieLensCSV(_ raw: RawRatings, to url: URL) throws {
    try writeAtomically(path: url.path) { write in
        var out = CSVBytes()
        out.append("userId,movieId,rating,timestamp\n")
        for k in 0..<raw.count {
            out.appendDecimal(raw.users[k])
            out.append(UInt8(ascii: ","))
            out.appendDecimal(raw.items[k])
            out.append(UInt8(ascii: ","))
            out.appendRating(raw.ratings[k])
            out.append(UInt8(ascii: ","))
            out.appendDecimal(raw.timestamps[k])
            out.append(UInt8(ascii: "\n"))
            if out.isFull { try out.flush(write) }
        }
        try out.flush(write)
    }
}

/// A 1 MiB output buffer with decimal formatting, flushed through a writer;
/// the only pointer work of the CSV writer.
private struct CSVBytes: ~Copyable {
    private let buffer: UnsafeMutablePointer<UInt8>
    private var used = 0
    private static let capacity = 1 << 20
    /// Room kept past `capacity` for one line (at most ~70 bytes).
    private static let slack = 256

    init() {
        buffer = .allocate(capacity: Self.capacity + Self.slack)
    }

    deinit { buffer.deallocate() }

    var isFull: Bool { used >= Self.capacity }

    mutating func flush(_ write: (UnsafeRawBufferPointer) throws -> Void) throws {
        try write(UnsafeRawBufferPointer(start: buffer, count: used))
        used = 0
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        buffer[used] = byte
        used += 1
    }

    mutating func append(_ text: String) {
        for byte in text.utf8 { append(byte) }
    }

    @inline(__always)
    mutating func appendDecimal(_ value: UInt64) {
        var digits = 1
        var rest = value / 10
        while rest > 0 { digits += 1; rest /= 10 }
        var v = value
        var at = used + digits - 1
        repeat {
            buffer[at] = UInt8(truncatingIfNeeded: v % 10) &+ 48
            v /= 10
            at -= 1
        } while v > 0
        used += digits
    }

    @inline(__always)
    mutating func appendDecimal(_ value: Int64) {
        if value < 0 { append(UInt8(ascii: "-")) }
        appendDecimal(value.magnitude)
    }

    /// "4.0", "3.5" for whole and half stars; other values as Swift prints them.
    @inline(__always)
    mutating func appendRating(_ rating: Float) {
        let halves = (rating * 2).rounded()
        if halves == rating * 2, halves >= 0, halves < 1e9 {
            let h = UInt64(halves)
            appendDecimal(h / 2)
            append(UInt8(ascii: "."))
            append(h % 2 == 0 ? UInt8(ascii: "0") : UInt8(ascii: "5"))
        } else {
            append(rating.description)
        }
    }
}
