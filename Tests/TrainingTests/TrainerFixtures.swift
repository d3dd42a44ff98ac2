// Shared fixtures of the trainer tests: a small synthetic stream with real
// signal, a trainer over it, a forward pass assembled from the trainer's
// public parts, and reading a run folder.
import Comm
import Data
import Foundation
import Kernels
import Model
import Random
import TestSupport
import Training
import XCTest

enum SyntheticStream {
    /// `records` ratings of up to `users` users and `items` items (original
    /// IDs sparse: 1000 + 7u and 50000 + 3i), heavy-tailed popularity, in time
    /// order with ties. Ratings come from user and item biases plus a rank-4
    /// latent model and noise, rounded to 1…5 stars: there is signal to learn.
    static func ratings(records: Int = 3000, users: Int = 60, items: Int = 90, seed: UInt64 = 1) -> RawRatings {
        var rng = RandomStream(seed: seed, purpose: .test)
        let userBias = (0..<users).map { _ in rng.normal() }
        let itemBias = (0..<items).map { _ in 0.7 * rng.normal() }
        let userFactors = (0..<users).map { _ in (0..<4).map { _ in rng.normal() } }
        let itemFactors = (0..<items).map { _ in (0..<4).map { _ in rng.normal() } }
        var raw = RawRatings(capacity: records)
        for k in 0..<records {
            let u = min(users - 1, Int(Double(users) * pow(rng.uniform(), 2)))
            let i = min(items - 1, Int(Double(items) * pow(rng.uniform(), 1.5)))
            let dot = zip(userFactors[u], itemFactors[i]).reduce(0) { $0 + $1.0 * $1.1 }
            let score = 3.3 + 0.8 * userBias[u] + 0.6 * itemBias[i] + 0.4 * dot + 0.5 * rng.normal()
            let stars = Float(min(5, max(1, score.rounded())))
            raw.append(user: UInt64(1000 + 7 * u), item: UInt64(50_000 + 3 * i), rating: stars,
                       timestamp: Int64(1_000_000 + 60 * (k / 2)))
        }
        return raw
    }

    /// Writes the ratings as a stream file and returns them.
    @discardableResult
    static func write(to path: String, records: Int = 3000, users: Int = 60, items: Int = 90,
                      seed: UInt64 = 1) throws -> RawRatings {
        let raw = ratings(records: records, users: users, items: items, seed: seed)
        try StreamBuilder.write(raw, order: .time, seed: 0, source: "synthetic test stream", to: path)
        return raw
    }
}

extension StreamTrainer {
    /// Forward of global batch `b` alone, from the trainer's public parts, at
    /// the current parameters; rows are read (caught up) at step `readStep`.
    /// Returns the per-record losses. Leaves no batch in flight. One rank only.
    func forwardLosses(batch b: Int, readStep: Int) -> [Float] {
        precondition(comm.size == 1, "forwardLosses reads the whole batch: one rank only")
        // Bounded by the stream, not by --limit: a trainer stopped early can score the next batch.
        let start = b * config.batchSize, n = min(config.batchSize, stream.count - start)
        let top = config.storedWidths.last!
        let optimizer = RowAdam(kind: config.rowOptimizer, lr: config.learningRate)
        let idColumns = [stream.users.baseAddress!, stream.items.baseAddress!]
        let frequencyColumns = [stream.userFrequencies.baseAddress!, stream.itemFrequencies.baseAddress!]
        for s in 0..<2 {
            tables[s].request(ids: idColumns[s] + start, frequencies: frequencyColumns[s] + start, count: n)
            tables[s].owned.prepareRows(initialSize: 0, readStep: readStep, optimizer: optimizer)
            tables[s].answer()
            formers[s].forward(rows: tables[s].received, arena: arena, comm: comm)
            let activated = formers[s].activated
            for k in 0..<n {
                (head.input + k * 2 * top + s * top).update(from: activated + k * top, count: top)
            }
        }
        for k in 0..<n {
            let rating = stream.ratings[start + k]
            head.binaryLabels[k] = Task.binaryLabel(rating)
            head.classLabels[k] = Task.classLabel(rating)
        }
        head.forward(records: n, arena: arena, comm: comm)
        for table in tables { table.finishBatch() }
        return Array(UnsafeBufferPointer(start: head.losses, count: n))
    }
}

enum RunFolderError: Error { case malformed(String) }

/// A finished run folder, parsed.
struct RunFolder {
    let url: URL
    let results: [String: Any]
    /// batches.csv rows: (batch, records, loss, accuracy, sizes digest, each rank's resident bytes).
    let batches: [(batch: Int, records: Int, loss: Double, accuracy: Double, sizesDigest: String, resident: [Int])]

    init(_ url: URL, file: StaticString = #filePath, line: UInt = #line) throws {
        self.url = url
        let data = try Data(contentsOf: url.appendingPathComponent("results.json"))
        results = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any], file: file, line: line)
        let lines = try Self.lines(of: url.appendingPathComponent("batches.csv"))
        XCTAssertEqual(lines.first, "batch,records,loss,accuracy,sizes_digest,resident_bytes", file: file, line: line)
        batches = try lines.dropFirst().map { line in
            let f = line.split(separator: ",").map(String.init)
            let resident = f.count == 6 ? f[5].split(separator: " ").map { Int($0) } : []
            guard f.count == 6, let b = Int(f[0]), let records = Int(f[1]), let loss = Double(f[2]),
                  let accuracy = Double(f[3]), f[4].count == 8, !resident.isEmpty, resident.allSatisfy({ $0 != nil }) else {
                throw RunFolderError.malformed("batches.csv: '\(line)'")
            }
            return (b, records, loss, accuracy, f[4], resident.map { $0! })
        }
    }

    /// The non-empty lines of a file of the folder.
    func lines(_ name: String) throws -> [String] { try Self.lines(of: url.appendingPathComponent(name)) }

    static func lines(of file: URL) throws -> [String] {
        try String(contentsOf: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }

    /// A number at a key path of results.json ("test.accuracy").
    func number(_ path: String, file: StaticString = #filePath, line: UInt = #line) -> Double {
        var node: Any? = results
        for key in path.split(separator: ".") { node = (node as? [String: Any])?[String(key)] }
        guard let value = (node as? NSNumber)?.doubleValue else {
            XCTFail("results.json has no number at \(path)", file: file, line: line)
            return .nan
        }
        return value
    }

    /// results.json without the fields that measure time or what the OS holds.
    var resultsWithoutTiming: NSDictionary {
        var r = results
        r["throughput"] = nil
        if var memory = r["memory"] as? [String: Any], let ranks = memory["per_rank"] as? [[String: Any]] {
            memory["per_rank"] = ranks.map { rank in
                rank.filter { !["rss_anon_bytes", "rss_anon_growth_bytes", "peak_rss_bytes"].contains($0.key) }
            }
            r["memory"] = memory
        }
        return r as NSDictionary
    }
}
