// The byte counts and offsets of one personalised exchange between all ranks
// (one entry per rank each way), and the two steps every exchange of the
// sharded table takes: exchange the counts, then move the bytes.
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

    /// Bytes the last `run` brought in (also when a BatchExchange ran it).
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

    /// Sends every rank its counts, lays what arrives out contiguously in rank
    /// order, and moves the bytes. Returns the bytes received.
    @discardableResult
    func run(_ comm: any Communicator, send: UnsafeRawPointer, sendBytes: Int,
             receive: UnsafeMutableRawPointer, capacity: Int, _ what: @autoclosure () -> String) -> Int {
        comm.allToAll(send: UnsafeBufferPointer(sendCounts), receive: receiveCounts)
        var running = 0
        for p in 0..<receiveCounts.count { receiveOffsets[p] = running; running += receiveCounts[p] }
        precondition(running <= capacity, "\(what()): \(running) bytes arrive for a buffer of \(capacity)")
        comm.allToAllV(send: UnsafeRawBufferPointer(start: send, count: sendBytes),
                       sendCounts: UnsafeBufferPointer(sendCounts), sendOffsets: UnsafeBufferPointer(sendOffsets),
                       receive: UnsafeMutableRawBufferPointer(start: receive, count: capacity),
                       receiveCounts: UnsafeBufferPointer(receiveCounts), receiveOffsets: UnsafeBufferPointer(receiveOffsets))
        return running
    }

    /// Moves bytes back along the pairs of the last `run`, with the same
    /// layout on both sides (no counts to exchange).
    func runBack(_ comm: any Communicator, send: UnsafeRawPointer, sendCapacity: Int,
                 receive: UnsafeMutableRawPointer, capacity: Int) {
        comm.allToAllV(send: UnsafeRawBufferPointer(start: send, count: sendCapacity),
                       sendCounts: UnsafeBufferPointer(receiveCounts), sendOffsets: UnsafeBufferPointer(receiveOffsets),
                       receive: UnsafeMutableRawBufferPointer(start: receive, count: capacity),
                       receiveCounts: UnsafeBufferPointer(sendCounts), receiveOffsets: UnsafeBufferPointer(sendOffsets))
    }
}

/// One table's part of one exchange step: the plan whose counts it moves by,
/// its packed bytes, and where the bytes for it land. `back`: along the pairs
/// of the plan's last run, laid out as that run received (no counts to
/// exchange). A leg runs alone (`runAlone`) or with the other side's leg of
/// the same step as one exchange (BatchExchange.run).
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
    /// The end of the packed bytes in `send` (packing is contiguous in rank order).
    var sendExtent: Int {
        let last = outCounts.count - 1
        return outOffsets[last] + outCounts[last]
    }

    func runAlone(_ comm: any Communicator) {
        if back {
            plan.runBack(comm, send: send, sendCapacity: sendExtent, receive: receive, capacity: capacity)
        } else {
            plan.run(comm, send: send, sendBytes: sendExtent, receive: receive, capacity: capacity, "\(step) \(side.plural)")
        }
    }
}
