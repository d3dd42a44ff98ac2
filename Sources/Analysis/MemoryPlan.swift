// Memory at scale, on paper (`esapn plan --ids N`, docs/budget.md): a run's
// resident bytes per live ID, from its own rows by width and per-ID costs,
// carried to N IDs: what each of P shards would hold, and how many shards a
// per-shard budget needs. Beyond the live rows only the 4-byte index is kept
// per ID of the stream (RowStore), so a budgeted shard holds at most
// budget bytes whatever N is; the plan says how many shards hold every ID.
import Foundation
import Training

public struct MemoryPlan: Equatable, Sendable {
    /// Resident bytes per live ID in the run (rows at their widths, moments, entries with per-ID state; the index apart).
    public var bytesPerLiveID: Double
    /// The same for FIXED at the run's largest width (values and moments, entry and slot as esapn keeps them).
    public var fixedBytesPerID: Double
    /// The index: bytes kept for every ID of the stream.
    public static let indexBytesPerID = 4.0

    /// From a finished run: Σ resident − index over Σ live IDs.
    public init?(results r: RunResults) {
        let live = r.memory.per_rank.reduce(0) { $0 + $1.rows_by_size.values.reduce(0, +) }
        guard live > 0 else { return nil }
        let resident = Double(r.memory.per_rank.reduce(0) { $0 + $1.resident_bytes })
        // The run's index covered at most the IDs it saw (up to the largest local ID): count it as live IDs' share.
        bytesPerLiveID = max(0, resident / Double(live) - Self.indexBytesPerID)
        fixedBytesPerID = Double(r.memory.per_rank.reduce(0) { $0 + $1.fixed_resident_bytes }) / Double(live)
    }

    /// Bytes one of `shards` shards holds when `ids` IDs are all live, with their index.
    public func perShard(ids: Int, shards: Int) -> Double {
        Double(ids) / Double(max(1, shards)) * (bytesPerLiveID + Self.indexBytesPerID)
    }

    /// Shards of `budget` bytes each that hold `ids` live IDs and their index (nil: a budget that holds no ID).
    public func shardsNeeded(ids: Int, budget: Int) -> Int? {
        let perID = bytesPerLiveID + Self.indexBytesPerID
        guard Double(budget) > perID else { return nil }
        return Int((Double(ids) * perID / Double(budget)).rounded(.up))
    }

    /// The plan's text: per N, the memory per shard at each P and the shards a budget needs.
    public func table(ids: [Int], ranks: [Int], budget: Int?, model: String) -> String {
        func size(_ b: Double) -> String {
            b >= Double(1 << 30) ? String(format: "%.2f GiB", b / Double(1 << 30)) : String(format: "%.1f MiB", b / Double(1 << 20))
        }
        var out = [String(format: "memory plan: %@ holds %.1f bytes per live ID (rows at their widths, moments, per-ID state) "
                          + "+ %.0f of index per ID of the stream; FIXED at its widest row %.1f bytes of values and moments per ID",
                          model, bytesPerLiveID, Self.indexBytesPerID, fixedBytesPerID)]
        func pad(_ s: String, _ n: Int) -> String { String(repeating: " ", count: max(0, n - s.count)) + s }
        out.append("  " + "IDs".padding(toLength: 8, withPad: " ", startingAt: 0) + pad("all shards", 12)
                   + ranks.map { pad("P=\($0)", 12) }.joined() + (budget.map { "   shards of \(size(Double($0)))" } ?? ""))
        for n in ids {
            var line = "  " + Self.count(n).padding(toLength: 8, withPad: " ", startingAt: 0) + pad(size(perShard(ids: n, shards: 1)), 12)
            for p in ranks { line += pad(size(perShard(ids: n, shards: p)), 12) }
            if let budget { line += "   " + (shardsNeeded(ids: n, budget: budget).map { "\($0)" } ?? "none: the budget holds no ID") }
            out.append(line)
        }
        return out.joined(separator: "\n")
    }

    static func count(_ n: Int) -> String {
        n >= 1_000_000_000 ? String(format: "%gB", Double(n) / 1e9) : n >= 1_000_000 ? String(format: "%gM", Double(n) / 1e6) : "\(n)"
    }
}
