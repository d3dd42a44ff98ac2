// Writes ratings as MovieLens' `ratings.csv` (header
// `userId,movieId,rating,timestamp`, ratings as "4.0" or "3.5"), so that a
// synthetic stream can go through `prepare` like a real download. Bytes are
// formatted into one 1 MiB buffer and written in chunks to a temporary file
// beside the target, renamed into place once complete and flushed.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writing a CSV file failed; nothing was left under `path`.
public struct MovieLensCSVError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var reason: String
    public var description: String { "\(path): cannot write (\(reason)); nothing was written" }
}

/// Writes `raw` to `url` as MovieLens `ratings.csv`, atomically.
public func writeMovieLensCSV(_ raw: RawRatings, to url: URL) throws {
    let path = url.path
    let temporary = url.deletingLastPathComponent()
        .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))").path
    func failure(_ what: String, _ code: Int32 = errno) -> MovieLensCSVError {
        MovieLensCSVError(path: path, reason: "\(what): \(String(cString: strerror(code)))")
    }
    let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    if fd < 0 { throw failure("creating \(temporary)") }
    var complete = false
    defer { if !complete { unlink(temporary) } }
    do {
        var out = CSVBytes(fd: fd)
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
            if out.isFull { try out.flush() }
        }
        try out.flush()
    } catch let error as CSVBytes.WriteFailed {
        close(fd)
        throw failure("writing", error.code)
    }
    if fsync(fd) != 0 {
        let error = failure("flushing")
        close(fd)
        throw error
    }
    if close(fd) != 0 { throw failure("closing") }
    if rename(temporary, path) != 0 { throw failure("renaming \(temporary)") }
    complete = true
}

/// A 1 MiB output buffer with decimal formatting, flushed to a descriptor;
/// the only pointer work of the writer.
private struct CSVBytes: ~Copyable {
    struct WriteFailed: Error { var code: Int32 }

    private let fd: Int32
    private let buffer: UnsafeMutablePointer<UInt8>
    private var used = 0
    private static let capacity = 1 << 20
    /// Room kept past `capacity` for one line (at most ~70 bytes).
    private static let slack = 256

    init(fd: Int32) {
        self.fd = fd
        buffer = .allocate(capacity: Self.capacity + Self.slack)
    }

    deinit { buffer.deallocate() }

    var isFull: Bool { used >= Self.capacity }

    mutating func flush() throws {
        var done = 0
        while done < used {
            let n = write(fd, buffer + done, used - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw WriteFailed(code: errno)
            }
            done += n
        }
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
