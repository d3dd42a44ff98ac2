// Accuracy against memory (`esapn report`, docs/budget.md): per stream, task
// and number of ranks, each configuration (FIXED-W, ESAPN, DARTS, AutoEmb, each
// with or without --shard-budget) as the mean test accuracy over its seeds
// beside the MiB a shard held (the largest rank's peak resident bytes over
// the run). A configuration no other one beats on both, at least as accurate
// with at most as much memory and better in one, is on the frontier (★).
import Foundation
import Training

extension ReportRenderer {
    /// One configuration of the frontier: its label, seeds, mean accuracy, its spread, and MiB per shard.
    public struct FrontierPoint: Equatable, Sendable {
        public var label: String
        public var seeds: Int
        public var accuracy: Double
        public var accuracyStd: Double
        public var mibPerShard: Double
        public var onFrontier: Bool
    }

    /// "FIXED-16", "ESAPN", "ESAPN @ 0.3 MiB".
    static func configurationLabel(_ r: RunResults) -> String {
        var label = ReportModels.displayName(r.model)
        if r.model == "fixed" { label += "-\(ReportFormat.fixedWidth(of: r))" }
        if let mib = r.options["shard_budget_mib"] { label += " @ " + (Double(mib).map { String(format: "%.4g", $0) } ?? mib) + " MiB" }
        return label
    }

    /// The largest rank's peak resident bytes (its end-of-run resident bytes in folders written before the peak existed).
    static func shardBytes(_ r: RunResults) -> Int {
        r.memory.per_rank.map { $0.peak_resident_bytes ?? $0.resident_bytes }.max() ?? 0
    }

    /// The frontier of `runs` (all of one stream, task and rank count), ordered by memory.
    public static func frontierPoints(_ runs: [RunResults]) -> [FrontierPoint] {
        var groups: [String: [RunResults]] = [:]
        for r in runs { groups[configurationLabel(r), default: []].append(r) }
        var points = groups.map { label, rs -> FrontierPoint in
            let accuracies = rs.map(\.test.accuracy)
            let mean = accuracies.reduce(0, +) / Double(rs.count)
            let std = rs.count > 1 ? (accuracies.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(rs.count - 1)).squareRoot() : 0
            let mib = rs.map { Double(shardBytes($0)) / 1_048_576 }.reduce(0, +) / Double(rs.count)
            return FrontierPoint(label: label, seeds: rs.count, accuracy: mean, accuracyStd: std, mibPerShard: mib, onFrontier: false)
        }
        for i in points.indices {
            points[i].onFrontier = !points.contains { q in
                q.accuracy >= points[i].accuracy && q.mibPerShard <= points[i].mibPerShard
                    && (q.accuracy > points[i].accuracy || q.mibPerShard < points[i].mibPerShard)
            }
        }
        return points.sorted { ($0.mibPerShard, $0.label) < ($1.mibPerShard, $1.label) }
    }

    /// Whether `runs` hold a comparison of memory: a budgeted run, or FIXED at two widths.
    static func hasFrontier(_ runs: [LoadedRun]) -> Bool {
        runs.contains { $0.results.options["shard_budget_mib"] != nil }
            || Set(runs.filter { $0.results.model == "fixed" }.map { ReportFormat.fixedWidth(of: $0.results) }).count > 1
    }

    /// The frontier tables: test accuracy against MiB per shard.
    public static func frontier(runs: [LoadedRun]) -> String {
        var out = ["## Accuracy against memory per shard",
                   "Mean test accuracy over seeds (± sample std) against the MiB a shard held: the largest rank's peak "
                   + "resident embedding bytes (rows, moments, per-ID state, index), mean over seeds. ★: no other "
                   + "configuration is at least as accurate with at most as much memory."]
        for (stream, streamRuns) in groupedByStream(runs) {
            var keys: [String] = []
            var byKey: [String: [RunResults]] = [:]
            for r in streamRuns.map(\.results) {
                let key = "\(r.task), \(r.ranks) rank\(r.ranks == 1 ? "" : "s")"
                if byKey[key] == nil { keys.append(key) }
                byKey[key, default: []].append(r)
            }
            for key in keys {
                out.append("### \(ReportFormat.streamName(stream)): \(key)")
                var table = ["| configuration | seeds | test accuracy | MiB per shard | frontier |", "| --- | --: | --: | --: | :-: |"]
                for p in frontierPoints(byKey[key]!) {
                    let accuracy = String(format: "%.2f%%", 100 * p.accuracy) + (p.seeds > 1 ? String(format: " ± %.2f", 100 * p.accuracyStd) : "")
                    table.append("| \(p.label) | \(p.seeds) | \(accuracy) | \(String(format: "%.3f", p.mibPerShard)) | \(p.onFrontier ? "★" : "") |")
                }
                out.append(table.joined(separator: "\n"))
            }
        }
        return out.joined(separator: "\n\n")
    }
}
