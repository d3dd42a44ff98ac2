// Gathers a finished run's results on every rank and writes the run folder
// (rank 0): results.json, batches.csv, by_frequency.csv and, on request,
// final_sizes.csv with the width of every ID.
import Checkpoints
import Comm
import Data
import Embeddings
import Foundation
import Model

extension StreamTrainer {
    /// The embedding bytes this rank holds: rows touched, entries with their
    /// per-ID state (ESAPN's loss history, DARTS' α and its moments, AutoEmb's weights), the index.
    public var localResidentBytes: Int { tables.reduce(0) { $0 + $1.store.residentBytes } }

    /// What one rank reports of its memory at the end (RankMemory's figures
    /// before they are named by width). -1: the OS did not say.
    struct RankFigures: BitwiseCopyable {
        var valueFloats = 0, residentBytes = 0, exchangeBytes = 0, liveIDs = 0, reservedBytes = 0, peakResidentBytes = 0
        /// What the budget did, per side: evictions, refused enlargements, re-admissions.
        var userCounts = EvictionCounts(), itemCounts = EvictionCounts()
        var evictedAtResume = 0
        var rssAnonBytes = -1, peakRSSBytes = -1
        /// Measured at the end of the first batch: the growth of resident bytes and of RssAnon since.
        var measuredGrowth = false
        var residentGrowthBytes = 0, rssAnonGrowthBytes = 0
    }

    /// Every rank's figures and its rows per width index (users' then items'), in rank order (two all-gathers).
    private func gatherRankFigures() -> [(figures: RankFigures, rows: [Int])] {
        var mine = RankFigures()
        var rows: [Int] = []
        for (s, table) in tables.enumerated() {
            let memory = table.store.memory
            rows += memory.rowsBySize
            mine.valueFloats += memory.valueFloats
            mine.exchangeBytes += table.scratchBytes
            mine.liveIDs += memory.rowsBySize.reduce(0, +)
            mine.reservedBytes += memory.reservedBytes
            if s == EmbeddingSide.user.index { mine.userCounts = table.store.counts } else { mine.itemCounts = table.store.counts }
        }
        mine.peakResidentBytes = metrics.peakResident(rank: comm.rank)
        mine.evictedAtResume = evictedAtResume
        mine.exchangeBytes += exchange.scratchBytes
        let rss = ProcessMemory.rssAnonBytes()
        mine.residentBytes = localResidentBytes
        mine.rssAnonBytes = rss ?? -1
        mine.peakRSSBytes = ProcessMemory.peakRSSBytes() ?? -1
        if let first = firstBatchMemory, let rss, let firstRSS = first.rssAnon {
            mine.measuredGrowth = true
            mine.residentGrowthBytes = mine.residentBytes - first.resident
            mine.rssAnonGrowthBytes = rss - firstRSS
        }
        return Array(zip(comm.allGather(mine), comm.allGather(rows)))
    }

    /// What each rank holds (collective: every rank must call it).
    public func gatherMemory() -> [RankMemory] { rankMemory(gatherRankFigures()) }

    /// Every rank's hostname (its first 255 bytes), in rank order (collective).
    public func gatherHostNames() -> [String] {
        var name = [UInt8](repeating: 0, count: 256)
        name.withUnsafeMutableBufferPointer { b in
            b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: 256) { _ = gethostname($0, 255) }
        }
        return comm.allGather(string: String(decoding: name.prefix { $0 != 0 }, as: UTF8.self), maxBytes: 255)
    }

    private func rankMemory(_ figures: [(figures: RankFigures, rows: [Int])]) -> [RankMemory] {
        let widths = config.storedWidths
        let S = widths.count
        return figures.enumerated().map { r, f in
            var rows = [String: Int]()
            for i in 0..<S { rows[String(widths[i])] = f.rows[i] + f.rows[S + i] }
            let v = f.figures
            // FIXED (the largest width) and soft selection (every candidate side by side) as
            // dense tables over the same IDs: values + two Adam moments.
            var memory = RankMemory(rank: r, rows_by_size: rows, value_floats: v.valueFloats,
                                    resident_bytes: v.residentBytes, exchange_bytes: v.exchangeBytes,
                                    fixed_resident_bytes: v.liveIDs * config.topWidth * 12,
                                    soft_resident_bytes: v.liveIDs * config.softRowWidth * 12)
            memory.reserved_bytes = v.reservedBytes
            memory.peak_resident_bytes = v.peakResidentBytes
            memory.rss_anon_bytes = v.rssAnonBytes < 0 ? nil : v.rssAnonBytes
            memory.peak_rss_bytes = v.peakRSSBytes < 0 ? nil : v.peakRSSBytes
            if v.measuredGrowth {
                memory.resident_growth_bytes = v.residentGrowthBytes
                memory.rss_anon_growth_bytes = v.rssAnonGrowthBytes
            }
            return memory
        }
    }

    /// Width index of every ID of `side` (-1: never seen), gathered on every rank (collective).
    public func gatherSizes(side: EmbeddingSide) -> [Int8] {
        let table = tables[side.index]
        let perRank = (table.totalIDs + comm.size - 1) / comm.size
        var mine = [Int8](repeating: -1, count: perRank)
        for local in 0..<table.store.localCount { mine[local] = Int8(table.store.sizeIndex(of: local) ?? -1) }
        let all = comm.allGather(mine)
        return (0..<table.totalIDs).map { g in all[sharding.owner(of: g)][sharding.local(of: g)] }
    }

    /// The run's results (collective: every rank must call it after `run`);
    /// `hosts`: gatherHostNames(), gathered once at the start.
    public func results(wallSeconds: Double, options: [String: String], hosts: [String]) -> RunResults {
        let figures = gatherRankFigures()
        var perRank = rankMemory(figures)
        for r in perRank.indices { perRank[r].host = hosts[r] }
        let widths = config.storedWidths
        var sizes = [[String: Int]](repeating: [:], count: EmbeddingSide.allCases.count)
        var ids = 0
        var totalDims = 0
        for side in EmbeddingSide.allCases {
            for (i, w) in widths.enumerated() {
                let c = figures.reduce(0) { $0 + $1.rows[side.index * widths.count + i] }
                sizes[side.index][String(w)] = c
                ids += c
                totalDims += c * w
            }
        }
        let fixedDims = ids * config.topWidth
        let budget = config.shardBudget.map { limit in
            BudgetResults(limit_bytes: limit, users: figures.reduce(EvictionCounts()) { $0 + $1.figures.userCounts },
                          items: figures.reduce(EvictionCounts()) { $0 + $1.figures.itemCounts },
                          evicted_at_resume: figures.reduce(0) { $0 + $1.figures.evictedAtResume },
                          peak_resident_bytes: figures.map(\.figures.peakResidentBytes).max() ?? 0)
        }
        var results = RunResults(
            model: config.model.rawValue, task: config.task.rawValue, ranks: comm.size, seed: config.seed,
            records: records, stream: URL(fileURLWithPath: stream.path).lastPathComponent, batch_size: config.batchSize,
            test: metrics.test, overall: metrics.overall,
            throughput: Throughput(records_per_second: Double(records) / max(wallSeconds, 1e-9), wall_seconds: wallSeconds),
            memory: MemoryResults(total_dims: totalDims, fixed_dims: fixedDims,
                                  ratio: fixedDims > 0 ? Double(totalDims) / Double(fixedDims) : 0,
                                  resident_bytes: perRank.reduce(0) { $0 + $1.resident_bytes }, per_rank: perRank),
            sizes: SizeCounts(users: sizes[EmbeddingSide.user.index], items: sizes[EmbeddingSide.item.index]),
            options: options)
        results.budget = budget
        return results
    }
}

// MARK: - Writing the run folder

public enum RunWriter {
    /// Writes results.json, batches.csv, by_frequency.csv (and final_sizes.csv
    /// when `sizes` is given) into `directory`, each atomically.
    public static func write(_ results: RunResults, metrics: Metrics, batches: Int, to directory: String,
                             sizes: (users: [Int8], items: [Int8], widths: [Int], stream: StreamFile)? = nil) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeText(String(decoding: try encoder.encode(results), as: UTF8.self) + "\n",
                      to: directory + "/" + ResultFiles.results)

        var csv = ResultFiles.batchesHeader + "\n"
        for b in 0..<batches {
            let m = metrics.batch(b)
            let resident = metrics.residentBytes(batch: b).map(String.init).joined(separator: " ")
            csv += "\(b),\(m.records),\(format(m.loss)),\(format(m.accuracy)),\(metrics.sizeDigest(b)),\(resident)\n"
        }
        try writeText(csv, to: directory + "/" + ResultFiles.batches)

        csv = ResultFiles.byFrequencyHeader + "\n"
        for side in EmbeddingSide.allCases {
            for f in 1...Metrics.frequencies {
                let (m, width) = metrics.byFrequency(side: side, frequency: f)
                csv += "\(side.plural),\(f),\(m.records),\(format(m.accuracy)),\(format(m.loss)),\(format(width))\n"
            }
        }
        try writeText(csv, to: directory + "/" + ResultFiles.byFrequency)

        if let sizes {
            var out = ResultFiles.finalSizesHeader + "\n"
            for (side, column, originals) in [(EmbeddingSide.user, sizes.users, sizes.stream.userIDs),
                                              (.item, sizes.items, sizes.stream.itemIDs)] {
                for (dense, size) in column.enumerated() where size >= 0 {
                    out += "\(side.plural),\(originals[dense]),\(dense),\(sizes.widths[Int(size)])\n"
                }
            }
            try writeText(out, to: directory + "/" + ResultFiles.finalSizes)
        }
    }

    static func format(_ x: Double) -> String { String(format: "%.9g", x) }

    static func writeText(_ text: String, to path: String) throws {
        var text = text
        try text.withUTF8 { bytes in
            try writeAtomically(path: path) { write in try write(UnsafeRawBufferPointer(bytes)) }
        }
    }
}
