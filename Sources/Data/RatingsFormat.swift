// The MovieLens rating formats esapn reads (ARCHITECTURE §5).

public enum RatingsFormat: String, CaseIterable, Sendable {
    /// `ratings.csv` of ml-20m, ml-25m, ml-latest(-small): header `userId,movieId,rating,timestamp`.
    case csv
    /// `ratings.dat` of ml-1m, ml-10m: `user::item::rating::timestamp`, no header.
    case dat
    /// `u.data` of ml-100k: tab-separated, no header.
    case udata = "u.data"
    /// RecBole's atomic `.inter` file: tab-separated, typed header (`user_id:token …`).
    case inter

    /// The format a file name implies, or nil.
    public static func detect(fileName: String) -> RatingsFormat? {
        let name = fileName.split(separator: "/").last.map(String.init) ?? fileName
        let lower = name.lowercased()
        if lower.hasSuffix(".csv") { return .csv }
        if lower.hasSuffix(".dat") { return .dat }
        if lower.hasSuffix(".inter") { return .inter }
        if lower == "u.data" || lower.hasSuffix(".data") || lower.hasSuffix(".base") || lower.hasSuffix(".test") {
            return .udata
        }
        return nil
    }

    /// The ratings the format's datasets use: half stars 0.5…5 or whole stars 1…5.
    public var ratingRange: ClosedRange<Float> {
        switch self {
        case .udata: return 1...5
        case .csv, .dat, .inter: return 0.5...5
        }
    }

    var separator: [UInt8] {
        switch self {
        case .csv: return [UInt8(ascii: ",")]
        case .dat: return [UInt8(ascii: ":"), UInt8(ascii: ":")]
        case .udata, .inter: return [UInt8(ascii: "\t")]
        }
    }

    var separatorName: String {
        switch self {
        case .csv: return "comma"
        case .dat: return "'::'"
        case .udata, .inter: return "tab"
        }
    }
}
