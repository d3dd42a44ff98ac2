// What a user sees while a run goes on, and what the run folder keeps of it.
//
// Every few batches the ranks make one small all-reduce (BatchControl): it
// carries what only some of them know (a stop signal, rank 0's checkpoint
// clock) and what rank 0 reports (the batch's loss and correct records on
// every rank, each rank's resident embedding bytes). No collective depends on
// rank 0's clock: the figures travel every batch, and rank 0 alone decides
// when to print them. Rank 0 prints through a writer thread (BackgroundWriter),
// so a slow terminal or file system never stalls a batch, and so never the
// other ranks.
import Comm
import Embeddings
import Foundation

public enum ProgressMode: String, CaseIterable, Sendable {
    /// auto: a line that rewrites itself on a terminal, plain lines through a pipe
    /// or into a file (mpirun, srun, a Slurm output file); always: plain lines
    /// wherever stderr goes; off: nothing (as --quiet).
    case off, auto, always
}

/// The all-reduce after every `interval` batches: one sum of doubles in
/// named segments (FusedSum): the ranks with a stop signal, rank 0's clock
/// due, the loss, correct and scored records of the batches since the last
/// exchange, each rank's resident embedding bytes in its own slot, and what
/// a shard budget did so far (evictions, refused enlargements, re-admissions, summed).
final class BatchControl {
    /// Batches between exchanges: every rank knows it, so no rank waits for a
    /// decision; a signal or rank 0's clock acts at most this many batches late.
    /// (Measured with FIXED at 2 ranks, one exchange a batch and one in 8 both
    /// land 2.6–3.3% below --progress off, inside the machine's noise.)
    static let interval = 8

    private let sum = FusedSum()
    private let flags, totals, resident, budget: FusedSum.Segment
    let ranks: Int
    /// The first batch of this process (1-based), and the first batch (0-based) no exchange carried yet.
    private let first: Int
    private var unexchanged: Int
    /// Running totals over every rank since this process started (a resumed run: since the resume).
    private(set) var records = 0.0, correct = 0.0, loss = 0.0

    /// For a run that starts after `step` batches (0, or a resumed run's step).
    init(ranks: Int, startingAfter step: Int) {
        self.ranks = ranks
        first = step + 1
        unexchanged = step
        flags = sum.segment(2)      // [signal, clock due]
        totals = sum.segment(3)     // [loss, correct, records]
        resident = sum.segment(ranks)
        budget = sum.segment(3)
        sum.clear()
    }

    /// Whether the ranks exchange after batch `done` (1-based): the first batch
    /// of this process, every `interval`-th and the last.
    func isDue(after done: Int, of batches: Int) -> Bool {
        done == first || done == batches || done % Self.interval == 0
    }

    /// Each rank's resident embedding bytes after the last exchange.
    func residentBytes(rank r: Int) -> Double { sum[resident][r] }
    /// Over every rank, after the last exchange: evictions, refused enlargements, re-admissions.
    var budgetCounts: (evictions: Double, refused: Double, readmissions: Double) {
        let b = sum[budget]
        return (b[0], b[1], b[2])
    }

    /// Collective: every rank calls it after the same batches (isDue), with
    /// the batches done. Returns whether any rank received a stop signal and
    /// whether rank 0's checkpoint clock is due.
    func exchange(_ comm: any Communicator, after done: Int, metrics: Metrics, signal: Bool, clockDue: Bool,
                  residentBytes: Int, budgetCounts: EvictionCounts = EvictionCounts()) -> (signal: Bool, clockDue: Bool) {
        let batch = metrics.localTotals(batches: unexchanged..<done)
        unexchanged = done
        sum.clear()
        let f = sum[flags], t = sum[totals]
        f[0] = signal ? 1 : 0
        f[1] = comm.rank == 0 && clockDue ? 1 : 0
        t[0] = batch.loss; t[1] = batch.correct; t[2] = batch.records
        sum[resident][comm.rank] = Double(residentBytes)
        let b = sum[budget]
        b[0] = Double(budgetCounts.evictions); b[1] = Double(budgetCounts.refused_enlargements); b[2] = Double(budgetCounts.readmissions)
        sum.allReduce(comm)
        loss += t[0]
        correct += t[1]
        records += t[2]
        return (f[0] > 0, f[1] > 0)
    }
}

/// Writes on a thread of its own: the caller never waits for a terminal or a
/// disk. A line that rewrites itself replaces the one still waiting; plain
/// lines queue (at most 1,000; older ones are dropped beyond that). The
/// thread lives as long as the process.
final class BackgroundWriter: @unchecked Sendable {
    enum Target { case standardError, file(Int32) }
    private struct Entry { var target: Target; var text: String; var replaceable: Bool }
    private let condition = NSCondition()
    private var queue: [Entry] = []
    private var busy = false

    init() {
        queue.reserveCapacity(64)
        let thread = Thread { [self] in loop() }
        thread.name = "esapn-writer"
        thread.start()
    }

    func post(_ text: String, to target: Target, replaceable: Bool = false) {
        condition.lock()
        if replaceable, let last = queue.indices.last, queue[last].replaceable {
            queue[last].text = text
        } else {
            if queue.count >= 1000 { queue.removeFirst() }
            queue.append(Entry(target: target, text: text, replaceable: replaceable))
        }
        condition.broadcast()  // the writer thread, and not a flush waiting on the same condition
        condition.unlock()
    }

    /// Waits until everything posted is written, or `timeout` seconds.
    func flush(timeout: Double = 10) {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        while !queue.isEmpty || busy {
            if !condition.wait(until: deadline) { break }
        }
        condition.unlock()
    }

    private func loop() -> Never {
        while true {
            condition.lock()
            while queue.isEmpty { condition.wait() }
            let entry = queue.removeFirst()
            busy = true
            condition.unlock()
            let bytes = Array(entry.text.utf8)
            let fd: Int32
            switch entry.target {
            case .standardError: fd = 2
            case .file(let f): fd = f
            }
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                offset += n
            }
            condition.lock()
            busy = false
            condition.broadcast()
            condition.unlock()
        }
    }
}

/// Rank 0's progress on stderr and in log.txt.
final class ProgressReporter {
    enum Style { case rewriting, lines }
    /// How stderr shows progress (nil: it does not).
    let style: Style?
    /// Seconds between plain lines (stderr through a pipe, and log.txt).
    let every: Double
    private let writer = BackgroundWriter()
    private var log: Int32 = -1
    private var lastRewrite = -1.0
    private var lastLine: Double?
    private var rewrote = false

    /// Whether the run has a shard budget (the line then says what it did).
    var budgeted = false

    init(style: Style?, every: Double) {
        self.style = style; self.every = every
    }

    /// Starts `directory`/log.txt (appends when it exists, as after a resume) with `header`.
    func openLog(directory: String, header: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/log.txt"
        log = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard log >= 0 else { throw RunLogError(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
        writer.post(header, to: .file(log))
    }

    /// Appends text to log.txt (nothing without a log).
    func logText(_ text: String) {
        if log >= 0 { writer.post(text.hasSuffix("\n") ? text : text + "\n", to: .file(log)) }
    }

    /// After an exchange: prints and logs what is due (nothing when progress is off).
    func update(batch: Int, batches: Int, records: Int, totalRecords: Int, seconds: Double, control: BatchControl) {
        guard style != nil else { return }
        let last = batch == batches
        let lineDue = lastLine.map { seconds - $0 >= every } ?? true
        let rewriteDue = style == .rewriting && (seconds - lastRewrite >= 0.5 || last)
        guard lineDue || last || rewriteDue else { return }
        let text = Self.describe(batch: batch, batches: batches, records: records, totalRecords: totalRecords,
                                 seconds: seconds, control: control, budgeted: budgeted)
        if rewriteDue {
            lastRewrite = seconds
            rewrote = true
            writer.post("\r" + text + " ", to: .standardError, replaceable: true)
        }
        if lineDue || last {
            lastLine = seconds
            let stamp = Self.clock(seconds)
            if style == .lines { writer.post("esapn: [\(stamp)] \(text)\n", to: .standardError) }
            logText("[\(stamp)] \(text)")
        }
    }

    /// Ends the rewriting line (before anything else is printed).
    func finish() {
        if rewrote { writer.post("\n", to: .standardError); rewrote = false }
        writer.flush()
    }

    func close() {
        writer.flush()
        if log >= 0 { fsync(log); Foundation.close(log); log = -1 }
    }

    static func clock(_ seconds: Double) -> String {
        let s = max(0, Int(seconds.rounded()))
        return String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
    }

    /// batch, records, records/s, ETA, running accuracy and loss, each rank's resident embedding MiB.
    /// With `budgeted`, what the shard budget did so far (summed over ranks).
    static func describe(batch: Int, batches: Int, records: Int, totalRecords: Int, seconds: Double,
                         control: BatchControl, budgeted: Bool = false) -> String {
        let rate = Double(records) / max(seconds, 1e-9)
        let eta = Double(totalRecords - records) / max(rate, 1e-9)
        let accuracy = control.records > 0 ? control.correct / control.records : 0
        let loss = control.records > 0 ? control.loss / control.records : 0
        let mib = (0..<control.ranks).map { control.residentBytes(rank: $0) / 1_048_576 }
        let memory: String
        if mib.count <= 8 {
            memory = "embeddings MiB per rank " + mib.map { String(format: "%.1f", $0) }.joined(separator: " ")
        } else {
            let sorted = mib.sorted()
            memory = String(format: "embeddings MiB per rank min %.1f median %.1f max %.1f (%d ranks)",
                            sorted[0], sorted[sorted.count / 2], sorted[sorted.count - 1], sorted.count)
        }
        let counts = control.budgetCounts
        let budget = budgeted ? String(format: "  evicted %.0f  refused %.0f  readmitted %.0f", counts.evictions, counts.refused,
                                       counts.readmissions) : ""
        return String(format: "batch %d/%d  records %d/%d  %.0f records/s  ETA ", batch, batches, records, totalRecords, rate)
            + clock(eta) + String(format: "  accuracy %.4f  loss %.4f  ", accuracy, loss) + memory + budget
    }
}

struct RunLogError: Error, CustomStringConvertible {
    let description: String
}
