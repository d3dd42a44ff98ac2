// What a run writes (ARCHITECTURE §7): results.json, batches.csv and
// by_frequency.csv. Scripts and `esapn report` read these; keys are stable.
import Embeddings
import Model

public struct Metric: Codable, Equatable, Sendable {
    public var records: Int
    public var accuracy: Double
    /// Mean per-record loss (MSE for binary, cross-entropy for multiclass).
    public var loss: Double

    public init(records: Int, accuracy: Double, loss: Double) {
        self.records = records; self.accuracy = accuracy; self.loss = loss
    }
}

public struct Throughput: Codable, Equatable, Sendable {
    public var records_per_second: Double
    public var wall_seconds: Double

    public init(records_per_second: Double, wall_seconds: Double) {
        self.records_per_second = records_per_second; self.wall_seconds = wall_seconds
    }
}

/// What one rank holds at the end of the stream.
public struct RankMemory: Codable, Equatable, Sendable {
    public var rank: Int
    /// The host the rank ran on (its hostname). Absent in run folders written before it existed.
    public var host: String?
    /// --deterministic: the process that hosted this logical rank (its RSS
    /// figures are that process's, shared by the logical ranks it hosts).
    public var process: Int?
    /// Live rows per candidate width (users and items together), keyed by width.
    public var rows_by_size: [String: Int]
    /// Floats in live row values (users and items).
    public var value_floats: Int
    /// Bytes this rank holds for embeddings, as touched: row values and
    /// optimizer moments of every slot written since the last trim (without a
    /// budget, freed slots stay touched), one entry per live ID with its per-ID
    /// state (width, slot, last step, recency; ESAPN's loss history, DARTS' α
    /// and its moments, AutoEmb's weights), and the 4-byte index per ID up to
    /// the largest seen (docs/budget.md).
    public var resident_bytes: Int
    /// The largest resident_bytes at the end of any batch of the run (a resumed run: of the batches
    /// this rank's record covers). Absent in run folders written before it existed.
    public var peak_resident_bytes: Int?
    /// The address space mapped for the most rows, entries and IDs the rank
    /// can hold (backed only as it is touched). Absent in run folders written before it existed.
    public var reserved_bytes: Int?
    /// The process's RssAnon at the end (Linux), and from the end of the first
    /// batch to the end: the growth of `resident_bytes` and of RssAnon. The
    /// two growths agree when the report tells the truth (scripts/bench-memory.sh checks it).
    public var rss_anon_bytes: Int?
    public var resident_growth_bytes: Int?
    public var rss_anon_growth_bytes: Int?
    /// The rank's peak resident set (VmHWM), the memory-mapped stream included.
    public var peak_rss_bytes: Int?
    /// Bytes of the per-batch exchange buffers (not rows).
    public var exchange_bytes: Int
    /// What FIXED-128 and the soft baselines (222 floats per ID) would hold
    /// for this rank's IDs as dense tables: values + Adam moments, 12 bytes a float.
    public var fixed_resident_bytes: Int
    public var soft_resident_bytes: Int

    public init(rank: Int, rows_by_size: [String: Int], value_floats: Int, resident_bytes: Int,
                exchange_bytes: Int, fixed_resident_bytes: Int, soft_resident_bytes: Int) {
        self.rank = rank; self.rows_by_size = rows_by_size; self.value_floats = value_floats
        self.resident_bytes = resident_bytes; self.exchange_bytes = exchange_bytes
        self.fixed_resident_bytes = fixed_resident_bytes; self.soft_resident_bytes = soft_resident_bytes
    }
}

public struct MemoryResults: Codable, Equatable, Sendable {
    /// Σ rows × width over users and items (the paper's "Total Dim").
    public var total_dims: Int
    /// (#users + #items) × 128.
    public var fixed_dims: Int
    /// total_dims / fixed_dims.
    public var ratio: Double
    /// Σ over ranks of resident_bytes.
    public var resident_bytes: Int
    public var per_rank: [RankMemory]

    public init(total_dims: Int, fixed_dims: Int, ratio: Double, resident_bytes: Int, per_rank: [RankMemory]) {
        self.total_dims = total_dims; self.fixed_dims = fixed_dims; self.ratio = ratio
        self.resident_bytes = resident_bytes; self.per_rank = per_rank
    }
}

/// What `--shard-budget` did (absent without one).
public struct BudgetResults: Codable, Equatable, Sendable {
    /// Bytes each rank (each logical rank with --deterministic) may hold.
    public var limit_bytes: Int
    /// Summed over ranks, per side.
    public var users: EvictionCounts
    public var items: EvictionCounts
    /// Rows evicted when a resume on another number of ranks re-applied the budget.
    public var evicted_at_resume: Int
    /// The largest peak_resident_bytes of any rank, and whether it held the limit.
    public var peak_resident_bytes: Int
    public var held: Bool

    public init(limit_bytes: Int, users: EvictionCounts, items: EvictionCounts, evicted_at_resume: Int,
                peak_resident_bytes: Int) {
        self.limit_bytes = limit_bytes; self.users = users; self.items = items
        self.evicted_at_resume = evicted_at_resume; self.peak_resident_bytes = peak_resident_bytes
        held = peak_resident_bytes <= limit_bytes
    }
}

public struct SizeCounts: Codable, Equatable, Sendable {
    /// Rows per width at the end of the stream, keyed by width ("2", "4", …, "128").
    public var users: [String: Int]
    public var items: [String: Int]

    public init(users: [String: Int], items: [String: Int]) { self.users = users; self.items = items }
}

public struct RunResults: Codable, Equatable, Sendable {
    public var model: String
    public var task: String
    /// The ranks the results are those of (with --deterministic: the logical ranks).
    public var ranks: Int
    /// --deterministic: the processes that hosted the logical ranks (absent otherwise).
    public var processes: Int?
    public var seed: UInt64
    public var records: Int
    public var stream: String
    public var batch_size: Int
    public var test: Metric
    public var overall: Metric
    public var throughput: Throughput
    public var memory: MemoryResults
    public var sizes: SizeCounts
    /// `--shard-budget` only: what the budget did.
    public var budget: BudgetResults?
    /// The options the run used, as given (for the report's footnotes).
    public var options: [String: String]
    /// Where the time went (`--profile` only; absent otherwise).
    public var profile: RunProfile?

    public init(model: String, task: String, ranks: Int, seed: UInt64, records: Int, stream: String, batch_size: Int,
                test: Metric, overall: Metric, throughput: Throughput, memory: MemoryResults, sizes: SizeCounts,
                options: [String: String]) {
        self.model = model; self.task = task; self.ranks = ranks; self.seed = seed; self.records = records
        self.stream = stream; self.batch_size = batch_size; self.test = test; self.overall = overall
        self.throughput = throughput; self.memory = memory; self.sizes = sizes; self.options = options
    }
}

/// `esapn train --profile`: per rank, seconds per phase of a batch, and what
/// the rank sent through the communicator.
public struct RunProfile: Codable, Equatable, Sendable {
    public struct Rank: Codable, Equatable, Sendable {
        public var rank: Int
        /// Phase name → seconds over the whole run.
        public var seconds: [String: Double]
        /// Seconds of the batches outside any phase (loading slices, bookkeeping).
        public var other_seconds: Double
        /// Collective kind → calls per batch and bytes sent per batch.
        public var collectives_per_batch: [String: Double]
        public var bytes_sent_per_batch: [String: Double]
        public var peak_rss_bytes: Int?
        public init(rank: Int, seconds: [String: Double], other_seconds: Double, collectives_per_batch: [String: Double],
                    bytes_sent_per_batch: [String: Double], peak_rss_bytes: Int?) {
            self.rank = rank; self.seconds = seconds; self.other_seconds = other_seconds
            self.collectives_per_batch = collectives_per_batch; self.bytes_sent_per_batch = bytes_sent_per_batch
            self.peak_rss_bytes = peak_rss_bytes
        }
    }
    public var per_rank: [Rank]
    /// sgemm operations of the run over all ranks, and their rate over the wall time.
    public var sgemm_gflop: Double
    public var achieved_gflops: Double
    public init(per_rank: [Rank], sgemm_gflop: Double, achieved_gflops: Double) {
        self.per_rank = per_rank; self.sgemm_gflop = sgemm_gflop; self.achieved_gflops = achieved_gflops
    }
}

/// Column names of the CSV files.
public enum ResultFiles {
    public static let results = "results.json"
    public static let batches = "batches.csv"
    public static let byFrequency = "by_frequency.csv"
    public static let finalSizes = "final_sizes.csv"
    /// batch: 0-based; loss: mean per-record loss of the batch; accuracy: its share of correct records;
    /// sizes_digest: eight hex digits that differ between two runs exactly when some ID
    /// decided in the batch's model stage got another size (Metrics.sizeDigest);
    /// resident_bytes: each rank's resident embedding bytes at the end of the
    /// batch, space-separated in rank order (0: not known, for batches before a
    /// resume on another number of ranks).
    public static let batchesHeader = "batch,records,loss,accuracy,sizes_digest,resident_bytes"
    /// side: users|items; frequency 1…100 (the record's frequency of that user/item);
    /// mean_size: mean width of that side's row used for such records.
    public static let byFrequencyHeader = "side,frequency,records,accuracy,loss,mean_size"
    /// side, original ID, dense ID, final width.
    public static let finalSizesHeader = "side,original_id,dense_id,width"
}
