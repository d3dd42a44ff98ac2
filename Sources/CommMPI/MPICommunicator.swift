// The multi-process communicator (ARCHITECTURE §4). This target is the only
// importer of CMPI. One object owns MPI for the process: it initialises MPI
// (once), works on its own duplicate of MPI_COMM_WORLD with errors set to
// return, checks every return code (file, line and MPI's text, then
// MPI_Abort), and finalises MPI when asked, once.
//
// Threading: every MPI call must come from the thread that created the
// communicator (build with -Xswiftc -DESAPN_CHECKS to have that checked).
// Per call nothing is allocated: the Int32 counts and displacements MPI wants
// live in scratch arrays of `size` entries made once.
import CMPI
import Comm
#if canImport(Glibc)
import Glibc
#endif

public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int

    /// Our duplicate of MPI_COMM_WORLD (MPI_Comm is a non-Sendable pointer: it lives here, not in a global).
    private var comm: MPI_Comm?
    /// Whether this object called MPI_Init, and so must call MPI_Finalize.
    private let ownsInitialization: Bool
    private var finalized = false

    /// Int32 scratch for the v-collectives: send counts, send displacements,
    /// receive counts, receive displacements, and a spare row for checks; `size` entries each.
    private let scratch: UnsafeMutablePointer<Int32>
    private var sendCounts32: UnsafeMutablePointer<Int32> { scratch }
    private var sendOffsets32: UnsafeMutablePointer<Int32> { scratch + size }
    private var receiveCounts32: UnsafeMutablePointer<Int32> { scratch + 2 * size }
    private var receiveOffsets32: UnsafeMutablePointer<Int32> { scratch + 3 * size }
    private var spare32: UnsafeMutablePointer<Int32> { scratch + 4 * size }
    /// A valid address to hand MPI for empty buffers (some MPI paths reject NULL).
    private let emptyBuffer: UnsafeMutableRawPointer

    #if ESAPN_CHECKS
    private let ownerThread = pthread_self()
    #endif

    /// Largest count one MPI call takes (its counts are C ints).
    private static let maximumCount = Int(Int32.max)

    // MARK: - Life cycle

    /// Initialises MPI if nobody has yet, and duplicates MPI_COMM_WORLD.
    /// Run under `mpirun`; alone, MPI starts as a singleton of one rank.
    public init() {
        var flag: Int32 = 0
        mpiCheck(MPI_Finalized(&flag), "MPI_Finalized")
        precondition(flag == 0, "MPICommunicator: MPI was already finalised in this process and cannot start again")
        mpiCheck(MPI_Initialized(&flag), "MPI_Initialized")
        if flag == 0 {
            // FUNNELED: --deterministic runs logical ranks on threads, and only this one calls MPI.
            var provided: Int32 = 0
            mpiCheck(MPI_Init_thread(nil, nil, Int32(MPI_THREAD_FUNNELED), &provided), "MPI_Init_thread")
            ownsInitialization = true
        } else {
            ownsInitialization = false
        }

        var duplicate: MPI_Comm? = esapn_mpi_comm_null()
        mpiCheck(MPI_Comm_dup(esapn_mpi_comm_world(), &duplicate), "MPI_Comm_dup")
        mpiCheck(MPI_Comm_set_errhandler(duplicate, esapn_mpi_errors_return()), "MPI_Comm_set_errhandler",
                 communicator: duplicate)
        var rank32: Int32 = 0, size32: Int32 = 0
        mpiCheck(MPI_Comm_rank(duplicate, &rank32), "MPI_Comm_rank", communicator: duplicate)
        mpiCheck(MPI_Comm_size(duplicate, &size32), "MPI_Comm_size", communicator: duplicate)

        comm = duplicate
        rank = Int(rank32)
        size = Int(size32)
        scratch = .allocate(capacity: 5 * Int(size32))
        scratch.initialize(repeating: 0, count: 5 * Int(size32))
        emptyBuffer = .allocate(byteCount: 16, alignment: 16)
    }

    deinit {
        scratch.deallocate()
        emptyBuffer.deallocate()
    }

    /// Frees the duplicated communicator and finalises MPI (if this object
    /// initialised it). Call once, on every rank, after the last collective;
    /// further calls do nothing, and collectives after it are an error.
    public func finalize() {
        guard !finalized else { return }
        checkThread()
        fflush(nil)
        check(MPI_Comm_free(&comm), "MPI_Comm_free")
        finalized = true
        if ownsInitialization {
            mpiCheck(MPI_Finalize(), "MPI_Finalize", rank: rank)
        }
    }

    /// The MPI library's description, first line (e.g. "Open MPI v4.1.4, …").
    public static var libraryVersion: String {
        var buffer = [CChar](repeating: 0, count: 512)
        esapn_mpi_library_version(&buffer, Int32(buffer.count))
        let text = String(cString: buffer)
        return text.split(separator: "\n").first.map(String.init) ?? text
    }

    /// True when this process was started by an MPI launcher (mpirun/mpiexec,
    /// or srun with PMIx/PMI): the CLI then picks MPI, else the local communicator.
    public static func launchedByMPI() -> Bool {
        for name in ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"] where getenv(name) != nil {
            return true
        }
        return false
    }

    // MARK: - Collectives

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {
        allReduce(UnsafeMutableRawPointer(buffer.baseAddress), count: buffer.count,
                  stride: MemoryLayout<Float>.stride, .float32, .sum)
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {
        allReduce(UnsafeMutableRawPointer(buffer.baseAddress), count: buffer.count,
                  stride: MemoryLayout<Double>.stride, .float64, .sum)
    }

    public func allReduceMax(_ buffer: UnsafeMutableBufferPointer<Double>) {
        allReduce(UnsafeMutableRawPointer(buffer.baseAddress), count: buffer.count,
                  stride: MemoryLayout<Double>.stride, .float64, .max)
    }

    public func allToAll(send: UnsafeBufferPointer<Int>, receive: UnsafeMutableBufferPointer<Int>) {
        checkUsable()
        precondition(send.count == size && receive.count == size,
                     "allToAll: send holds \(send.count) and receive \(receive.count) counts; both must hold one per rank (\(size))")
        let type = MPIElement.int.handle
        check(MPI_Alltoall(send.baseAddress, 1, type, receive.baseAddress, 1, type, comm), "MPI_Alltoall")
    }

    public func allToAllV(send: UnsafeRawBufferPointer,
                          sendCounts: UnsafeBufferPointer<Int>, sendOffsets: UnsafeBufferPointer<Int>,
                          receive: UnsafeMutableRawBufferPointer,
                          receiveCounts: UnsafeBufferPointer<Int>, receiveOffsets: UnsafeBufferPointer<Int>) {
        checkUsable()
        precondition(sendCounts.count == size && sendOffsets.count == size
                     && receiveCounts.count == size && receiveOffsets.count == size,
                     "allToAllV: counts and offsets must hold one entry per rank (\(size)); got send \(sendCounts.count)/\(sendOffsets.count), receive \(receiveCounts.count)/\(receiveOffsets.count)")
        for p in 0..<size {
            let sc = sendCounts[p], so = sendOffsets[p]
            precondition(sc >= 0 && so >= 0 && so <= send.count && sc <= send.count - so,
                         "allToAllV: \(sc) bytes to rank \(p) at offset \(so) do not fit the \(send.count)-byte send buffer")
            let rc = receiveCounts[p], ro = receiveOffsets[p]
            precondition(rc >= 0 && ro >= 0 && ro <= receive.count && rc <= receive.count - ro,
                         "allToAllV: \(rc) bytes from rank \(p) at offset \(ro) do not fit the \(receive.count)-byte receive buffer")
            sendCounts32[p] = int32(sc, "allToAllV: byte count to rank \(p)")
            sendOffsets32[p] = int32(so, "allToAllV: send offset for rank \(p)")
            receiveCounts32[p] = int32(rc, "allToAllV: byte count from rank \(p)")
            receiveOffsets32[p] = int32(ro, "allToAllV: receive offset for rank \(p)")
        }
        #if ESAPN_CHECKS
        // Counts must agree pairwise: what p sends to us is what we expect from p.
        check(MPI_Alltoall(sendCounts32, 1, MPIElement.int32.handle, spare32, 1, MPIElement.int32.handle, comm),
              "MPI_Alltoall")
        for p in 0..<size where spare32[p] != receiveCounts32[p] {
            abort("allToAllV: rank \(p) sends \(spare32[p]) bytes to rank \(rank), which expects \(receiveCounts32[p])", code: 3)
        }
        #endif
        let byte = MPIElement.byte.handle
        check(MPI_Alltoallv(send.baseAddress ?? UnsafeRawPointer(emptyBuffer), sendCounts32, sendOffsets32, byte,
                            receive.baseAddress ?? emptyBuffer, receiveCounts32, receiveOffsets32, byte, comm),
              "MPI_Alltoallv")
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {
        checkUsable()
        precondition(root >= 0 && root < size, "broadcast: root \(root) is not a rank of 0..<\(size)")
        // Every rank holds the same count, so every rank cuts the same chunks.
        var base = buffer.baseAddress ?? emptyBuffer
        var remaining = buffer.count
        repeat {
            let n = Swift.min(remaining, Self.maximumCount)
            check(MPI_Bcast(base, Int32(n), MPIElement.byte.handle, Int32(root), comm), "MPI_Bcast")
            base += n
            remaining -= n
        } while remaining > 0
    }

    public func allGather(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer) {
        checkUsable()
        precondition(receive.count == size * send.count,
                     "allGather: receive holds \(receive.count) bytes; it must hold \(size) ranks × \(send.count) bytes")
        let n = int32(send.count, "allGather: bytes per rank")
        let byte = MPIElement.byte.handle
        check(MPI_Allgather(send.baseAddress ?? UnsafeRawPointer(emptyBuffer), n, byte,
                            receive.baseAddress ?? emptyBuffer, n, byte, comm), "MPI_Allgather")
    }

    public func barrier() {
        checkUsable()
        check(MPI_Barrier(comm), "MPI_Barrier")
    }

    public func abort(_ message: String, code: Int32) -> Never {
        writeToStandardError("esapn: rank \(rank): \(message)\n")
        fflush(nil)
        if !finalized {
            _ = MPI_Abort(comm, code)
        }
        exit(code)
    }

    // MARK: - Internals

    /// In-place all-reduce of `count` elements, in chunks MPI's int counts can hold.
    private func allReduce(_ buffer: UnsafeMutableRawPointer?, count: Int, stride: Int,
                           _ element: MPIElement, _ reduction: MPIReduction) {
        checkUsable()
        guard var base = buffer, count > 0 else { return }
        var remaining = count
        while remaining > 0 {
            let n = Swift.min(remaining, Self.maximumCount)
            check(MPI_Allreduce(UnsafeRawPointer(esapn_mpi_in_place()), base, Int32(n),
                                element.handle, reduction.handle, comm), "MPI_Allreduce")
            base += n * stride
            remaining -= n
        }
    }

    /// `value` as MPI's C int, or a clear stop naming what overflowed.
    @inline(__always)
    private func int32(_ value: Int, _ what: @autoclosure () -> String) -> Int32 {
        guard let v = Int32(exactly: value) else {
            abort("\(what()) is \(value), beyond the \(Int32.max) that one MPI call can address; split the exchange into smaller rounds",
                  code: 3)
        }
        return v
    }

    @inline(__always)
    private func check(_ code: Int32, _ call: StaticString, file: StaticString = #fileID, line: UInt = #line) {
        if code != MPI_SUCCESS {
            mpiFail(code, call, rank: rank, communicator: comm, file: file, line: line)
        }
    }

    @inline(__always)
    private func checkUsable() {
        precondition(!finalized, "MPICommunicator used after finalize()")
        checkThread()
    }

    @inline(__always)
    private func checkThread() {
        #if ESAPN_CHECKS
        precondition(pthread_equal(ownerThread, pthread_self()) != 0,
                     "MPICommunicator called from another thread than the one that created it")
        #endif
    }
}
