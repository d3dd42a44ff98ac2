// The byte counts and offsets of one personalised exchange between all ranks
// (one entry per rank each way), packed by one routine for every direction,
// and one table's leg of an exchange step (BatchExchange moves the legs).
import Comm

final class ExchangePlan {
    /// Bytes this rank sends to each rank, and where they start in its send buffer (callers fill both).
    let sendCounts, sendOffsets: UnsafeMutableBufferPointer<Int>
    /// Bytes this rank receives from each rank, and where they land (filled by `run`).
    let receiveCounts, receiveOffsets: UnsafeMutableBufferPointer<Int>

    init(ranks: Int) {
        func counts() -> UnsafeMutableBufferPointer<Int> {
            let b = UnsafeMutableBufferPointer<Int>.allocate(capacity: ranks)
            b.initialize(repeating: 0)
            return b
        }
        sendCounts = counts(); sendOffsets = counts(); receiveCounts = counts(); receiveOffsets = counts()
    }

    deinit { for b in [sendCounts, sendOffsets, receiveCounts, receiveOffsets] { b.deallocate() } }

    /// Bytes of the four count arrays.
    var bytes: Int { 4 * sendCounts.count * MemoryLayout<Int>.stride }

    /// Bytes the last exchange brought in.
    var receivedBytes: Int { receiveCounts.reduce(0, +) }

    /// The one packing routine of every direction: for each destination rank
    /// p in order, `entries(p)` consecutive entries, entry i written at
    /// `buffer + byte` by `write(i, at)`, which returns its bytes. Fills
    /// `sendCounts` and `sendOffsets` and returns the bytes packed. Entries are
    /// numbered across ranks (0, 1, … in send order), so a caller that
    /// packs two tables' entries into one buffer only needs to offset `i`.
    @inline(__always)
    func pack(into buffer: UnsafeMutableRawPointer, entries: (_ rank: Int) -> Int,
              _ write: (_ entry: Int, _ at: UnsafeMutableRawPointer) -> Int) -> Int {
        var byte = 0, entry = 0
        for p in 0..<sendCounts.count {
            sendOffsets[p] = byte
            let end = entry + entries(p)
            while entry < end {
                byte += write(entry, buffer + byte)
                entry += 1
            }
            sendCounts[p] = byte - sendOffsets[p]
        }
        return byte
    }
}

/// One table's part of one exchange step: the plan whose counts it moves by,
/// its packed bytes, and where the bytes for it land. `back`: along the pairs
/// of the plan's last run, laid out as that run received (no counts to
/// exchange). BatchExchange moves the legs of a step together.
struct ExchangeLeg {
    let plan: ExchangePlan
    let send: UnsafeRawPointer
    let receive: UnsafeMutableRawPointer
    let capacity: Int
    let side: EmbeddingSide
    /// What moves, for messages ("rows of" users).
    let step: StaticString
    var back = false

    /// Bytes this rank sends to each rank and where they start in `send`.
    var outCounts: UnsafeMutableBufferPointer<Int> { back ? plan.receiveCounts : plan.sendCounts }
    var outOffsets: UnsafeMutableBufferPointer<Int> { back ? plan.receiveOffsets : plan.sendOffsets }
    /// Bytes this rank receives from each rank and where they land in `receive`.
    var inCounts: UnsafeMutableBufferPointer<Int> { back ? plan.sendCounts : plan.receiveCounts }
    var inOffsets: UnsafeMutableBufferPointer<Int> { back ? plan.sendOffsets : plan.receiveOffsets }
}
