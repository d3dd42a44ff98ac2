// Before anything large is allocated, what a rank will need (an estimate from
// the configuration alone, on the high side): the dense weights with their
// gradients and two Adam moments (replicated on every rank), every row this
// rank may own at the widest stored width with both moments, the per-ID state,
// and the per-batch buffers. A run that cannot fit is refused at once with
// the estimate and what would make it fit, instead of growing until the
// kernel kills it (`--sizes 2,4,1000000` on ml-100k grew to 24 GiB in 49 s).
import Model
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Policies

public struct MemoryEstimate: Sendable {
    public var denseBytes: Int
    public var rowBytes: Int
    public var perIDStateBytes: Int
    public var bufferBytes: Int
    public var total: Int { denseBytes + rowBytes + perIDStateBytes + bufferBytes }

    /// For `config` on a stream of `users` and `items` IDs with `ranks` ranks (the largest shard).
    public init(config c: TrainConfig, users: Int, items: Int, ranks: Int) {
        let top = c.topWidth, K = c.sizes.count, stored = c.storedWidths
        // Dense parameters per side: the transform chain (hard) or the candidate maps (soft), with BatchNorms.
        var side = 0
        switch c.model {
        case .fixed, .esapn:
            for L in 0..<(stored.count - 1) { side += stored[L] * stored[L + 1] + stored[L + 1] }
            side += 2 * top
        case .darts, .autoemb:
            side = c.sizes.reduce(0) { $0 + $1 * top + top } + 2 * top * K
        }
        let head = 2 * 2 * top + 2 * top * c.hidden + c.hidden + 2 * c.hidden + c.hidden * c.task.outputs + c.task.outputs
        var policy = 0
        if c.model == .esapn || c.model == .autoemb {
            let inputs = StateNetworkParameters.frequencyWidth + (c.model == .esapn ? K + 1 : K)
            policy = 2 * (FrequencyBuckets.count * StateNetworkParameters.frequencyWidth + 2 * StateNetworkParameters.frequencyWidth
                          + inputs * c.policyHidden + 3 * c.policyHidden + c.policyHidden * K + K)
        }
        denseBytes = 16 * (2 * side + head + policy)   // values, gradients, two moments
        // Rows: every ID this rank may own at the widest stored width, values and moments, and its index.
        let owned = (users + ranks - 1) / ranks + (items + ranks - 1) / ranks
        rowBytes = owned * (12 * stored.max()! + 9)
        switch c.model {
        case .fixed: perIDStateBytes = 0
        case .esapn: perIDStateBytes = owned * 4 * (c.rewardWindow + 1)
        case .darts: perIDStateBytes = owned * (4 * 4 * K + 4)
        case .autoemb: perIDStateBytes = owned * 4 * K
        }
        // A shard budget caps rows and per-ID state together.
        if let budget = c.shardBudget, budget < rowBytes + perIDStateBytes {
            rowBytes = budget
            perIDStateBytes = 0
        }
        // Per batch: the formers' and the head's activations over a slice, the exchange's entries over the batch.
        let slice = (c.batchSize + ranks - 1) / ranks
        let former = c.model == .darts || c.model == .autoemb ? K * 10 * top + 2 * stored[0] : 2 * stored.reduce(0, +) + 6 * top
        let headFloats = 8 * top + 7 * c.hidden
        bufferBytes = 4 * slice * (2 * former + headFloats) + 2 * 4 * c.batchSize * (stored.max()! + K + 2) * 2
            + 4 * (users + items)
    }

    static func gib(_ bytes: Int) -> String { String(format: "%.2f GiB", Double(bytes) / Double(1 << 30)) }

    public var description: String {
        "about \(Self.gib(total)) per rank (dense weights with gradients and Adam moments \(Self.gib(denseBytes)), "
            + "rows at the widest size with moments \(Self.gib(rowBytes)), per-ID state \(Self.gib(perIDStateBytes)), "
            + "per-batch buffers \(Self.gib(bufferBytes)))"
    }

    /// Memory this rank may use: `limit` when given, else MemAvailable shared
    /// among the ranks of this host (Open MPI's OMPI_COMM_WORLD_LOCAL_SIZE).
    public static func available(limit: Int?, ranksPerProcess: Int = 1) -> Int? {
        if let limit { return limit }
        guard let info = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
              let kib = Int(line.split(separator: " ")[1]) else { return nil }
        let local = Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "") ?? 1
        return kib * 1024 / max(1, local * ranksPerProcess)
    }
}
