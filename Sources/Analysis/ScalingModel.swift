// How throughput scales with the number of ranks P across machines: an α–β
// model (a latency α per message step, a time β per byte) of the collectives
// a batch makes, on top of the compute a profiled run measured
// (`esapn train --profile`). `esapn plan` prints it; `esapn bench-comm`
// measures α and β on real links. BENCHMARKS.md ("A model of scaling") holds
// its calibration and its check against measured runs.
//
// One batch on P ranks, one rank per machine, collectives blocking (as today):
//   compute(P)   = replicated + sliced·P₀/P, where the sliced part's sgemm
//                  share runs at the rate sgemm reaches on B/P rows
//   all-reduce   = ⌈log₂P⌉·α + 2(P−1)/P·n·β    per call, n bytes reduced
//   all-to-all   = ⌈log₂P⌉·α                     per call (the counts: a few bytes, Bruck's algorithm)
//   all-to-all-v = (P−1)·α + (P−1)/P·s·β         per call, s bytes of the slice
//   batch(P)     = compute(P) + the collectives' time
// The forms are the latency and bandwidth terms of recursive doubling/ring
// all-reduce, Bruck's all-to-all and pairwise exchange (Thakur, Rabenseifner
// and Gropp 2005); (P−1)·α makes the all-to-all-v's latency an upper bound
// where MPI posts the messages to all peers at once.
import Comm
import Foundation
import Training

/// α (seconds per message step) and β (seconds per byte) of one collective kind.
public struct CostTerm: Codable, Equatable, Sendable {
    public var alpha: Double
    public var beta: Double
    public init(alpha: Double, beta: Double) { self.alpha = alpha; self.beta = beta }
}

/// The cost of a network's links for the two collective kinds a batch makes.
public struct LinkCost: Codable, Equatable, Sendable {
    public var name: String
    public var allReduce: CostTerm
    public var allToAllV: CostTerm

    public init(name: String, allReduce: CostTerm, allToAllV: CostTerm) {
        self.name = name; self.allReduce = allReduce; self.allToAllV = allToAllV
    }

    /// One α and a line rate (bit/s) at the share of it MPI over TCP/verbs achieves.
    public init(name: String, alpha: Double, gigabits: Double, efficiency: Double) {
        let term = CostTerm(alpha: alpha, beta: 8 / (gigabits * 1e9 * efficiency))
        self.init(name: name, allReduce: term, allToAllV: term)
    }

    /// Typical links, one rank per machine. α: MPI's small-message latency
    /// over the kernel's TCP stack on Ethernet, over verbs on InfiniBand;
    /// efficiency: the share of the line rate a large transfer reaches. These
    /// are published orders of magnitude, not measurements of ours
    /// (`esapn bench-comm` measures a real link; BENCHMARKS.md compares).
    public static let presets: [LinkCost] = [
        LinkCost(name: "1GbE", alpha: 50e-6, gigabits: 1, efficiency: 0.94),
        LinkCost(name: "10GbE", alpha: 20e-6, gigabits: 10, efficiency: 0.9),
        LinkCost(name: "25GbE", alpha: 15e-6, gigabits: 25, efficiency: 0.9),
        LinkCost(name: "IB-HDR", alpha: 2e-6, gigabits: 200, efficiency: 0.9),
    ]

    public static func preset(named name: String) -> LinkCost? {
        presets.first { $0.name.lowercased() == name.lowercased() }
    }
}

/// What `esapn bench-comm` measured: mean seconds per call at each size,
/// and the α–β fit of each collective kind.
public struct CommCalibration: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable { case allReduce = "all-reduce", allToAllV = "all-to-all-v" }
    public struct Point: Codable, Equatable, Sendable {
        public var kind: Kind
        /// all-reduce: bytes reduced; all-to-all-v: bytes to each other rank.
        public var bytes: Int
        public var seconds: Double
        public init(kind: Kind, bytes: Int, seconds: Double) { self.kind = kind; self.bytes = bytes; self.seconds = seconds }
    }
    public var name: String
    public var ranks: Int
    public var points: [Point]

    public init(name: String, ranks: Int, points: [Point]) { self.name = name; self.ranks = ranks; self.points = points }

    /// Least-squares α, β of each kind, in the model's forms at `ranks`.
    public var link: LinkCost {
        let P = Double(ranks)
        func fit(_ kind: Kind, steps: Double, perByte: Double) -> CostTerm {
            let xs = points.filter { $0.kind == kind && $0.seconds > 0 }
            guard xs.count >= 2 else { return CostTerm(alpha: (xs.first?.seconds ?? 0) / steps, beta: 0) }
            // t = a + b·n, fitted on relative errors (each size weighs the
            // same, from 8 bytes to a megabyte): least squares of a/t + b·n/t = 1.
            var s11 = 0.0, s12 = 0.0, s22 = 0.0, r1 = 0.0, r2 = 0.0
            for x in xs {
                let u = 1 / x.seconds, v = Double(x.bytes) / x.seconds
                s11 += u * u; s12 += u * v; s22 += v * v; r1 += u; r2 += v
            }
            let det = s11 * s22 - s12 * s12
            var a = det != 0 ? (r1 * s22 - r2 * s12) / det : 0
            var b = det != 0 ? (s11 * r2 - s12 * r1) / det : 0
            if a < 0 { a = 0; b = r2 / s22 }
            if b < 0 { b = 0; a = r1 / s11 }
            return CostTerm(alpha: a / steps, beta: b / perByte)
        }
        return LinkCost(name: name,
                        allReduce: fit(.allReduce, steps: ScalingModel.log2Ceiling(ranks), perByte: 2 * (P - 1) / P),
                        allToAllV: fit(.allToAllV, steps: P - 1, perByte: P - 1))
    }
}

/// A batch's work, per rank, as a profiled run measured it at P₀ ranks.
public struct Workload: Equatable, Sendable {
    public var model: String
    /// Global batch (records) and the ranks it was measured on.
    public var batch: Int
    public var ranks: Int
    /// Seconds per batch every rank spends whatever P is (dense Adam on the replicated parameters).
    public var replicatedSeconds: Double
    /// Seconds per batch of the rest of the compute at P₀ (its slice), sgemm included.
    public var slicedSeconds: Double
    /// sgemm's floating-point operations per batch, all ranks together.
    public var sgemmFlop: Double
    /// Collectives per batch, and the bytes they carry.
    public var allReduceCalls: Double
    public var allReduceBytes: Double
    public var allToAllCalls: Double
    public var allToAllVCalls: Double
    /// all-to-all-v bytes a rank's slice sends per batch at P₀ (itself included).
    public var allToAllVSliceBytes: Double
    /// Seconds per batch at P₀ that the dense all-reduce could hide behind
    /// (row optimizer and metrics run after it and do not need its result).
    public var overlappableSeconds: Double

    public init(model: String, batch: Int, ranks: Int, replicatedSeconds: Double, slicedSeconds: Double,
                sgemmFlop: Double, allReduceCalls: Double, allReduceBytes: Double, allToAllCalls: Double,
                allToAllVCalls: Double, allToAllVSliceBytes: Double, overlappableSeconds: Double) {
        self.model = model; self.batch = batch; self.ranks = ranks; self.replicatedSeconds = replicatedSeconds
        self.slicedSeconds = slicedSeconds; self.sgemmFlop = sgemmFlop; self.allReduceCalls = allReduceCalls
        self.allReduceBytes = allReduceBytes; self.allToAllCalls = allToAllCalls; self.allToAllVCalls = allToAllVCalls
        self.allToAllVSliceBytes = allToAllVSliceBytes; self.overlappableSeconds = overlappableSeconds
    }

    /// The workload of a run made with `esapn train --profile` (means over its ranks).
    /// The exchange and all-reduce phases are left out of the compute: the model puts the network there.
    public init?(results r: RunResults, batches: Int) {
        guard let p = r.profile, !p.per_rank.isEmpty, batches > 0 else { return nil }
        let k = Double(p.per_rank.count) * Double(batches)
        func phase(_ ph: Phase) -> Double { p.per_rank.map { $0.seconds[ph.name] ?? 0 }.reduce(0, +) / k }
        func calls(_ kind: CountingCommunicator.Kind) -> Double {
            p.per_rank.map { $0.collectives_per_batch[kind.name] ?? 0 }.reduce(0, +) / Double(p.per_rank.count)
        }
        func bytes(_ kind: CountingCommunicator.Kind) -> Double {
            p.per_rank.map { $0.bytes_sent_per_batch[kind.name] ?? 0 }.reduce(0, +) / Double(p.per_rank.count)
        }
        let other = p.per_rank.map(\.other_seconds).reduce(0, +) / k
        let compute = Phase.allCases.filter { $0 != .exchange && $0 != .allReduce }.map(phase).reduce(0, +) + other
        self.init(model: r.model, batch: r.batch_size, ranks: r.ranks,
                  replicatedSeconds: phase(.denseAdam), slicedSeconds: compute - phase(.denseAdam),
                  sgemmFlop: p.sgemm_gflop * 1e9 / Double(batches),
                  allReduceCalls: calls(.allReduce), allReduceBytes: bytes(.allReduce),
                  allToAllCalls: calls(.allToAll), allToAllVCalls: calls(.allToAllV),
                  allToAllVSliceBytes: bytes(.allToAllV),
                  overlappableSeconds: phase(.rowOptimizer) + phase(.metrics))
    }
}

/// One prediction: a batch's time on P ranks, and its parts.
public struct ScalingPoint: Equatable, Sendable {
    public var ranks: Int
    public var batch: Int
    public var computeSeconds: Double
    /// The collectives' latency terms and bandwidth terms.
    public var latencySeconds: Double
    public var bandwidthSeconds: Double
    /// Collective time hidden behind compute (the `overlap` change only).
    public var hiddenSeconds: Double = 0
    public var communicationSeconds: Double { latencySeconds + bandwidthSeconds - hiddenSeconds }
    public var batchSeconds: Double { computeSeconds + communicationSeconds }
    public var recordsPerSecond: Double { Double(batch) / batchSeconds }
    public var communicationShare: Double { communicationSeconds / batchSeconds }
}

public struct ScalingModel: Sendable {
    /// Changes the model can weigh before anyone builds them.
    public enum Change: String, CaseIterable, Sendable {
        /// Today's trainer.
        case none
        /// Each exchange step in one collective instead of its counts then its
        /// bytes: half the all-to-all(-v) calls, the same bytes. (Built
        /// already: both sides in one exchange, which halved them once.)
        case oneCallPerStep = "one-call-per-step"
        /// The dense all-reduce started non-blocking and overlapped with the row optimizer and the metrics.
        case overlap
        /// No row exchange at all (a bound: what caching hot rows could give at most).
        case noExchange = "no-exchange"
    }

    public var workload: Workload
    public var link: LinkCost
    /// sgemm's rate (FLOP/s) on a slice of M rows, measured on the machine that made the workload.
    public var sgemmRate: @Sendable (Int) -> Double
    /// When all ranks share one machine of this many cores (the check on
    /// this machine), compute stretches by P/cores beyond it; nil: one machine per rank.
    public var sharedCores: Int?

    public init(workload: Workload, link: LinkCost, sharedCores: Int? = nil, sgemmRate: @escaping @Sendable (Int) -> Double) {
        self.workload = workload; self.link = link; self.sharedCores = sharedCores; self.sgemmRate = sgemmRate
    }

    static func log2Ceiling(_ P: Int) -> Double { P <= 1 ? 0 : Double(Int.bitWidth - (P - 1).leadingZeroBitCount) }

    /// A batch of `batch` records (default: the workload's) on P ranks.
    public func predict(ranks P: Int, batch: Int? = nil, change: Change = .none) -> ScalingPoint {
        let w = workload
        let B = batch ?? w.batch
        let scale = Double(B) / Double(w.batch)           // records per batch relative to the profile's
        let P0 = Double(w.ranks), p = Double(P)
        // Compute: the sliced part per rank goes as records/P; its sgemm share at the rate of B/P rows.
        let sgemmAtP0 = w.sgemmFlop / P0 / sgemmRate(max(1, w.batch / w.ranks))
        let sgemmAtP = w.sgemmFlop * scale / p / sgemmRate(max(1, B / P))
        let slicedNonSgemm = max(0, w.slicedSeconds - sgemmAtP0) * scale * P0 / p
        var compute = w.replicatedSeconds + slicedNonSgemm + sgemmAtP
        if let cores = sharedCores, P > cores { compute *= p / Double(cores) }

        guard P > 1 else { return ScalingPoint(ranks: P, batch: B, computeSeconds: compute, latencySeconds: 0, bandwidthSeconds: 0) }
        let exchangeCalls = change == .oneCallPerStep ? 0.5 : 1
        let exchangeLatency = change == .noExchange ? 0 : 1.0  // (and no exchange bytes)
        let latency = w.allReduceCalls * Self.log2Ceiling(P) * link.allReduce.alpha
            + exchangeLatency * exchangeCalls * (w.allToAllCalls * Self.log2Ceiling(P) + w.allToAllVCalls * (p - 1))
                * link.allToAllV.alpha
        let sliceBytes = w.allToAllVSliceBytes * scale * P0 / p
        let allReduceBandwidth = 2 * (p - 1) / p * w.allReduceBytes * link.allReduce.beta
        var point = ScalingPoint(ranks: P, batch: B, computeSeconds: compute, latencySeconds: latency,
                                 bandwidthSeconds: allReduceBandwidth + exchangeLatency * (p - 1) / p * sliceBytes * link.allToAllV.beta)
        if change == .overlap {
            // The dense gradients (one call, nearly all of the all-reduce's
            // bytes) hide behind the row optimizer and the metrics, which do not need them.
            let dense = Self.log2Ceiling(P) * link.allReduce.alpha + allReduceBandwidth
            point.hiddenSeconds = min(dense, w.overlappableSeconds * scale * P0 / p)
        }
        return point
    }

    /// The first P of `candidates` where the collectives take at least as long as the compute.
    public func collectivesDominate(from candidates: [Int], batch: Int? = nil, change: Change = .none) -> Int? {
        candidates.first { let q = predict(ranks: $0, batch: batch, change: change); return q.communicationShare >= 0.5 }
    }

    /// The P of `candidates` with the highest throughput: beyond it each rank's
    /// slice is too small to pay for the collectives it adds.
    public func bestRanks(from candidates: [Int], batch: Int? = nil, change: Change = .none) -> Int {
        candidates.max { predict(ranks: $0, batch: batch, change: change).recordsPerSecond
            < predict(ranks: $1, batch: batch, change: change).recordsPerSecond } ?? 1
    }
}
