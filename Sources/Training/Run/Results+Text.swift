// What a finished run prints (and log.txt keeps): the summary of its
// results, and with --profile the table of where a batch's time went.
import Comm
import Foundation

extension RunResults {
    /// The lines `esapn train` prints at the end; `output`: the run folder.
    public func summary(output: String) -> String {
        func pct(_ x: Double) -> String { String(format: "%.2f%%", 100 * x) }
        func num(_ x: Double) -> String { String(format: "%.4f", x) }
        let logical = processes.map { " (logical, on \($0) process\($0 == 1 ? "" : "es"))" } ?? ""
        return """
        \(model) \(task) on \(records) records, \(ranks) rank\(ranks == 1 ? "" : "s")\(logical), seed \(seed)
          test     (last \(test.records)): accuracy \(pct(test.accuracy))  loss \(num(test.loss))
          overall  (\(overall.records)): accuracy \(pct(overall.accuracy))  loss \(num(overall.loss))
          speed    \(String(format: "%.0f", throughput.records_per_second)) records/s, \(String(format: "%.1f", throughput.wall_seconds)) s
          memory   \(memory.total_dims) dims = \(String(format: "%.2f", 100 * memory.ratio))% of FIXED's \(memory.fixed_dims); resident \(memory.resident_bytes) bytes over \(ranks) rank(s)
          wrote    \(output)/results.json, batches.csv, by_frequency.csv, log.txt
        """
    }
}

extension RunProfile {
    /// Milliseconds per batch of every phase, per rank, then the collectives and the sgemm rate.
    public func table(wall: Double, batches: Int) -> String {
        var out = "profile (ms per batch; rank 0" + (per_rank.count > 1 ? " … rank \(per_rank.count - 1)" : "") + ")\n"
        func row(_ name: String, _ values: [Double]) {
            out += "  " + name.padding(toLength: 20, withPad: " ", startingAt: 0)
                + values.map { String(format: "%8.3f", 1000 * $0 / Double(max(1, batches))) }.joined() + "\n"
        }
        for phase in Phase.allCases { row(phase.name, per_rank.map { $0.seconds[phase.name] ?? 0 }) }
        row("other", per_rank.map(\.other_seconds))
        row("batch", per_rank.map { _ in wall })
        for kind in CountingCommunicator.Kind.allCases where (per_rank.first?.collectives_per_batch[kind.name] ?? 0) > 0 {
            out += "  " + kind.name.padding(toLength: 20, withPad: " ", startingAt: 0)
                + per_rank.map { String(format: "%6.1f calls %9.0f B", $0.collectives_per_batch[kind.name] ?? 0,
                                        $0.bytes_sent_per_batch[kind.name] ?? 0) }.joined(separator: " | ") + " per batch\n"
        }
        out += String(format: "  sgemm               %.1f GFLOP in all, %.1f GFLOP/s achieved over the wall time (all ranks)\n",
                      sgemm_gflop, achieved_gflops)
        out += "  peak RSS            " + per_rank.map { $0.peak_rss_bytes.map { String(format: "%.0f MiB", Double($0) / 1048576) } ?? "?" }
            .joined(separator: ", ")
        return out
    }
}
