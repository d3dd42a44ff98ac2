// The Markdown of `esapn report`: the paper's Table 1 (accuracy and loss on the
// test part) and Table 2 (sizes held at the end of the stream, total dims
// against FIXED), then, beyond the paper, memory per shard and the runs read.
import Foundation
import Training

public enum ReportRenderer {
    // MARK: - The whole report

    public static func markdown(runs: [LoadedRun]) -> String {
        var sections = ["# ESAPN report", "\(runs.count) run folder\(runs.count == 1 ? "" : "s") read."]
        sections.append(table1(runs: runs))
        sections.append(table2(runs: runs))
        sections.append(memoryTables(runs: runs))
        if hasFrontier(runs) { sections.append(frontier(runs: runs)) }
        sections.append(runsTable(runs: runs))
        return sections.joined(separator: "\n\n") + "\n"
    }

    // MARK: - Table 1

    /// Display labels of a task's two columns.
    public static func taskColumns(_ task: String) -> (title: String, loss: String) {
        switch task.lowercased() {
        case "binary": return ("Binary", "MSE loss")
        case "multiclass": return ("Multiclass", "CE loss")
        default: return (task, "Loss")
        }
    }

    /// One table per stream: rows = models (FIXED, DARTS, AutoEmb, ESAPN, then
    /// others), per task the test accuracy (%) and loss. Runs sharing (model,
    /// task) are shown as mean ± sample std and n; the best of each column is bold.
    public static func table1(runs: [LoadedRun]) -> String {
        var out: [String] = []
        for (stream, streamRuns) in groupedByStream(runs) {
            let tasks = orderedTasks(streamRuns.map(\.results.task))
            let models = Array(Set(streamRuns.map(\.results.model))).sorted(by: ReportModels.order)

            var header = ["Model"]
            for task in tasks {
                let (title, loss) = taskColumns(task)
                header += ["\(title) accuracy (%)", "\(title) \(loss)"]
            }
            var table = MarkdownTable(header: header, alignment: [.left] + Array(repeating: .right, count: 2 * tasks.count))

            // cells[model][column] = summary of that metric over the runs.
            var columns: [[Summary?]] = []  // [column][model]
            for task in tasks {
                var accuracy: [Summary?] = [], loss: [Summary?] = []
                for model in models {
                    let matching = streamRuns.filter { $0.results.model == model && $0.results.task == task }
                    accuracy.append(matching.isEmpty ? nil : Summary(matching.map { 100 * $0.results.test.accuracy }))
                    loss.append(matching.isEmpty ? nil : Summary(matching.map(\.results.test.loss)))
                }
                columns += [accuracy, loss]
            }
            let decimals = tasks.flatMap { _ in [2, 4] }
            var best: [String?] = []
            for (c, column) in columns.enumerated() {
                let shown = column.compactMap { $0 }.filter { $0.mean.isFinite }
                    .map { (value: $0.mean, text: ReportFormat.fixed($0.mean, decimals[c])) }
                guard shown.count > 1 else { best.append(nil); continue }
                let higherIsBetter = c % 2 == 0
                let pick = higherIsBetter ? shown.max { $0.value < $1.value }! : shown.min { $0.value < $1.value }!
                best.append(pick.text)
            }
            for (m, model) in models.enumerated() {
                var row = [ReportModels.displayName(model)]
                for (c, column) in columns.enumerated() {
                    guard let s = column[m] else { row.append("—"); continue }
                    let text = ReportFormat.fixed(s.mean, decimals[c])
                    var cell = text == best[c] ? "**\(text)**" : text
                    if s.n > 1 { cell += " ± " + ReportFormat.fixed(s.std, decimals[c]) + " (n=\(s.n))" }
                    row.append(cell)
                }
                table.append(row)
            }

            let testCounts = Array(Set(streamRuns.map(\.results.test.records))).sorted()
            let streamCounts = Array(Set(streamRuns.map(\.results.records))).sorted()
            var caption = "**Table 1.** Overall performance on \(ReportFormat.cell(ReportFormat.streamName(stream))): "
            if testCounts.count == 1 && streamCounts.count == 1 {
                caption += "the test part is the last \(ReportFormat.grouped(testCounts[0])) of "
                    + "\(ReportFormat.grouped(streamCounts[0])) records"
            } else {
                caption += "the test part is the last "
                    + testCounts.map(ReportFormat.grouped).joined(separator: " / ")
                    + " records (the runs differ; of "
                    + streamCounts.map(ReportFormat.grouped).joined(separator: " / ") + " records)"
            }
            caption += ", each evaluated before it is trained on. Best per column in bold"
            caption += streamRuns.count > Set(streamRuns.map { "\($0.results.model)/\($0.results.task)" }).count
                ? "; repeated runs as mean ± sample std (n runs)." : "."
            out.append(caption + "\n\n" + table.render())
        }
        return out.isEmpty ? "**Table 1.** No runs." : out.joined(separator: "\n\n")
    }

    // MARK: - Table 2

    /// The adaptive runs Table 2 shows: per stream, the binary ones if there
    /// are any (as in the paper), otherwise all.
    public static func table2Runs(_ runs: [LoadedRun]) -> [LoadedRun] {
        var chosen: [LoadedRun] = []
        for (_, streamRuns) in groupedByStream(runs) {
            let adaptive = streamRuns.filter { ReportModels.isAdaptive($0.results.model) }
            let binary = adaptive.filter { $0.results.task.lowercased() == "binary" }
            chosen += (binary.isEmpty ? adaptive : binary).sorted(by: runOrder)
        }
        return chosen
    }

    /// Rows "user (STREAM)" and "item (STREAM)" per adaptive run: IDs per
    /// width at the end of the stream, Total Dim = Σ count × width,
    /// FIXED = #IDs × 128, Ratio = Total Dim / FIXED.
    public static func table2(runs: [LoadedRun]) -> String {
        let chosen = table2Runs(runs)
        guard !chosen.isEmpty else {
            return "**Table 2.** No adaptive run (ESAPN) among the inputs: the sizes held per ID need one."
        }
        let widths = widthColumns(chosen.map(\.results), chosen.flatMap { Array($0.results.sizes.users.keys) + Array($0.results.sizes.items.keys) })
        var table = MarkdownTable(header: [""] + widths.map(String.init) + ["Total Dim", "FIXED", "Ratio"],
                                  alignment: [.left] + Array(repeating: .right, count: widths.count + 3))
        var notes: [String] = []
        let perStream = Dictionary(grouping: chosen, by: \.results.stream)
        for run in chosen {
            let r = run.results
            let name = ReportFormat.cell(ReportFormat.streamName(r.stream))
            let qualifier = perStream[r.stream]!.count > 1 ? "; " + runLabel(run) : ""
            var dims = 0
            for (side, counts) in [("user", r.sizes.users), ("item", r.sizes.items)] {
                let total = widths.reduce(0) { $0 + (counts[String($1)] ?? 0) * $1 }
                let ids = counts.values.reduce(0, +)
                let fixed = ids * ReportFormat.fixedWidth(of: r)
                dims += total
                table.append(["\(side) (\(name)\(qualifier))"]
                             + widths.map { ReportFormat.grouped(counts[String($0)] ?? 0) }
                             + [ReportFormat.grouped(total), ReportFormat.grouped(fixed),
                                fixed > 0 ? ReportFormat.percent(Double(total) / Double(fixed)) : "—"])
            }
            if dims != r.memory.total_dims {
                notes.append("⚠ \(ReportFormat.cell(run.path)): the sizes give \(ReportFormat.grouped(dims)) dims "
                             + "but memory.total_dims is \(ReportFormat.grouped(r.memory.total_dims)).")
            }
        }
        let results = chosen.map(\.results)
        var text = "**Table 2.** Embedding sizes held at the end of the stream (rows per width), "
            + "total dims against FIXED (#IDs × \(ReportFormat.commonFixed(results))) and their ratio"
            + (chosen.allSatisfy { $0.results.task.lowercased() == "binary" } ? ", binary task." : ".")
            + "\n\n" + table.render()
        if Set(results.map(ReportFormat.widths(of:))).count == 1, let r = results.first {
            let soft = Double(ReportFormat.softWidth(of: r)) / Double(ReportFormat.fixedWidth(of: r))
            let count = ReportFormat.widths(of: r).count
            text += "\n\nDARTS and AutoEmb store all \(count == 6 ? "six" : "\(count)") widths, "
                + "\(ReportFormat.softWidth(of: r)) dims per ID: " + ReportFormat.fixed(soft, 2) + "× FIXED."
        }
        if !notes.isEmpty { text += "\n\n" + notes.joined(separator: "\n") }
        return text
    }

    // MARK: - Memory per shard (beyond the paper)

    /// Per run: rows per width, floats and resident bytes on each rank (values,
    /// optimizer state, slack and index), the exchange buffers, and what
    /// FIXED (the largest width) and soft selection (every width side by side)
    /// would hold for the same IDs.
    public static func memoryTables(runs: [LoadedRun]) -> String {
        let all = runs.map(\.results)
        let fixedName = "FIXED-\(ReportFormat.commonFixed(all))", softName = "soft (\(ReportFormat.commonSoft(all)) floats per ID"
        var out = ["## Memory per shard",
                   "Resident = what a rank (shard) has touched for embeddings: row values + optimizer moments "
                   + "of every slot taken, chunk tables, the per-ID index and per-ID policy state. Ideal = the "
                   + "chosen widths' values + Adam moments alone. \(fixedName) and \(softName), "
                   + "DARTS/AutoEmb) are what those models would hold for the same IDs, values + Adam moments. "
                   + "Imbalance = largest shard / mean shard.",
                   memorySummary(runs: runs)]
        for run in runs.sorted(by: runOrder) {
            let r = run.results
            let ranks = r.memory.per_rank.sorted { $0.rank < $1.rank }
            let widths = widthColumns([r], ranks.flatMap { Array($0.rows_by_size.keys) })
            var table = MarkdownTable(
                header: ["Rank"] + widths.map { "rows \($0)" }
                    + ["Value floats", "Resident", "Ideal", "Resident / ideal", "Exchange",
                       "FIXED-\(ReportFormat.fixedWidth(of: r)) would hold", "Soft-\(ReportFormat.softWidth(of: r)) would hold",
                       "Resident / FIXED"],
                alignment: Array(repeating: .right, count: widths.count + 9))
            func row(_ label: String, _ rows: [String: Int], _ floats: Int, _ resident: Int, _ exchange: Int,
                     _ fixed: Int, _ soft: Int) -> [String] {
                let ideal = floats * 12
                return [label] + widths.map { ReportFormat.grouped(rows[String($0)] ?? 0) }
                    + [ReportFormat.grouped(floats), ReportFormat.bytes(resident), ReportFormat.bytes(ideal),
                       ideal > 0 ? ReportFormat.percent(Double(resident) / Double(ideal)) : "—", ReportFormat.bytes(exchange),
                       ReportFormat.bytes(fixed), ReportFormat.bytes(soft),
                       fixed > 0 ? ReportFormat.percent(Double(resident) / Double(fixed)) : "—"]
            }
            for m in ranks {
                table.append(row("\(m.rank)", m.rows_by_size, m.value_floats, m.resident_bytes, m.exchange_bytes,
                                 m.fixed_resident_bytes, m.soft_resident_bytes))
            }
            var rowsTotal: [String: Int] = [:]
            for m in ranks { rowsTotal.merge(m.rows_by_size, uniquingKeysWith: +) }
            func sum(_ key: KeyPath<RankMemory, Int>) -> Int { ranks.reduce(0) { $0 + $1[keyPath: key] } }
            if ranks.count > 1 {
                table.append(row("total", rowsTotal, sum(\.value_floats), sum(\.resident_bytes), sum(\.exchange_bytes),
                                 sum(\.fixed_resident_bytes), sum(\.soft_resident_bytes)).map { "**\($0)**" })
            }
            var section = "### \(ReportFormat.cell(runLabel(run, full: true)))\n\n"
            section += ranks.isEmpty ? "_No per-rank memory in results.json._" : table.render()
            if sum(\.resident_bytes) != r.memory.resident_bytes && !ranks.isEmpty {
                section += "\n\n⚠ memory.resident_bytes is \(ReportFormat.grouped(r.memory.resident_bytes)) "
                    + "but the ranks sum to \(ReportFormat.grouped(sum(\.resident_bytes)))."
            }
            out.append(section)
        }
        return out.joined(separator: "\n\n")
    }

    /// One line per run: totals over ranks and how even the shards are.
    public static func memorySummary(runs: [LoadedRun]) -> String {
        let all = runs.map(\.results)
        var table = MarkdownTable(
            header: ["Run", "Ranks", "Resident", "FIXED-\(ReportFormat.commonFixed(all)) would hold",
                     "Soft-\(ReportFormat.commonSoft(all)) would hold", "Resident / FIXED",
                     "Imbalance"],
            alignment: [.left, .right, .right, .right, .right, .right, .right])
        for run in runs.sorted(by: runOrder) {
            let ranks = run.results.memory.per_rank
            let resident = ranks.reduce(0) { $0 + $1.resident_bytes }
            let fixed = ranks.reduce(0) { $0 + $1.fixed_resident_bytes }
            let soft = ranks.reduce(0) { $0 + $1.soft_resident_bytes }
            let largest = ranks.map(\.resident_bytes).max() ?? 0
            let imbalance = resident > 0 ? Double(largest) * Double(ranks.count) / Double(resident) : .nan
            table.append([ReportFormat.cell(runLabel(run)) + " (" + ReportFormat.cell(run.path) + ")", "\(ranks.count)",
                          ReportFormat.bytes(resident), ReportFormat.bytes(fixed), ReportFormat.bytes(soft),
                          fixed > 0 ? ReportFormat.percent(Double(resident) / Double(fixed)) : "—",
                          imbalance.isFinite ? ReportFormat.fixed(imbalance, 2) + "×" : "—"])
        }
        return table.render()
    }

    // MARK: - Runs read

    /// The runs read, one row each, narrow enough for a 120-column terminal:
    /// the folders (with their test part) and the option sets are listed below
    /// the table, numbered and lettered, instead of in columns.
    public static func runsTable(runs: [LoadedRun]) -> String {
        var table = MarkdownTable(
            header: ["#", "Model", "Task", "Stream", "P", "Seed", "Records", "Acc (%)", "Loss", "Records/s", "Wall", "Opt"],
            alignment: [.right, .left, .left, .left, .right, .right, .right, .right, .right, .right, .right, .left])
        var optionSets: [String] = []
        var folders: [String] = []
        for (i, run) in runs.sorted(by: runOrder).enumerated() {
            let r = run.results
            let options = r.options.keys.sorted().map { "\($0)=\(r.options[$0]!)" }.joined(separator: ", ")
            var letter = "—"
            if !options.isEmpty {
                if !optionSets.contains(options) { optionSets.append(options) }
                letter = optionLetter(optionSets.firstIndex(of: options)!)
            }
            var stream = ReportFormat.streamName(r.stream)
            if stream.count > 14 { stream = String(stream.prefix(13)) + "…" }
            table.append(["\(i + 1)", ReportModels.displayName(r.model), ReportFormat.cell(r.task), ReportFormat.cell(stream),
                          "\(r.ranks)", "\(r.seed)", ReportFormat.grouped(r.records),
                          ReportFormat.fixed(100 * r.overall.accuracy, 2), ReportFormat.fixed(r.overall.loss, 4),
                          ReportFormat.grouped(Int(r.throughput.records_per_second.isFinite
                                                   ? r.throughput.records_per_second.rounded() : 0)),
                          ReportFormat.duration(r.throughput.wall_seconds), letter])
            folders.append("\(i + 1). `\(run.path)` (test part: the last \(ReportFormat.grouped(r.test.records)) records)")
        }
        var text = "## Runs\n\nAcc and Loss over every record of the stream; P ranks; Opt: the options below.\n\n" + table.render()
        text += "\n\nRun folders:\n\n" + folders.joined(separator: "\n")
        if !optionSets.isEmpty {
            text += "\n\nOptions:\n\n" + optionSets.enumerated().map { "- \(optionLetter($0.offset)): \($0.element)" }
                .joined(separator: "\n")
        }
        return text
    }

    /// A, B, …, Z, AA, AB, …
    static func optionLetter(_ i: Int) -> String {
        let letters = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        return i < 26 ? String(letters[i]) : optionLetter(i / 26 - 1) + String(letters[i % 26])
    }

    // MARK: - Helpers

    /// Streams in first-seen order, each with its runs.
    static func groupedByStream(_ runs: [LoadedRun]) -> [(String, [LoadedRun])] {
        var order: [String] = []
        var groups: [String: [LoadedRun]] = [:]
        for run in runs {
            if groups[run.results.stream] == nil { order.append(run.results.stream) }
            groups[run.results.stream, default: []].append(run)
        }
        return order.map { ($0, groups[$0]!) }
    }

    /// binary, multiclass, then other tasks alphabetically.
    static func orderedTasks(_ tasks: [String]) -> [String] {
        let known = ["binary", "multiclass"]
        return Array(Set(tasks)).sorted {
            let a = known.firstIndex(of: $0.lowercased()) ?? known.count
            let b = known.firstIndex(of: $1.lowercased()) ?? known.count
            return a != b ? a < b : $0 < $1
        }
    }

    /// The runs' candidate widths, plus any other width present, ascending.
    static func widthColumns(_ runs: [RunResults], _ keys: [String]) -> [Int] {
        Array(Set(runs.flatMap(ReportFormat.widths(of:)) + keys.compactMap { Int($0) })).sorted()
    }

    static func runOrder(_ a: LoadedRun, _ b: LoadedRun) -> Bool {
        let (x, y) = (a.results, b.results)
        if x.stream != y.stream { return x.stream < y.stream }
        if x.model != y.model { return ReportModels.order(x.model, y.model) }
        if x.task != y.task { return orderedTasks([x.task, y.task]).first == x.task }
        if x.seed != y.seed { return x.seed < y.seed }
        if x.ranks != y.ranks { return x.ranks < y.ranks }
        return a.path < b.path
    }

    /// "ESAPN, binary, seed 1, 4 ranks", with the stream and folder when `full`.
    static func runLabel(_ run: LoadedRun, full: Bool = false) -> String {
        let r = run.results
        var label = "\(ReportModels.displayName(r.model)), \(r.task), seed \(r.seed), \(r.ranks) rank\(r.ranks == 1 ? "" : "s")"
        if full { label = "\(label) on \(ReportFormat.streamName(r.stream)) (\(run.path))" }
        return label
    }
}
