// Parses MovieLens rating files in place from a memory mapping. Every
// malformed line is an error naming the file, the 1-based line (the header
// being line 1) and what was expected; with `skipInvalid` such lines are
// counted and skipped instead. Accepts CRLF, a UTF-8 BOM and blank lines.

public struct ReadReport: Sendable {
    /// Lines that held a record.
    public var records = 0
    /// Malformed lines skipped (only with `skipInvalid`).
    public var skipped = 0
    /// The first few messages about skipped lines.
    public var firstSkipped: [String] = []
}

public enum RatingsReader {
    /// Reads every rating of `path`, appending to `into`.
    public static func read(path: String, format: RatingsFormat? = nil, skipInvalid: Bool = false,
                            into raw: inout RawRatings) throws -> ReadReport {
        guard let format = format ?? RatingsFormat.detect(fileName: path) else {
            throw DataError.unknownFormat(path: path)
        }
        let file = try MappedFile(path: path)
        if file.bytes.isEmpty { throw DataError.emptyFile(path: path) }
        var parser = Parser(path: path, format: format, skipInvalid: skipInvalid)
        try parser.run(file.bytes, into: &raw)
        if parser.report.records == 0 {
            if parser.report.skipped > 0 {
                throw DataError.tooManyInvalid(path: path, skipped: parser.report.skipped, first: parser.report.firstSkipped)
            }
            throw DataError.noRecords(path: path)
        }
        return parser.report
    }

    /// Reads every rating of `path` into a new `RawRatings`.
    public static func read(path: String, format: RatingsFormat? = nil, skipInvalid: Bool = false) throws -> (RawRatings, ReadReport) {
        var raw = RawRatings()
        let report = try read(path: path, format: format, skipInvalid: skipInvalid, into: &raw)
        return (raw, report)
    }
}

// MARK: - The line parser

private struct FieldError: Error { var message: String }

private struct Parser {
    let path: String
    let format: RatingsFormat
    let skipInvalid: Bool
    var report = ReadReport()
    /// Column of user, item, rating, timestamp, and the number of columns.
    var columns = (user: 0, item: 1, rating: 2, timestamp: 3, count: 4)
    var fieldStarts = [Int](repeating: 0, count: 16)
    var fieldEnds = [Int](repeating: 0, count: 16)

    init(path: String, format: RatingsFormat, skipInvalid: Bool) {
        self.path = path
        self.format = format
        self.skipInvalid = skipInvalid
    }

    mutating func run(_ bytes: UnsafeRawBufferPointer, into raw: inout RawRatings) throws {
        let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let n = bytes.count
        var pos = 0
        if n >= 3 && base[0] == 0xEF && base[1] == 0xBB && base[2] == 0xBF { pos = 3 }
        var lineNumber = 0
        var needHeader = format == .csv || format == .inter
        raw.users.reserveCapacity(raw.count + n / 24)
        raw.items.reserveCapacity(raw.count + n / 24)
        raw.ratings.reserveCapacity(raw.count + n / 24)
        raw.timestamps.reserveCapacity(raw.count + n / 24)
        while pos < n {
            lineNumber += 1
            var end = pos
            while end < n && base[end] != 0x0A { end += 1 }
            let next = end + 1
            var stop = end
            if stop > pos && base[stop - 1] == 0x0D { stop -= 1 }
            defer { pos = next }
            if isBlank(base, pos, stop) { continue }
            if needHeader {
                needHeader = false
                try parseHeader(base, pos, stop, line: lineNumber)
                continue
            }
            do {
                let r = try parseRecord(base, pos, stop)
                raw.append(user: r.user, item: r.item, rating: r.rating, timestamp: r.timestamp)
                report.records += 1
            } catch let e as FieldError {
                let message = "\(path):\(lineNumber): \(e.message)"
                if !skipInvalid { throw DataError.malformed(path: path, line: lineNumber, reason: e.message) }
                report.skipped += 1
                if report.firstSkipped.count < 5 { report.firstSkipped.append(message) }
            }
        }
        if needHeader { throw DataError.emptyFile(path: path) }
    }

    func isBlank(_ b: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        var i = start
        while i < end {
            let c = b[i]
            if c != 0x20 && c != 0x09 { return false }
            i += 1
        }
        return true
    }

    func text(_ b: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> String {
        let shown = min(end - start, 120)
        let s = String(decoding: UnsafeBufferPointer(start: b + start, count: shown), as: UTF8.self)
        return shown < end - start ? s + "…" : s
    }

    /// Splits [start, end) at the format's separator into fieldStarts/fieldEnds; returns the field count.
    mutating func split(_ b: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Int {
        let sep = format.separator
        let s0 = sep[0]
        let two = sep.count == 2
        var count = 0
        var fieldStart = start
        var i = start
        while i < end {
            if b[i] == s0 && (!two || (i + 1 < end && b[i + 1] == sep[1])) {
                if count < fieldStarts.count { fieldStarts[count] = fieldStart; fieldEnds[count] = i }
                count += 1
                i += sep.count
                fieldStart = i
                continue
            }
            i += 1
        }
        if count < fieldStarts.count { fieldStarts[count] = fieldStart; fieldEnds[count] = end }
        return count + 1
    }

    mutating func parseHeader(_ b: UnsafePointer<UInt8>, _ start: Int, _ end: Int, line: Int) throws {
        let header = text(b, start, end)
        switch format {
        case .csv:
            let names = header.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingSpaces() }
            guard names == ["userId", "movieId", "rating", "timestamp"] else {
                throw DataError.malformed(path: path, line: line,
                    reason: "expected the header userId,movieId,rating,timestamp, found '\(header)'")
            }
        case .inter:
            let names = header.split(separator: "\t", omittingEmptySubsequences: false)
                .map { $0.split(separator: ":").first.map { String($0).trimmingSpaces() } ?? "" }
            func column(_ name: String) throws -> Int {
                guard let i = names.firstIndex(of: name) else {
                    throw DataError.malformed(path: path, line: line,
                        reason: "expected a typed .inter header with user_id, item_id, rating and timestamp columns (e.g. user_id:token<TAB>item_id:token<TAB>rating:float<TAB>timestamp:float), found '\(header)'")
                }
                return i
            }
            columns = (try column("user_id"), try column("item_id"), try column("rating"), try column("timestamp"), names.count)
            guard names.count <= fieldStarts.count else {
                throw DataError.malformed(path: path, line: line, reason: "too many columns (\(names.count)) in the header")
            }
        case .dat, .udata:
            break
        }
    }

    mutating func parseRecord(_ b: UnsafePointer<UInt8>, _ start: Int, _ end: Int) throws -> (user: UInt64, item: UInt64, rating: Float, timestamp: Int64) {
        let count = split(b, start, end)
        guard count == columns.count else {
            throw FieldError(message: "expected \(columns.count) \(format.separatorName)-separated fields, found \(count): '\(text(b, start, end))'")
        }
        let user = try parseID(b, fieldStarts[columns.user], fieldEnds[columns.user], what: "user ID")
        let item = try parseID(b, fieldStarts[columns.item], fieldEnds[columns.item], what: "item ID")
        let rating = try parseRating(b, fieldStarts[columns.rating], fieldEnds[columns.rating])
        let timestamp = try parseTimestamp(b, fieldStarts[columns.timestamp], fieldEnds[columns.timestamp])
        return (user, item, rating, timestamp)
    }

    func trimmed(_ b: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> (Int, Int) {
        var s = start, e = end
        while s < e && (b[s] == 0x20 || b[s] == 0x09) { s += 1 }
        while e > s && (b[e - 1] == 0x20 || b[e - 1] == 0x09) { e -= 1 }
        return (s, e)
    }

    func parseID(_ b: UnsafePointer<UInt8>, _ start: Int, _ end: Int, what: String) throws -> UInt64 {
        let (s, e) = trimmed(b, start, end)
        guard s < e else { throw FieldError(message: "empty \(what); expected a non-negative integer") }
        var v: UInt64 = 0
        var i = s
        while i < e {
            let d = b[i] &- 0x30
            guard d < 10 else {
                throw FieldError(message: "\(what) '\(text(b, s, e))' is not a non-negative integer")
            }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(d))
            guard !o1 && !o2 else {
                throw FieldError(message: "\(what) '\(text(b, s, e))' does not fit in 64 bits")
            }
            v = a
            i += 1
        }
        return v
    }

    func parseRating(_ b: UnsafePointer<UInt8>, _ start: Int, _ end: Int) throws -> Float {
        let (s, e) = trimmed(b, start, end)
        let field = text(b, s, e)
        guard s < e, let v = parseDecimal(b, s, e) ?? Double(field), v.isFinite else {
            throw FieldError(message: "rating '\(field)' is not a finite number")
        }
        let range = format.ratingRange
        guard Float(v) >= range.lowerBound && Float(v) <= range.upperBound else {
            throw FieldError(message: "rating \(field) is outside the \(format.rawValue) scale \(range.lowerBound)…\(range.upperBound)")
        }
        return Float(v)
    }

    func parseTimestamp(_ b: UnsafePointer<UInt8>, _ start: Int, _ end: Int) throws -> Int64 {
        let (s, e) = trimmed(b, start, end)
        let field = text(b, s, e)
        guard s < e else { throw FieldError(message: "empty timestamp; expected an integer") }
        var i = s
        let negative = b[i] == UInt8(ascii: "-")
        if negative || b[i] == UInt8(ascii: "+") { i += 1 }
        var v: Int64 = 0
        var digits = 0
        while i < e, case let d = b[i] &- 0x30, d < 10 {
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int64(d))
            guard !o1 && !o2 else { throw FieldError(message: "timestamp '\(field)' does not fit in 64 bits") }
            v = a
            digits += 1
            i += 1
        }
        if i < e && format == .inter {
            // .inter types timestamps as float: accept an integral value like 881250949.0 or 8.8125e8.
            if let d = Double(field), d.isFinite, d == d.rounded(), abs(d) < 9.2e18 { return Int64(d) }
            throw FieldError(message: "timestamp '\(field)' is not an integral number")
        }
        guard digits > 0 && i == e else { throw FieldError(message: "timestamp '\(field)' is not an integer") }
        return negative ? -v : v
    }

    /// Fast path for plain decimals (`4`, `3.5`, `4.0`); nil for anything else.
    func parseDecimal(_ b: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> Double? {
        var i = s
        var whole = 0.0
        var digits = 0
        while i < e, case let d = b[i] &- 0x30, d < 10 { whole = whole * 10 + Double(d); i += 1; digits += 1 }
        guard digits > 0, digits < 10 else { return nil }
        if i == e { return whole }
        guard b[i] == UInt8(ascii: ".") else { return nil }
        i += 1
        var scale = 0.1
        var frac = 0.0
        var fracDigits = 0
        while i < e, case let d = b[i] &- 0x30, d < 10 { frac += Double(d) * scale; scale *= 0.1; i += 1; fracDigits += 1 }
        guard i == e, fracDigits < 8 else { return nil }
        return whole + frac
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" || f == "\u{FEFF}" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s.removeLast() }
        return String(s)
    }
}
