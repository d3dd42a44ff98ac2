// Logical ranks (issue 12, `esapn train --deterministic`): a run behaves as
// C ranks whatever number of processes P ≤ C hosts them, so its results are
// the same bits for every P up to C. This file is the rendezvous: which
// process hosts which logical ranks, their threads, and how a collective
// call of each logical rank meets the others'. What the leader then does
// for all of them, in logical rank order, is OrderedCollectives.swift.
//
// Each process runs its share of the C logical ranks as threads; each thread
// is a whole rank of the trainer (its slice of every batch, its shard of the
// rows, its policy), so every record is computed in the same slice, every ID
// at the same owner and every BLAS call sees the same rows whatever P is.
// What remains is the collectives, and here every one gives a result that
// depends only on the C logical ranks' contributions, never on how they are
// spread over processes:
//   - sums (and maxima) fold the C contributions left to right in logical
//     rank order, c₀ + c₁ + … + c_{C−1}, on every process alike (so replicas
//     stay identical), instead of MPI's order, which depends on P;
//   - the exchanges (all-to-all, all-to-all-v, all-gather, broadcast) move
//     bytes, which no grouping can change.
// Nothing is converted to fixed point: the same operands in the same order
// give the same bits. Small sums gather all C contributions to every
// process; large ones are folded in segments, one per process, then gathered
// (about (C/P + 1)·n values received per process; MPI's ring: ~2n).
//
// The calling thread runs the process's first logical rank and leads the
// collectives: the others deposit their buffers and wait; when all of this
// process's ranks have arrived, the leader makes one collective of the
// process-level communicator (`outer`, MPI or the local one) for all of them.
// So only the thread that made `outer` calls MPI (MPI_THREAD_FUNNELED), and a
// process that hosts one logical rank runs no thread and waits on no one.
#if canImport(Glibc)
import Glibc
#endif

/// The logical ranks one process hosts, and how their collectives are made.
public final class LogicalWorld: @unchecked Sendable {
    /// C: the number of logical ranks (the run's rank count as the trainer sees it).
    public let size: Int
    /// The processes' communicator.
    public let outer: any Communicator
    /// The logical ranks this process hosts: a contiguous block.
    public let hosted: Range<Int>

    /// Logical ranks of process `p` of `processes`: the block p·C/P ..< (p+1)·C/P.
    public static func hosted(process p: Int, processes: Int, logical: Int) -> Range<Int> {
        (p * logical / processes)..<((p + 1) * logical / processes)
    }

    /// Which process hosts logical rank `v`.
    public func process(of v: Int) -> Int {
        var p = v * outer.size / size
        while !Self.hosted(process: p, processes: outer.size, logical: size).contains(v) { p += 1 }
        return p
    }

    // What a logical rank asks for, deposited in its slot.
    enum Operation: Equatable {
        case none, sumFloat, sumDouble, maxDouble, allToAll, allToAllV, broadcast(root: Int), allGather, barrier
    }
    struct Request {
        var operation = Operation.none
        var buffer: UnsafeMutableRawPointer?
        var count = 0          // elements (reductions, all-to-all) or bytes (the rest)
        var send: UnsafeRawPointer?
        var sendCounts: UnsafePointer<Int>?, sendOffsets: UnsafePointer<Int>?
        var receiveCounts: UnsafePointer<Int>?, receiveOffsets: UnsafePointer<Int>?
    }

    private var mutex = pthread_mutex_t()
    private var arrivedCondition = pthread_cond_t()
    private var doneCondition = pthread_cond_t()
    var requests: [Request]
    private var arrived = 0
    private var live = 0
    private var generation = 0
    /// Process-level staging, grown when needed and kept (a batch then allocates nothing).
    var sendStage = Stage(), receiveStage = Stage()
    /// Scratch for the process-level all-to-all-v: send counts, send offsets,
    /// receive counts, receive offsets, in bytes, `outer.size` entries each.
    let counts: UnsafeMutablePointer<Int>
    var sendCounts: UnsafeMutablePointer<Int> { counts }
    var sendOffsets: UnsafeMutablePointer<Int> { counts + outer.size }
    var receiveCounts: UnsafeMutablePointer<Int> { counts + 2 * outer.size }
    var receiveOffsets: UnsafeMutablePointer<Int> { counts + 3 * outer.size }

    /// C logical ranks over the processes of `outer` (C ≥ outer.size).
    public init(outer: any Communicator, size: Int) {
        precondition(size >= outer.size, "\(size) logical ranks cannot be hosted by \(outer.size) processes")
        self.outer = outer
        self.size = size
        hosted = Self.hosted(process: outer.rank, processes: outer.size, logical: size)
        requests = [Request](repeating: Request(), count: hosted.count)
        counts = .allocate(capacity: 4 * outer.size)
        counts.initialize(repeating: 0, count: 4 * outer.size)
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&arrivedCondition, nil)
        pthread_cond_init(&doneCondition, nil)
    }

    deinit {
        counts.deallocate()
        sendStage.base.deallocate()
        receiveStage.base.deallocate()
        pthread_mutex_destroy(&mutex)
        pthread_cond_destroy(&arrivedCondition)
        pthread_cond_destroy(&doneCondition)
    }

    /// Runs `body` once per hosted logical rank: the first on the calling
    /// thread, which leads every collective, the others on threads of their
    /// own. Returns each rank's error (nil: it returned), in hosted order.
    public func run(_ body: @escaping @Sendable (LogicalCommunicator) throws -> Void) -> [(any Error)?] {
        let results = UnsafeMutablePointer<(any Error)?>.allocate(capacity: hosted.count)
        results.initialize(repeating: nil, count: hosted.count)
        defer { results.deinitialize(count: hosted.count); results.deallocate() }
        live = hosted.count
        var threads: [pthread_t] = []
        for (i, v) in hosted.enumerated().dropFirst() {
            let comm = LogicalCommunicator(world: self, rank: v, slot: i)
            let box = Unmanaged.passRetained(ThreadBody {
                do { try body(comm) } catch { results[i] = error }
                self.leave()
            })
            var attributes = pthread_attr_t()
            pthread_attr_init(&attributes)
            pthread_attr_setstacksize(&attributes, 16 << 20)
            var thread = pthread_t()
            let status = pthread_create(&thread, &attributes, { context in
                let body = Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue()
                body.run()
                return nil
            }, box.toOpaque())
            pthread_attr_destroy(&attributes)
            precondition(status == 0, "logical rank \(v): pthread_create failed (\(status))")
            threads.append(thread)
        }
        do { try body(LogicalCommunicator(world: self, rank: hosted.lowerBound, slot: 0)) } catch { results[0] = error }
        // The leader is done: the others must not be left waiting in a collective it will not lead.
        pthread_mutex_lock(&mutex)
        live -= 1
        while live > 0 {
            if arrived > 0 && arrived == live {
                pthread_mutex_unlock(&mutex)
                outer.abort("logical rank \(hosted.lowerBound) returned while \(arrived) other logical rank(s) of its "
                            + "process wait in a collective", code: 1)
            }
            pthread_cond_wait(&arrivedCondition, &mutex)
        }
        pthread_mutex_unlock(&mutex)
        for thread in threads { pthread_join(thread, nil) }
        return (0..<hosted.count).map { results[$0] }
    }

    private final class ThreadBody {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    private func leave() {
        pthread_mutex_lock(&mutex)
        live -= 1
        pthread_cond_signal(&arrivedCondition)
        pthread_mutex_unlock(&mutex)
    }

    /// A logical rank's side of a collective. The others deposit their request
    /// and wait; the leader (slot 0, the calling thread of `run`) waits until
    /// every hosted rank has arrived, makes one process-level collective for
    /// all of them and releases them. With one logical rank per process
    /// nobody waits on anybody: the collective is the process's own.
    func call(slot: Int, _ request: Request) {
        pthread_mutex_lock(&mutex)
        requests[slot] = request
        arrived += 1
        guard slot == 0 else {
            let g = generation
            if arrived == live { pthread_cond_signal(&arrivedCondition) }
            while generation == g { pthread_cond_wait(&doneCondition, &mutex) }
            pthread_mutex_unlock(&mutex)
            return
        }
        while arrived < live { pthread_cond_wait(&arrivedCondition, &mutex) }
        let missing = hosted.count - live
        pthread_mutex_unlock(&mutex)
        if missing > 0 {
            outer.abort("\(missing) logical rank(s) of this process returned while logical rank \(hosted.lowerBound) "
                        + "waits in a collective", code: 1)
        }
        let operation = requests[0].operation
        for (i, r) in requests.enumerated() where r.operation != operation {
            outer.abort("logical rank \(hosted.lowerBound + i) called \(r.operation) while logical rank "
                        + "\(hosted.lowerBound) called \(operation)", code: 1)
        }
        perform(operation)
        pthread_mutex_lock(&mutex)
        arrived = 0
        generation += 1
        if hosted.count > 1 { pthread_cond_broadcast(&doneCondition) }
        pthread_mutex_unlock(&mutex)
    }
}

/// One logical rank: a `Communicator` of size C whose collectives the world serves.
public final class LogicalCommunicator: Communicator, @unchecked Sendable {
    public let world: LogicalWorld
    public let rank: Int
    let slot: Int
    public var size: Int { world.size }

    init(world: LogicalWorld, rank: Int, slot: Int) {
        self.world = world
        self.rank = rank
        self.slot = slot
    }

    private func reduce<T>(_ operation: LogicalWorld.Operation, _ buffer: UnsafeMutableBufferPointer<T>) {
        world.call(slot: slot, .init(operation: operation, buffer: UnsafeMutableRawPointer(buffer.baseAddress),
                                     count: buffer.count))
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) { reduce(.sumFloat, buffer) }
    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) { reduce(.sumDouble, buffer) }
    public func allReduceMax(_ buffer: UnsafeMutableBufferPointer<Double>) { reduce(.maxDouble, buffer) }

    public func allToAll(send: UnsafeBufferPointer<Int>, receive: UnsafeMutableBufferPointer<Int>) {
        precondition(send.count == size && receive.count == size, "allToAll takes one count per rank")
        world.call(slot: slot, .init(operation: .allToAll, buffer: UnsafeMutableRawPointer(receive.baseAddress),
                                     count: size, send: UnsafeRawPointer(send.baseAddress)))
    }

    public func allToAllV(send: UnsafeRawBufferPointer,
                          sendCounts: UnsafeBufferPointer<Int>, sendOffsets: UnsafeBufferPointer<Int>,
                          receive: UnsafeMutableRawBufferPointer,
                          receiveCounts: UnsafeBufferPointer<Int>, receiveOffsets: UnsafeBufferPointer<Int>) {
        world.call(slot: slot, .init(operation: .allToAllV, buffer: receive.baseAddress, count: receive.count,
                                     send: send.baseAddress, sendCounts: sendCounts.baseAddress,
                                     sendOffsets: sendOffsets.baseAddress, receiveCounts: receiveCounts.baseAddress,
                                     receiveOffsets: receiveOffsets.baseAddress))
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {
        precondition((0..<size).contains(root), "broadcast root \(root) is not a logical rank of \(size)")
        world.call(slot: slot, .init(operation: .broadcast(root: root), buffer: buffer.baseAddress, count: buffer.count))
    }

    public func allGather(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer) {
        precondition(receive.count == size * send.count, "allGather: receive must hold size × send bytes")
        world.call(slot: slot, .init(operation: .allGather, buffer: receive.baseAddress, count: send.count,
                                     send: send.baseAddress))
    }

    public func barrier() { world.call(slot: slot, .init(operation: .barrier)) }

    public func abort(_ message: String, code: Int32) -> Never { world.outer.abort(message, code: code) }
}
