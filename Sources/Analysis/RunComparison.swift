// Two run folders of the same stream, model, task and seed compared the way
// the multi-rank contract (ARCHITECTURE §4) compares a P-rank run with the
// 1-rank run: batch by batch up to the first batch in which some ID got
// another size (batches.csv's sizes_digest), then the final metrics and the
// final size of every ID. `esapn compare` prints it; the contract tests and
// scripts/contract-matrix.sh assert on it.
import Foundation
import Training

public struct RunComparison: Codable, Equatable, Sendable {
    public var batches: Int
    /// Batches whose record counts differ (a different cut of the stream).
    public var batches_with_other_records: Int
    /// The first batch whose sizes_digest differs: from it on the two runs
    /// read some row at another width. nil: every batch's sizes agree.
    public var first_size_divergence: Int?
    /// Over the batches before `first_size_divergence` (all, when it is nil):
    /// largest |Δ mean loss| and largest |Δ correct records|.
    public var max_loss_delta_before_divergence: Double
    /// The same as a share of the reference batch's loss.
    public var max_loss_share_before_divergence: Double
    public var max_correct_delta_before_divergence: Double
    /// Over every batch.
    public var max_loss_delta: Double
    /// run − reference, in accuracy points (percent) and in loss.
    public var test_accuracy_delta_points: Double
    public var test_loss_delta: Double
    public var overall_accuracy_delta_points: Double
    public var overall_loss_delta: Double
    /// IDs (users and items) in the reference's final_sizes.csv, and how many
    /// end at another width in the run (nil when neither run saved sizes).
    public var ids: Int?
    public var ids_with_other_final_size: Int?
    public var total_dims: Int
    public var reference_total_dims: Int

    /// Share of IDs whose final size differs (0 when the sizes were not saved).
    public var finalSizeDifferenceShare: Double {
        guard let ids, let d = ids_with_other_final_size, ids > 0 else { return 0 }
        return Double(d) / Double(ids)
    }

    /// Compares run folder `run` with `reference`; throws, naming the file and
    /// what is wrong, when a file is missing or malformed or the runs are not
    /// of the same stream, model, task, seed and records.
    public init(run: String, reference: String) throws {
        let a = try loadRun(run).results, b = try loadRun(reference).results
        for (key, x, y) in [("model", a.model, b.model), ("task", a.task, b.task), ("stream", a.stream, b.stream),
                            ("seed", "\(a.seed)", "\(b.seed)"), ("records", "\(a.records)", "\(b.records)"),
                            ("batch_size", "\(a.batch_size)", "\(b.batch_size)")] where x != y {
            throw ReportError.malformedResults(path: run, reason: "not comparable with \(reference): \(key) is \(x) against \(y)")
        }
        let rows = try BatchRow.read(run), reference_rows = try BatchRow.read(reference)
        guard rows.count == reference_rows.count else {
            throw ReportError.malformedResults(path: run, reason: "\(rows.count) batches in \(ResultFiles.batches) against "
                                               + "\(reference_rows.count) in \(reference)")
        }
        batches = rows.count
        batches_with_other_records = zip(rows, reference_rows).filter { $0.records != $1.records }.count
        first_size_divergence = rows.indices.first { rows[$0].digest != reference_rows[$0].digest }
        let before = first_size_divergence ?? rows.count
        func lossDelta(_ k: Int) -> Double { abs(rows[k].loss - reference_rows[k].loss) }
        func correctDelta(_ k: Int) -> Double {
            abs(rows[k].accuracy * Double(rows[k].records) - reference_rows[k].accuracy * Double(reference_rows[k].records))
        }
        max_loss_delta_before_divergence = (0..<before).map(lossDelta).max() ?? 0
        max_loss_share_before_divergence = (0..<before).map { lossDelta($0) / max(abs(reference_rows[$0].loss), 1e-30) }.max() ?? 0
        max_correct_delta_before_divergence = ((0..<before).map(correctDelta).max() ?? 0).rounded()
        max_loss_delta = (0..<rows.count).map(lossDelta).max() ?? 0
        test_accuracy_delta_points = 100 * (a.test.accuracy - b.test.accuracy)
        test_loss_delta = a.test.loss - b.test.loss
        overall_accuracy_delta_points = 100 * (a.overall.accuracy - b.overall.accuracy)
        overall_loss_delta = a.overall.loss - b.overall.loss
        total_dims = a.memory.total_dims
        reference_total_dims = b.memory.total_dims

        let sizes = try FinalSizes.read(run), reference_sizes = try FinalSizes.read(reference)
        switch (sizes, reference_sizes) {
        case (nil, nil):
            ids = nil
            ids_with_other_final_size = nil
        case let (x?, y?):
            ids = y.count
            ids_with_other_final_size = y.reduce(0) { $0 + (x[$1.key] == $1.value ? 0 : 1) }
                + x.keys.reduce(0) { $0 + (y[$1] == nil ? 1 : 0) }
        case (nil, _), (_, nil):
            let missing = sizes == nil ? run : reference
            throw ReportError.notFound(path: URL(fileURLWithPath: missing).appendingPathComponent(ResultFiles.finalSizes).path
                                       + " (the other run has it: train with --save-sizes)")
        }
    }

    /// A few lines for a terminal.
    public var summary: String {
        func g(_ x: Double) -> String { String(format: "%.3g", x) }
        let divergence = first_size_divergence.map { "batch \($0) of \(batches)" } ?? "none in \(batches) batches"
        var lines = [
            "first batch with another size: \(divergence)",
            "before it: max |Δ batch loss| \(g(max_loss_delta_before_divergence)) "
                + "(\(g(100 * max_loss_share_before_divergence))% of the batch's loss), "
                + "max |Δ correct records| \(Int(max_correct_delta_before_divergence))",
            "all batches: max |Δ batch loss| \(g(max_loss_delta))"
                + (batches_with_other_records > 0 ? ", \(batches_with_other_records) with other record counts" : ""),
            "test: Δ accuracy \(String(format: "%+.3f", test_accuracy_delta_points)) points, Δ loss \(g(test_loss_delta))",
            "overall: Δ accuracy \(String(format: "%+.3f", overall_accuracy_delta_points)) points, Δ loss \(g(overall_loss_delta))",
        ]
        if let ids, let d = ids_with_other_final_size {
            lines.append("final sizes: \(d) of \(ids) IDs differ (\(String(format: "%.2f", 100 * finalSizeDifferenceShare))%); "
                         + "total dims \(total_dims) against \(reference_total_dims)")
        } else {
            lines.append("final sizes: not saved (--save-sizes); total dims \(total_dims) against \(reference_total_dims)")
        }
        return lines.joined(separator: "\n")
    }
}

/// One row of batches.csv.
struct BatchRow {
    var records: Int
    var loss: Double
    var accuracy: Double
    var digest: String
    /// Each rank's resident embedding bytes at the batch's end (empty in run folders written before the column).
    var residentBytes: [Int]

    static func read(_ directory: String) throws -> [BatchRow] {
        let path = URL(fileURLWithPath: directory).appendingPathComponent(ResultFiles.batches).path
        let lines = try csvLines(path)
        let header = ResultFiles.batchesHeader
        // Run folders written before resident_bytes existed lack the last column.
        let older = header.split(separator: ",").dropLast().joined(separator: ",")
        guard let first = lines.first, first == header || first == older else {
            throw ReportError.malformedResults(path: path, reason: "header is '\(lines.first ?? "")'; expected '\(header)' "
                                               + "(written by an older esapn without sizes_digest? run it again)")
        }
        let columns = first == header ? 6 : 5
        return try lines.dropFirst().enumerated().map { k, line in
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            let resident = columns == 6 && f.count == 6 ? f[5].split(separator: " ").map { Int($0) } : []
            guard f.count == columns, let records = Int(f[1]), let loss = Double(f[2]), let accuracy = Double(f[3]),
                  f[4].count == 8, UInt32(f[4], radix: 16) != nil, resident.allSatisfy({ $0 != nil }) else {
                throw ReportError.malformedResults(path: path, reason: "line \(k + 2): '\(line)'; expected \(header)")
            }
            return BatchRow(records: records, loss: loss, accuracy: accuracy, digest: String(f[4]), residentBytes: resident.map { $0! })
        }
    }
}

/// final_sizes.csv as (side, dense ID) → width; nil when the run did not save it.
enum FinalSizes {
    struct Key: Hashable { var side: Substring; var id: Int }

    static func read(_ directory: String) throws -> [Key: Int]? {
        let path = URL(fileURLWithPath: directory).appendingPathComponent(ResultFiles.finalSizes).path
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let lines = try csvLines(path)
        guard lines.first == ResultFiles.finalSizesHeader else {
            throw ReportError.malformedResults(path: path, reason: "header is '\(lines.first ?? "")'; "
                                               + "expected '\(ResultFiles.finalSizesHeader)'")
        }
        var sizes = [Key: Int]()
        for (k, line) in lines.dropFirst().enumerated() {
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            guard f.count == 4, f[0] == "users" || f[0] == "items", let id = Int(f[2]), let width = Int(f[3]) else {
                throw ReportError.malformedResults(path: path, reason: "line \(k + 2): '\(line)'; "
                                                   + "expected \(ResultFiles.finalSizesHeader)")
            }
            sizes[Key(side: f[0], id: id)] = width
        }
        return sizes
    }
}

/// The non-empty lines of a run folder's CSV file.
private func csvLines(_ path: String) throws -> [String] {
    guard FileManager.default.fileExists(atPath: path) else {
        throw ReportError.notFound(path: path)
    }
    do {
        return try String(contentsOfFile: path, encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    } catch {
        throw ReportError.unreadable(path: path, reason: "\(error)")
    }
}
