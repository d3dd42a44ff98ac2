// What `esapn inspect` prints: counts, rating histogram, frequency quantiles.

public struct FrequencySummary: Codable, Equatable, Sendable {
    /// Ratings per ID at the end of the stream: min, quartiles, p90, p99, max, mean.
    public var min, p25, median, p75, p90, p99, max: Int
    public var mean: Double

    init(counts: [UInt32]) {
        let sorted = counts.sorted()
        func q(_ p: Double) -> Int {
            guard !sorted.isEmpty else { return 0 }
            return Int(sorted[Swift.min(sorted.count - 1, Int((p * Double(sorted.count - 1)).rounded()))])
        }
        min = q(0); p25 = q(0.25); median = q(0.5); p75 = q(0.75); p90 = q(0.9); p99 = q(0.99); max = q(1)
        mean = sorted.isEmpty ? 0 : Double(sorted.reduce(0) { $0 + Int($1) }) / Double(sorted.count)
    }
}

public struct StreamSummary: Codable, Sendable {
    public var path: String
    public var version: UInt32
    public var source: String
    public var order: String
    public var seed: UInt64
    public var checksum: String
    public var checksumVerified: Bool
    public var records: Int
    public var users: Int
    public var items: Int
    /// Rating value (as printed, e.g. "3.5") → share of records.
    public var ratingHistogram: [String: Double]
    public var userFrequency: FrequencySummary
    public var itemFrequency: FrequencySummary
    public var firstTimestamp: Int64
    public var lastTimestamp: Int64
    /// Share of records whose label is positive in the binary task (rating > 3.5).
    public var positiveShare: Double
    /// For a synthetic stream, the real data set its preset imitates (set by its reader: Synth knows presets).
    public var published: PublishedStatistics?

    public init(_ stream: StreamFile) {
        path = stream.path
        version = StreamHeader.version
        source = stream.header.source
        order = stream.header.order.rawValue
        seed = stream.header.seed
        checksum = hex(stream.header.checksum)
        checksumVerified = true
        records = stream.count
        users = stream.header.users
        items = stream.header.items
        var userCounts = [UInt32](repeating: 0, count: users)
        var itemCounts = [UInt32](repeating: 0, count: items)
        var halfStars = [Int](repeating: 0, count: 11)
        var other = [Float: Int]()
        var positive = 0
        let u = stream.users, it = stream.items, r = stream.ratings
        for k in 0..<records {
            userCounts[Int(u[k])] += 1
            itemCounts[Int(it[k])] += 1
            let v = r[k]
            if v > 3.5 { positive += 1 }
            let twice = v * 2
            if twice == twice.rounded() && twice >= 0 && twice <= 10 { halfStars[Int(twice)] += 1 } else { other[v, default: 0] += 1 }
        }
        var hist = [String: Double]()
        for (i, c) in halfStars.enumerated() where c > 0 { hist[ratingLabel(Float(i) / 2)] = Double(c) / Double(records) }
        for (v, c) in other { hist[ratingLabel(v)] = Double(c) / Double(records) }
        ratingHistogram = hist
        userFrequency = FrequencySummary(counts: userCounts)
        itemFrequency = FrequencySummary(counts: itemCounts)
        firstTimestamp = records > 0 ? stream.timestamps[0] : 0
        lastTimestamp = records > 0 ? stream.timestamps[records - 1] : 0
        positiveShare = records > 0 ? Double(positive) / Double(records) : 0
    }
}

/// "4.0", "3.5": MovieLens' way of printing a rating.
public func ratingLabel(_ v: Float) -> String {
    let tenths = Int((v * 10).rounded())
    if Float(tenths) / 10 == v || abs(Float(tenths) / 10 - v) < 1e-6 {
        return "\(tenths / 10).\(abs(tenths % 10))"
    }
    return "\(v)"
}
