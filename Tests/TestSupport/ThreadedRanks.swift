// P ranks as P threads of one process, for tests of the multi-rank exchange
// and trainer without MPI. Every collective is: publish this rank's buffers,
// barrier, read the others', barrier. Reductions sum in rank order, so a run
// is deterministic (MPI's order differs, which is why multi-rank results
// equal P = 1 only up to reduction order).
import Comm
import Foundation

/// The shared state of P threaded ranks.
public final class ThreadedWorld: @unchecked Sendable {
    public let size: Int
    private let condition = NSCondition()
    private var arrived = 0
    private var generation = 0
    /// What each rank publishes for the current collective (only its own entry is written by it).
    fileprivate let published: UnsafeMutablePointer<Published>

    fileprivate struct Published {
        var data: UnsafeRawPointer?
        var count = 0
        var counts: UnsafePointer<Int>?
        var offsets: UnsafePointer<Int>?
    }

    public init(size: Int) {
        precondition(size > 0, "a world needs at least one rank")
        self.size = size
        published = .allocate(capacity: size)
        published.initialize(repeating: Published(), count: size)
    }

    deinit { published.deallocate() }

    /// Waits until all `size` ranks have arrived (reusable).
    func barrier() {
        condition.lock()
        let g = generation
        arrived += 1
        if arrived == size {
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            while g == generation { condition.wait() }
        }
        condition.unlock()
    }

    /// Runs `body` once per rank, each on its own thread, and waits for all of them.
    public func run(_ body: @escaping @Sendable (ThreadedCommunicator) -> Void) {
        let done = DispatchGroup()
        for r in 0..<size {
            done.enter()
            let comm = ThreadedCommunicator(world: self, rank: r)
            let thread = Thread {
                body(comm)
                done.leave()
            }
            thread.stackSize = 16 << 20
            thread.start()
        }
        done.wait()
    }
}

/// One rank of a `ThreadedWorld`.
public final class ThreadedCommunicator: Communicator, @unchecked Sendable {
    public let world: ThreadedWorld
    public let rank: Int
    public var size: Int { world.size }

    init(world: ThreadedWorld, rank: Int) {
        self.world = world
        self.rank = rank
    }

    private func publish(_ data: UnsafeRawPointer?, count: Int = 0,
                         counts: UnsafePointer<Int>? = nil, offsets: UnsafePointer<Int>? = nil) {
        world.published[rank] = ThreadedWorld.Published(data: data, count: count, counts: counts, offsets: offsets)
        world.barrier()
    }

    private func reduce<T: BinaryFloatingPoint>(_ buffer: UnsafeMutableBufferPointer<T>, _ op: (T, T) -> T) {
        publish(UnsafeRawPointer(buffer.baseAddress), count: buffer.count)
        var result = [T](repeating: 0, count: buffer.count)
        for p in 0..<size {
            precondition(world.published[p].count == buffer.count,
                         "rank \(p) reduces \(world.published[p].count) values, rank \(rank) \(buffer.count)")
            guard buffer.count > 0 else { break }
            let other = world.published[p].data!.assumingMemoryBound(to: T.self)
            for i in 0..<buffer.count { result[i] = p == 0 ? other[i] : op(result[i], other[i]) }
        }
        world.barrier()
        for i in 0..<buffer.count { buffer[i] = result[i] }
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) { reduce(buffer, +) }
    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) { reduce(buffer, +) }
    public func allReduceMax(_ buffer: UnsafeMutableBufferPointer<Double>) { reduce(buffer) { Swift.max($0, $1) } }

    public func allToAll(send: UnsafeBufferPointer<Int>, receive: UnsafeMutableBufferPointer<Int>) {
        precondition(send.count == size && receive.count == size, "allToAll takes one count per rank")
        publish(UnsafeRawPointer(send.baseAddress), count: send.count)
        for p in 0..<size { receive[p] = world.published[p].data!.assumingMemoryBound(to: Int.self)[rank] }
        world.barrier()
    }

    public func allToAllV(send: UnsafeRawBufferPointer,
                          sendCounts: UnsafeBufferPointer<Int>, sendOffsets: UnsafeBufferPointer<Int>,
                          receive: UnsafeMutableRawBufferPointer,
                          receiveCounts: UnsafeBufferPointer<Int>, receiveOffsets: UnsafeBufferPointer<Int>) {
        publish(send.baseAddress, count: send.count, counts: sendCounts.baseAddress, offsets: sendOffsets.baseAddress)
        for p in 0..<size {
            let other = world.published[p]
            let n = other.counts![rank], offset = other.offsets![rank]
            precondition(n == receiveCounts[p], "rank \(p) sends \(n) bytes to rank \(rank), which expects \(receiveCounts[p])")
            precondition(offset + n <= other.count, "rank \(p) sends beyond its \(other.count)-byte buffer")
            precondition(receiveOffsets[p] + n <= receive.count, "rank \(rank) receives beyond its \(receive.count)-byte buffer")
            if n > 0 { (receive.baseAddress! + receiveOffsets[p]).copyMemory(from: other.data! + offset, byteCount: n) }
        }
        world.barrier()
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {
        publish(UnsafeRawPointer(buffer.baseAddress), count: buffer.count)
        if rank != root && buffer.count > 0 {
            buffer.baseAddress!.copyMemory(from: world.published[root].data!, byteCount: buffer.count)
        }
        world.barrier()
    }

    public func allGather(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer) {
        precondition(receive.count == size * send.count, "allGather: receive must hold size × send bytes")
        publish(send.baseAddress, count: send.count)
        for p in 0..<size where send.count > 0 {
            (receive.baseAddress! + p * send.count).copyMemory(from: world.published[p].data!, byteCount: send.count)
        }
        world.barrier()
    }

    public func barrier() { world.barrier() }

    public func abort(_ message: String, code: Int32) -> Never { fatalError("rank \(rank): \(message)") }
}

/// A value shared between threads, behind a lock.
public final class Locked<T>: @unchecked Sendable {
    private var stored: T
    private let lock = NSLock()
    public init(_ value: T) { stored = value }
    public var value: T { lock.lock(); defer { lock.unlock() }; return stored }
    public func update(_ body: (inout T) -> Void) { lock.lock(); body(&stored); lock.unlock() }
}
