// A communicator that counts what passes through another: collectives made
// and bytes this rank sends in them, per kind. `esapn train --profile` wraps
// the real communicator in one, so the bytes and the number of collectives
// per batch (what the scaling model needs) are measured, not estimated;
// without --profile nothing is wrapped and nothing is counted.

public final class CountingCommunicator: Communicator {
    public let inner: any Communicator
    public enum Kind: Int, CaseIterable, Sendable {
        case allReduce, allToAll, allToAllV, broadcast, allGather, barrier
        public var name: String {
            ["all-reduce", "all-to-all (counts)", "all-to-all-v", "broadcast", "all-gather", "barrier"][rawValue]
        }
    }
    /// Per kind: collectives made, and bytes this rank sent in them (to other ranks and itself).
    public private(set) var calls = [Int](repeating: 0, count: Kind.allCases.count)
    public private(set) var bytes = [Int](repeating: 0, count: Kind.allCases.count)

    public init(_ inner: any Communicator) { self.inner = inner }

    public var rank: Int { inner.rank }
    public var size: Int { inner.size }

    @inline(__always) private func count(_ kind: Kind, _ n: Int) {
        calls[kind.rawValue] += 1
        bytes[kind.rawValue] += n
    }

    public func reset() {
        calls = [Int](repeating: 0, count: Kind.allCases.count)
        bytes = [Int](repeating: 0, count: Kind.allCases.count)
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {
        count(.allReduce, 4 * buffer.count); inner.allReduceSum(buffer)
    }
    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {
        count(.allReduce, 8 * buffer.count); inner.allReduceSum(buffer)
    }
    public func allReduceMax(_ buffer: UnsafeMutableBufferPointer<Double>) {
        count(.allReduce, 8 * buffer.count); inner.allReduceMax(buffer)
    }
    public func allToAll(send: UnsafeBufferPointer<Int>, receive: UnsafeMutableBufferPointer<Int>) {
        count(.allToAll, 8 * send.count); inner.allToAll(send: send, receive: receive)
    }
    public func allToAllV(send: UnsafeRawBufferPointer,
                          sendCounts: UnsafeBufferPointer<Int>, sendOffsets: UnsafeBufferPointer<Int>,
                          receive: UnsafeMutableRawBufferPointer,
                          receiveCounts: UnsafeBufferPointer<Int>, receiveOffsets: UnsafeBufferPointer<Int>) {
        count(.allToAllV, sendCounts.reduce(0, +))
        inner.allToAllV(send: send, sendCounts: sendCounts, sendOffsets: sendOffsets, receive: receive,
                        receiveCounts: receiveCounts, receiveOffsets: receiveOffsets)
    }
    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {
        count(.broadcast, rank == root ? buffer.count : 0); inner.broadcast(buffer, root: root)
    }
    public func allGather(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer) {
        count(.allGather, send.count); inner.allGather(send, into: receive)
    }
    public func barrier() { count(.barrier, 0); inner.barrier() }
    public func abort(_ message: String, code: Int32) -> Never { inner.abort(message, code: code) }
}
