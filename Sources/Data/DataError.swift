// Errors of the data pipeline. Each says what was wrong, where, and how to fix it.

public enum DataError: Error, CustomStringConvertible, Equatable {
    case missingFile(path: String)
    case unreadable(path: String, reason: String)
    case emptyFile(path: String)
    case noRecords(path: String)
    case unknownFormat(path: String)
    case malformed(path: String, line: Int, reason: String)
    case tooManyInvalid(path: String, skipped: Int, first: [String])
    case notAStream(path: String, reason: String)
    case checksumMismatch(path: String, stored: UInt64, computed: UInt64)
    case writeFailed(path: String, reason: String)
    case tooLarge(what: String)

    public var description: String {
        switch self {
        case .missingFile(let path):
            return "\(path): no such file; check the path (scripts/setup.sh fetches ml-100k into data/)"
        case .unreadable(let path, let reason):
            return "\(path): cannot be read (\(reason))"
        case .emptyFile(let path):
            return "\(path): the file is empty; expected MovieLens ratings"
        case .noRecords(let path):
            return "\(path): holds no rating records (only a header or blank lines)"
        case .unknownFormat(let path):
            let names = RatingsFormat.allCases.map(\.rawValue).joined(separator: ", ")
            return "\(path): cannot tell the format from the file name; pass --format with one of: \(names)"
        case .malformed(let path, let line, let reason):
            return "\(path):\(line): \(reason) (pass --skip-invalid to skip such lines)"
        case .tooManyInvalid(let path, let skipped, let first):
            return "\(path): every line was invalid (\(skipped) skipped); first: \(first.joined(separator: "; "))"
        case .notAStream(let path, let reason):
            return "\(path): not a valid esapn stream file (\(reason)); make one with `esapn prepare` or `esapn synth`"
        case .checksumMismatch(let path, let stored, let computed):
            return "\(path): checksum mismatch (stored \(hex(stored)), computed \(hex(computed))): the file is corrupted or was altered; prepare it again"
        case .writeFailed(let path, let reason):
            return "\(path): cannot write (\(reason)); nothing was written"
        case .tooLarge(let what):
            return "too large: \(what)"
        }
    }
}

func hex(_ v: UInt64) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 16 - s.count)) + s
}
