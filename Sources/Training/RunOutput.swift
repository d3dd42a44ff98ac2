// Gathers a finished run's results on every rank and writes the run folder
// (rank 0): results.json, batches.csv, by_frequency.csv and, on request,
// final_sizes.csv with the width of every ID.
import Comm
import Data
import Embeddings
import Foundation

extension StreamTrainer {
    /// The embedding bytes this rank holds: rows touched, index and per-ID
    /// policy state (ESAPN's loss history, DARTS' α and its moments, AutoEmb's weights).
    public var localResidentBytes: Int {
        zip(tables, policies).reduce(0) { $0 + $1.0.store.memory.residentBytes + $1.1.residentBytes }
    }

    /// Per rank, in rank order: users' rows by size, items' rows by size,
    /// value floats, resident bytes, exchange bytes, live IDs, reserved bytes,
    /// RssAnon now (-1: unknown), and whether it was measured at the end of
    /// the first batch (1 or 0) with the growth of resident bytes and of
    /// RssAnon since then, and the peak RSS (-1: unknown) (one all-gather).
    private func gatherRankFigures() -> [ArraySlice<Double>] {
        let S = config.storedWidths.count
        var mine = [Double](repeating: 0, count: 2 * S + 10)
        for (s, table) in tables.enumerated() {
            let memory = table.store.memory
            for i in 0..<S { mine[s * S + i] = Double(memory.rowsBySize[i]) }
            mine[2 * S] += Double(memory.valueFloats)
            mine[2 * S + 2] += Double(table.scratchBytes)
            mine[2 * S + 3] += Double(memory.rowsBySize.reduce(0, +))
            mine[2 * S + 4] += Double(memory.reservedBytes + policies[s].residentBytes)
        }
        mine[2 * S + 2] += Double(exchange.scratchBytes)
        let resident = localResidentBytes, rss = ProcessMemory.rssAnonBytes()
        mine[2 * S + 1] = Double(resident)
        mine[2 * S + 5] = Double(rss ?? -1)
        mine[2 * S + 9] = Double(ProcessMemory.peakRSSBytes() ?? -1)
        if let first = firstBatchMemory, let rss, let firstRSS = first.rssAnon {
            mine[2 * S + 6] = 1
            mine[2 * S + 7] = Double(resident - first.resident)
            mine[2 * S + 8] = Double(rss - firstRSS)
        }
        let all = comm.allGather(mine)
        return (0..<comm.size).map { r in all[(r * mine.count)..<((r + 1) * mine.count)] }
    }

    /// What each rank holds (collective: every rank must call it).
    public func gatherMemory() -> [RankMemory] { rankMemory(gatherRankFigures()) }

    /// Every rank's hostname (its first 255 bytes), in rank order (collective).
    public func gatherHostNames() -> [String] {
        let width = 256
        var mine = [UInt8](repeating: 0, count: width)
        mine.withUnsafeMutableBufferPointer { b in
            b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: width) { _ = gethostname($0, width - 1) }
        }
        var all = [UInt8](repeating: 0, count: width * comm.size)
        mine.withUnsafeBytes { m in all.withUnsafeMutableBytes { a in comm.allGather(m, into: a) } }
        return (0..<comm.size).map { r in
            let name = all[(r * width)..<((r + 1) * width)]
            return String(decoding: name.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    private func rankMemory(_ figures: [ArraySlice<Double>]) -> [RankMemory] {
        let widths = config.storedWidths
        let S = widths.count
        return figures.enumerated().map { r, f in
            let v = Array(f)
            var rows = [String: Int]()
            for i in 0..<S { rows[String(widths[i])] = Int(v[i] + v[S + i]) }
            let ids = Int(v[2 * S + 3])
            // FIXED (the largest width) and soft selection (every candidate side by side) as
            // dense tables over the same IDs: values + two Adam moments.
            var memory = RankMemory(rank: r, rows_by_size: rows, value_floats: Int(v[2 * S]),
                                    resident_bytes: Int(v[2 * S + 1]), exchange_bytes: Int(v[2 * S + 2]),
                                    fixed_resident_bytes: ids * config.topWidth * 12,
                                    soft_resident_bytes: ids * config.softRowWidth * 12)
            memory.reserved_bytes = Int(v[2 * S + 4])
            memory.rss_anon_bytes = v[2 * S + 5] < 0 ? nil : Int(v[2 * S + 5])
            memory.peak_rss_bytes = v[2 * S + 9] < 0 ? nil : Int(v[2 * S + 9])
            if v[2 * S + 6] == 1 {
                memory.resident_growth_bytes = Int(v[2 * S + 7])
                memory.rss_anon_growth_bytes = Int(v[2 * S + 8])
            }
            return memory
        }
    }

    /// Width index of every ID of `side` (-1: never seen), gathered on every rank (collective).
    public func gatherSizes(side: EmbeddingSide) -> [Int8] {
        let table = tables[side.index]
        let P = comm.size
        let perRank = (table.totalIDs + P - 1) / P
        var mine = [Int8](repeating: -1, count: perRank)
        for local in 0..<table.store.localCount { mine[local] = Int8(table.store.sizeIndex(of: local) ?? -1) }
        var all = [Int8](repeating: -1, count: perRank * P)
        mine.withUnsafeBytes { m in all.withUnsafeMutableBytes { a in comm.allGather(m, into: a) } }
        return (0..<table.totalIDs).map { g in all[sharding.owner(of: g) * perRank + sharding.local(of: g)] }
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
                let c = figures.reduce(0) { $0 + Int($1[$1.startIndex + side.index * widths.count + i]) }
                sizes[side.index][String(w)] = c
                ids += c
                totalDims += c * w
            }
        }
        let fixedDims = ids * config.topWidth
        return RunResults(
            model: config.model.rawValue, task: config.task.rawValue, ranks: comm.size, seed: config.seed,
            records: records, stream: URL(fileURLWithPath: stream.path).lastPathComponent, batch_size: config.batchSize,
            test: metrics.test, overall: metrics.overall,
            throughput: Throughput(records_per_second: Double(records) / max(wallSeconds, 1e-9), wall_seconds: wallSeconds),
            memory: MemoryResults(total_dims: totalDims, fixed_dims: fixedDims,
                                  ratio: fixedDims > 0 ? Double(totalDims) / Double(fixedDims) : 0,
                                  resident_bytes: perRank.reduce(0) { $0 + $1.resident_bytes }, per_rank: perRank),
            sizes: SizeCounts(users: sizes[EmbeddingSide.user.index], items: sizes[EmbeddingSide.item.index]),
            options: options)
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
            csv += "\(b),\(m.records),\(format(m.loss)),\(format(m.accuracy)),\(metrics.sizeDigest(b))\n"
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
