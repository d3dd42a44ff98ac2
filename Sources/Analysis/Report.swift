// Reading run folders for `esapn report`: results.json (schema in Results.swift)
// decoded with errors that name the file and the key, plus the small
// statistics and number formats the tables share. The tables themselves are
// in Report+Tables.swift.
import Foundation
import Training

// MARK: - Errors

/// Why a run folder could not be reported. The description names the path and
/// what is wrong, so the CLI can print it as is.
public enum ReportError: Error, CustomStringConvertible, Equatable, Sendable {
    case noRuns
    case notFound(path: String)
    case missingResults(directory: String)
    case unreadable(path: String, reason: String)
    case malformedResults(path: String, reason: String)
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case .noRuns:
            return "no run folder given: pass one or more RUN_DIRs written by `esapn train`"
        case .notFound(let path):
            return "\(path): no such file or directory"
        case .missingResults(let directory):
            return "\(directory): no \(ResultFiles.results) in this folder "
                + "(is it a run folder written by `esapn train --output`, and did the run finish?)"
        case .unreadable(let path, let reason):
            return "\(path): cannot be read: \(reason)"
        case .malformedResults(let path, let reason):
            return "\(path): malformed results: \(reason)"
        case .cannotWrite(let path, let reason):
            return "\(path): cannot write the report: \(reason)"
        }
    }
}

// MARK: - Loading

/// One run folder as the report sees it.
public struct LoadedRun: Equatable, Sendable {
    /// The folder as it was given (shown in the report).
    public var path: String
    public var results: RunResults

    public init(path: String, results: RunResults) { self.path = path; self.results = results }
}

/// Loads `results.json` from a run folder (or from the file itself when `path`
/// names a results.json), checking what the tables rely on.
public func loadRun(_ path: String) throws -> LoadedRun {
    let fm = FileManager.default
    var isDirectory: ObjCBool = false
    guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else { throw ReportError.notFound(path: path) }
    let file: String
    if isDirectory.boolValue {
        file = URL(fileURLWithPath: path).appendingPathComponent(ResultFiles.results).path
        guard fm.fileExists(atPath: file) else { throw ReportError.missingResults(directory: path) }
    } else {
        file = path
    }
    let data: Data
    do {
        data = try Data(contentsOf: URL(fileURLWithPath: file))
    } catch {
        throw ReportError.unreadable(path: file, reason: "\(error)")
    }
    let results = try decodeResults(data, path: file)
    return LoadedRun(path: path, results: results)
}

public func loadRun(_ directory: URL) throws -> LoadedRun { try loadRun(directory.path) }

/// Loads every folder, in the order given; the first bad one stops the report.
public func loadRuns(_ paths: [String]) throws -> [LoadedRun] {
    guard !paths.isEmpty else { throw ReportError.noRuns }
    return try paths.map { try loadRun($0) }
}

/// Decodes results.json, turning Foundation's decoding errors into a message
/// that names the key path ("memory.per_rank[1].resident_bytes") and what was
/// expected, then checks the width keys of the size tables.
public func decodeResults(_ data: Data, path: String) throws -> RunResults {
    let decoder = JSONDecoder()
    decoder.nonConformingFloatDecodingStrategy = .convertFromString(
        positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
    let results: RunResults
    do {
        results = try decoder.decode(RunResults.self, from: data)
    } catch let error as DecodingError {
        throw ReportError.malformedResults(path: path, reason: describe(error, data))
    } catch {
        throw ReportError.malformedResults(path: path, reason: "\(error)")
    }
    func checkWidths(_ counts: [String: Int], _ key: String) throws {
        for (width, count) in counts {
            guard let w = Int(width), w > 0 else {
                throw ReportError.malformedResults(
                    path: path, reason: "'\(key)' has the key '\(width)'; expected positive widths such as "
                        + ReportFormat.paperWidths.map(String.init).joined(separator: ", "))
            }
            guard count >= 0 else {
                throw ReportError.malformedResults(path: path, reason: "'\(key).\(w)' is \(count); expected a count ≥ 0")
            }
        }
    }
    try checkWidths(results.sizes.users, "sizes.users")
    try checkWidths(results.sizes.items, "sizes.items")
    for (i, rank) in results.memory.per_rank.enumerated() {
        try checkWidths(rank.rows_by_size, "memory.per_rank[\(i)].rows_by_size")
    }
    return results
}

private func describe(_ error: DecodingError, _ data: Data) -> String {
    func keyPath(_ path: [CodingKey]) -> String {
        var out = ""
        for key in path {
            if let index = key.intValue, key.stringValue.hasPrefix("Index") || key.stringValue == "\(index)" {
                out += "[\(index)]"
            } else {
                out += (out.isEmpty ? "" : ".") + key.stringValue
            }
        }
        return out.isEmpty ? "(top level)" : out
    }
    func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Double.Type, is Float.Type: return "a number"
        case is Int.Type, is UInt64.Type: return "an integer"
        case is String.Type: return "a string"
        default:
            let name = String(describing: type)
            return name.hasPrefix("Dictionary") ? "an object" : name.hasPrefix("Array") ? "an array" : name
        }
    }
    switch error {
    case .keyNotFound(let key, let context):
        return "missing key '\(keyPath(context.codingPath + [key]))'"
    case .valueNotFound(let type, let context):
        return "'\(keyPath(context.codingPath))' is null; expected \(typeName(type))"
    case .typeMismatch(_, let context) where context.codingPath.isEmpty:
        return "the top level is not a JSON object"
    case .typeMismatch(let type, let context):
        return "'\(keyPath(context.codingPath))' is not \(typeName(type))"
    case .dataCorrupted(let context):
        if context.codingPath.isEmpty { return "not valid JSON (\(jsonSyntaxError(data)))" }
        return "'\(keyPath(context.codingPath))': \(context.debugDescription)"
    @unknown default:
        return "\(error)"
    }
}

/// Where the JSON syntax breaks, as "line L, column C: what" (Foundation's
/// decoder says only "not valid JSON"; its serializer gives the offset).
private func jsonSyntaxError(_ data: Data) -> String {
    if data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return "the file is empty" }
    do {
        _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        return "unexpected content"
    } catch {
        let debug = ((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String) ?? "\(error)"
        guard let range = debug.range(of: #"character (\d+)"#, options: .regularExpression),
              let offset = Int(debug[range].dropFirst("character ".count)) else {
            return debug.hasSuffix(".") ? String(debug.dropLast()) : debug
        }
        var line = 1, column = 1
        for byte in data.prefix(offset) {
            if byte == 0x0A { line += 1; column = 1 } else if byte & 0xC0 != 0x80 { column += 1 }
        }
        let what = debug.replacingOccurrences(of: #" around character \d+\.?"#, with: "", options: .regularExpression)
        return "line \(line), column \(column): \(what)"
    }
}

// MARK: - Models and statistics

/// The models in the paper's order, then any other.
public enum ReportModels {
    public static let paperOrder = ["fixed", "darts", "autoemb", "esapn"]
    /// Baselines that do not choose one width per ID (FIXED: always 128; DARTS
    /// and AutoEmb: a soft mixture of all six).
    public static let nonAdaptive: Set<String> = ["fixed", "darts", "autoemb"]

    public static func displayName(_ model: String) -> String {
        switch model.lowercased() {
        case "fixed": return "FIXED"
        case "darts": return "DARTS"
        case "autoemb": return "AutoEmb"
        case "esapn": return "ESAPN"
        default: return model
        }
    }

    /// Hard selection of one width per ID: ESAPN and anything that is not a baseline.
    public static func isAdaptive(_ model: String) -> Bool { !nonAdaptive.contains(model.lowercased()) }

    /// Sort key: the paper's order first, then other names alphabetically.
    public static func order(_ a: String, _ b: String) -> Bool {
        let ia = paperOrder.firstIndex(of: a.lowercased()) ?? paperOrder.count
        let ib = paperOrder.firstIndex(of: b.lowercased()) ?? paperOrder.count
        return ia != ib ? ia < ib : a < b
    }
}

/// Mean and sample standard deviation of repeated runs (seeds).
public struct Summary: Equatable, Sendable {
    public var n: Int
    public var mean: Double
    /// Sample standard deviation (n − 1); 0 when n = 1.
    public var std: Double

    public init(_ values: [Double]) {
        n = values.count
        mean = values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count)
        if values.count > 1 {
            let m = mean
            std = (values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(values.count - 1)).squareRoot()
        } else {
            std = 0
        }
    }
}

// MARK: - Number formats

public enum ReportFormat {
    /// The candidate embedding widths of the paper (and of runs that predate `options.sizes`).
    public static let paperWidths = [2, 4, 8, 16, 64, 128]

    /// The candidate widths a run trained with (`options.sizes`, as `--sizes` took them).
    public static func widths(of r: RunResults) -> [Int] {
        let given = (r.options["sizes"] ?? "").split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        return given.isEmpty ? paperWidths : given.sorted()
    }
    /// FIXED's width (the largest candidate) and the soft baselines' floats per ID (every candidate).
    public static func fixedWidth(of r: RunResults) -> Int { widths(of: r).last! }
    public static func softWidth(of r: RunResults) -> Int { widths(of: r).reduce(0, +) }

    /// "128" when every run has that FIXED width, else "largest width"; the same for soft.
    static func commonFixed(_ runs: [RunResults]) -> String {
        let w = Set(runs.map(fixedWidth(of:)))
        return w.count == 1 ? "\(w.first!)" : "largest width"
    }
    static func commonSoft(_ runs: [RunResults]) -> String {
        let w = Set(runs.map(softWidth(of:)))
        return w.count == 1 ? "\(w.first!)" : "sum of widths"
    }

    /// 1234567 → "1,234,567" (as the paper prints counts).
    public static func grouped(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return value < 0 ? "-" + out : out
    }

    public static func fixed(_ value: Double, _ decimals: Int) -> String {
        value.isFinite ? String(format: "%.\(decimals)f", value) : "—"
    }

    /// A share (0.5166) as a percentage with two decimals ("51.66%").
    public static func percent(_ share: Double) -> String {
        share.isFinite ? fixed(100 * share, 2) + "%" : "—"
    }

    /// Bytes in binary units: "512 B", "1.50 KiB", "12.25 MiB", "3.10 GiB".
    public static func bytes(_ value: Int) -> String {
        let units = ["KiB", "MiB", "GiB", "TiB", "PiB"]
        if value.magnitude < 1024 { return "\(value) B" }
        var scaled = Double(value) / 1024
        var unit = 0
        while abs(scaled) >= 1024 && unit < units.count - 1 {
            scaled /= 1024
            unit += 1
        }
        return fixed(scaled, 2) + " " + units[unit]
    }

    /// Seconds as "12.3 s", "4 min 05 s", "2 h 03 min".
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "—" }
        if seconds < 60 { return fixed(seconds, 1) + " s" }
        let s = Int(seconds.rounded())
        if s < 3600 { return "\(s / 60) min " + String(format: "%02d", s % 60) + " s" }
        return "\(s / 3600) h " + String(format: "%02d", (s % 3600) / 60) + " min"
    }

    /// A stream as the paper names a dataset: the file name without a
    /// directory or a stream-file extension ("data/ml-20m.stream" → "ml-20m").
    public static func streamName(_ stream: String) -> String {
        var name = stream
        if let slash = name.lastIndex(of: "/") { name = String(name[name.index(after: slash)...]) }
        for ext in [".stream", ".esapn", ".bin"] where name.hasSuffix(ext) && name.count > ext.count {
            name.removeLast(ext.count)
        }
        return name.isEmpty ? stream : name
    }

    /// Escapes what would break a Markdown table cell.
    public static func cell(_ text: String) -> String {
        text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }
}

// MARK: - Markdown tables

public struct MarkdownTable: Sendable {
    public enum Alignment: Sendable { case left, right }

    public var header: [String]
    public var alignment: [Alignment]
    public var rows: [[String]] = []

    public init(header: [String], alignment: [Alignment]) {
        precondition(header.count == alignment.count,
                     "MarkdownTable: \(header.count) header cells but \(alignment.count) alignments")
        self.header = header; self.alignment = alignment
    }

    public mutating func append(_ row: [String]) {
        precondition(row.count == header.count, "MarkdownTable: row of \(row.count) cells, header has \(header.count)")
        rows.append(row)
    }

    /// Pipe table with columns padded to equal width, so the source reads well too.
    public func render() -> String {
        var widths = header.map(\.count)
        for row in rows { for (i, c) in row.enumerated() { widths[i] = max(widths[i], c.count) } }
        widths = widths.map { max($0, 3) }
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for (i, c) in cells.enumerated() {
                let pad = String(repeating: " ", count: widths[i] - c.count)
                parts.append(alignment[i] == .right ? pad + c : c + pad)
            }
            return "| " + parts.joined(separator: " | ") + " |"
        }
        var out = [line(header)]
        out.append("|" + zip(widths, alignment).map { w, a in
            a == .right ? " " + String(repeating: "-", count: w - 1) + ": " : " " + String(repeating: "-", count: w) + " "
        }.joined(separator: "|") + "|")
        out += rows.map(line)
        return out.joined(separator: "\n")
    }
}
