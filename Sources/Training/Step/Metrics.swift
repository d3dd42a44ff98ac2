// Prequential metrics ("test then train"): every record is scored before the
// batch updates the model. Each rank accumulates its records into one flat
// Double buffer; one all-reduce at the end of the stream makes the totals.
//
// The same buffer carries, per batch, a digest of the sizes chosen in its
// model stage: every owner adds a 32-bit hash of (side, global ID, size
// index) for each ID it decided. The terms are integers and their total stays
// below 2^53, so the sum is exact in any order and does not depend on P: two
// runs' digests of a batch differ exactly when some ID got another size
// (up to a 2^-32 chance of collision).
import Comm
import Embeddings
import Kernels
import Model
import Random

public final class Metrics {
    /// Frequencies reported one by one (Figure 4: 1…100; Figure 5 uses 1…50).
    public static let frequencies = 100
    /// Per group: loss sum, correct count, record count, width sum.
    static let fields = 4
    let batches: Int
    let testStart: Int
    /// [overall | test | per batch × batches | users' frequency 1…100 | items' frequency 1…100], each `fields` wide,
    /// then one size digest per batch.
    let buffer: UnsafeMutableBufferPointer<Double>
    private var digestStart: Int { Self.fields * (2 + batches + 2 * Self.frequencies) }
    /// Each rank's resident embedding bytes at the end of each batch, (batch, rank):
    /// every rank writes its own column and the end's all-reduce makes the table.
    let ranks: Int
    let rank: Int
    let residents: UnsafeMutableBufferPointer<Double>
    /// The accumulators, for checkpoints (this rank's partial sums; the
    /// residents' table only means something on as many ranks as it was taken on).
    public var stateBuffers: [StateBuffer] {
        [StateBuffer("metrics", .f64, shape: [buffer.count], buffer.baseAddress!),
         StateBuffer("resident_by_batch", .f64, shape: [batches, ranks], residents.baseAddress!)]
    }

    public init(batches: Int, testStart: Int, ranks: Int = 1, rank: Int = 0) {
        self.batches = batches
        self.testStart = testStart
        self.ranks = ranks
        self.rank = rank
        buffer = .allocate(capacity: Self.fields * (2 + batches + 2 * Self.frequencies) + batches)
        buffer.initialize(repeating: 0)
        residents = .allocate(capacity: max(1, batches * ranks))
        residents.initialize(repeating: 0)
    }

    deinit { buffer.deallocate(); residents.deallocate() }

    /// This rank's resident embedding bytes at the end of batch `b`.
    @inline(__always)
    public func recordResident(batch b: Int, bytes: Int) { residents[b * ranks + rank] = Double(bytes) }

    /// Every rank's resident bytes at the end of batch `b` (after `reduce`; 0: not known, before a resume on other ranks).
    public func residentBytes(batch b: Int) -> [Int] { (0..<ranks).map { Int(residents[b * ranks + $0]) } }

    /// The largest resident bytes rank `r` held at the end of any batch (this rank's before `reduce`).
    public func peakResident(rank r: Int) -> Int {
        var peak = 0.0
        for b in 0..<batches { peak = max(peak, residents[b * ranks + r]) }
        return Int(peak)
    }

    @inline(__always) private func add(_ group: Int, loss: Float, correct: Bool, width: Int = 0) {
        let p = buffer.baseAddress! + Self.fields * group
        p[0] += Double(loss)
        p[1] += correct ? 1 : 0
        p[2] += 1
        p[3] += Double(width)
    }

    /// Records one scored record: its global index, batch, frequencies and row widths.
    @inline(__always)
    public func record(index: Int, batch: Int, loss: Float, correct: Bool,
                       userFrequency: Int, itemFrequency: Int, userWidth: Int, itemWidth: Int) {
        add(0, loss: loss, correct: correct)
        if index >= testStart { add(1, loss: loss, correct: correct) }
        add(2 + batch, loss: loss, correct: correct)
        if userFrequency <= Self.frequencies {
            add(2 + batches + userFrequency - 1, loss: loss, correct: correct, width: userWidth)
        }
        if itemFrequency <= Self.frequencies {
            add(2 + batches + Self.frequencies + itemFrequency - 1, loss: loss, correct: correct, width: itemWidth)
        }
    }

    /// Adds one decided ID to batch `batch`'s size digest (at the ID's owner, once per ID and batch).
    @inline(__always)
    public func recordSize(batch: Int, side: EmbeddingSide, globalID: Int, sizeIndex: Int) {
        let h = splitMix64(side.rawValue << 56 ^ UInt64(globalID) << 8 ^ UInt64(sizeIndex))
        buffer[digestStart + batch] += Double(UInt32(truncatingIfNeeded: h))
    }

    /// The totals of `batches` on this rank alone (before `reduce`): loss sum, correct and scored records.
    public func localTotals(batches: Range<Int>) -> (loss: Double, correct: Double, records: Double) {
        var total = (loss: 0.0, correct: 0.0, records: 0.0)
        for b in batches {
            let v = group(2 + b)
            total.loss += v.loss; total.correct += v.correct; total.records += v.count
        }
        return total
    }

    /// Sums every rank's metrics (one all-reduce); call once, at the end.
    public func reduce(_ comm: any Communicator) {
        comm.allReduceSum(buffer)
        comm.allReduceSum(residents)
    }

    private func group(_ g: Int) -> (loss: Double, correct: Double, count: Double, width: Double) {
        let p = buffer.baseAddress! + Self.fields * g
        return (p[0], p[1], p[2], p[3])
    }

    private func metric(_ g: Int) -> Metric {
        let v = group(g)
        return Metric(records: Int(v.count), accuracy: v.count > 0 ? v.correct / v.count : 0,
                      loss: v.count > 0 ? v.loss / v.count : 0)
    }

    public var overall: Metric { metric(0) }
    public var test: Metric { metric(1) }
    public func batch(_ b: Int) -> Metric { metric(2 + b) }

    /// Batch `b`'s size digest after `reduce`: eight hex digits, the same for
    /// every P exactly when every ID decided in the batch got the same size.
    public func sizeDigest(_ b: Int) -> String {
        let v = UInt32(truncatingIfNeeded: UInt64(buffer[digestStart + b]))
        let hex = String(v, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }

    /// (records, accuracy, loss, mean width) of records whose `side` frequency is `f` (1…100).
    public func byFrequency(side: EmbeddingSide, frequency f: Int) -> (metric: Metric, meanWidth: Double) {
        let g = 2 + batches + side.index * Self.frequencies + f - 1
        let v = group(g)
        return (metric(g), v.count > 0 ? v.width / v.count : 0)
    }
}
