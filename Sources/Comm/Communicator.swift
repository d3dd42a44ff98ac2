// The collectives the trainer needs, behind one protocol (ARCHITECTURE §4).
// `LocalCommunicator` is the single-process case, where every collective is a
// copy; `MPICommunicator` (target CommMPI) is the multi-process one. Only the
// CLI chooses between them.
//
// Buffers are passed as pointers so the per-batch path allocates nothing:
// callers own and reuse them. Counts and offsets of the v-collectives are in
// bytes, one entry per rank.

public protocol Communicator: AnyObject {
    /// This process's rank, 0..<size.
    var rank: Int { get }
    /// Number of processes.
    var size: Int { get }

    /// Element-wise sum over all ranks, in place.
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>)
    /// Element-wise sum over all ranks, in place.
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>)
    /// Element-wise maximum over all ranks, in place.
    func allReduceMax(_ buffer: UnsafeMutableBufferPointer<Double>)

    /// Each rank sends `send[p]` to rank p and receives `receive[p]` from rank p.
    /// Both buffers hold `size` elements.
    func allToAll(send: UnsafeBufferPointer<Int>, receive: UnsafeMutableBufferPointer<Int>)

    /// Personalised exchange of bytes: rank r sends `sendCounts[p]` bytes at
    /// `sendOffsets[p]` to rank p, and receives `receiveCounts[p]` bytes from
    /// rank p at `receiveOffsets[p]`. Counts must agree pairwise (exchange
    /// them first with `allToAll`).
    func allToAllV(send: UnsafeRawBufferPointer,
                   sendCounts: UnsafeBufferPointer<Int>, sendOffsets: UnsafeBufferPointer<Int>,
                   receive: UnsafeMutableRawBufferPointer,
                   receiveCounts: UnsafeBufferPointer<Int>, receiveOffsets: UnsafeBufferPointer<Int>)

    /// Copies `buffer` on `root` into `buffer` on every rank.
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int)

    /// Every rank contributes `send.count` bytes (the same count everywhere);
    /// every rank receives all contributions in rank order
    /// (`receive.count == size * send.count`).
    func allGather(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer)

    /// Waits until every rank has arrived.
    func barrier()

    /// Stops every rank after printing `message` (used for errors found on one rank only).
    func abort(_ message: String, code: Int32) -> Never
}

// MARK: - Conveniences built on the primitives

extension Communicator {
    public var isRoot: Bool { rank == 0 }

    /// Sum of one value over all ranks.
    public func sum(_ value: Double) -> Double {
        var v = value
        withUnsafeMutablePointer(to: &v) { allReduceSum(UnsafeMutableBufferPointer(start: $0, count: 1)) }
        return v
    }

    /// Maximum of one value over all ranks.
    public func max(_ value: Double) -> Double {
        var v = value
        withUnsafeMutablePointer(to: &v) { allReduceMax(UnsafeMutableBufferPointer(start: $0, count: 1)) }
        return v
    }
}
