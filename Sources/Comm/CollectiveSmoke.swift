// `esapn mpi-smoke`'s checks: every collective of a communicator on data
// whose result is known in closed form, on every rank, each result checked.
#if canImport(Glibc)
import Glibc
#endif

// MARK: - The checks

/// Runs the collectives on known data and collects every mismatch as a line of text.
public struct CollectiveSmoke {
    /// Faults to inject on one rank, to prove that the checks catch them (tests use these).
    public enum Fault: String, CaseIterable, Sendable {
        /// Spoil received values after the collectives.
        case wrongData = "wrong-data"
        /// Expect one byte fewer than is sent in all-to-all-v: MPI reports truncation.
        case truncate
    }

    let comm: Communicator
    let fault: (kind: CollectiveSmoke.Fault, rank: Int)?
    public private(set) var failures: [String] = []

    public init(_ comm: Communicator, fault: (CollectiveSmoke.Fault, Int)?) {
        self.comm = comm
        self.fault = fault
    }

    var rank: Int { comm.rank }
    var size: Int { comm.size }
    /// Whether this rank injects `kind` of fault.
    func injects(_ kind: CollectiveSmoke.Fault) -> Bool { fault?.kind == kind && fault?.rank == rank }
    var corrupt: Bool { injects(.wrongData) }

    public mutating func runAll() {
        allReduceFloat()
        allReduceDouble()
        allReduceMax()
        allReduceEmpty()
        conveniences()
        allToAllAndV()
        broadcast(root: size - 1, bytes: 100_003)
        broadcast(root: 0, bytes: 1)
        broadcast(root: 0, bytes: 0)
        allGather()
        comm.barrier()
    }

    // MARK: all-reduce

    mutating func allReduceFloat() {
        let n = 100_003
        var buffer = (0..<n).map { Float(rank + 1) * Float($0 % 251) * 0.5 }
        buffer.withUnsafeMutableBufferPointer { comm.allReduceSum($0) }
        if corrupt { buffer[17] += 1 }
        let ranks = Float(size * (size + 1) / 2)
        expectEqual("all-reduce sum (float)", buffer, (0..<n).map { ranks * Float($0 % 251) * 0.5 })
    }

    mutating func allReduceDouble() {
        let n = 300_007
        var buffer = (0..<n).map { Double(rank + 1) * Double($0) + Double(rank) * 0.25 }
        buffer.withUnsafeMutableBufferPointer { comm.allReduceSum($0) }
        let a = Double(size * (size + 1) / 2), b = Double(size * (size - 1) / 2) * 0.25
        expectEqual("all-reduce sum (double)", buffer, (0..<n).map { a * Double($0) + b })
    }

    mutating func allReduceMax() {
        let n = 1_001
        func value(_ r: Int, _ i: Int) -> Double { Double((i * 7 + r * 3) % 11) - 5.5 - Double(r) * 0.25 }
        var buffer = (0..<n).map { value(rank, $0) }
        buffer.withUnsafeMutableBufferPointer { comm.allReduceMax($0) }
        expectEqual("all-reduce max (double)", buffer, (0..<n).map { i in (0..<size).map { value($0, i) }.max()! })
    }

    mutating func allReduceEmpty() {
        var floats: [Float] = []
        var doubles: [Double] = []
        floats.withUnsafeMutableBufferPointer { comm.allReduceSum($0) }
        doubles.withUnsafeMutableBufferPointer { comm.allReduceSum($0) }
        doubles.withUnsafeMutableBufferPointer { comm.allReduceMax($0) }
    }

    mutating func conveniences() {
        let sum = comm.sum(Double(rank) + 0.5)
        expectEqual("sum(_:)", [sum], [Double(size * (size - 1) / 2) + 0.5 * Double(size)])
        let max = comm.max(-Double(rank))
        expectEqual("max(_:)", [max], [0])
        let gathered = Array(comm.allGather([Double(rank), -Double(rank)]).joined())
        var expected: [Double] = []
        for r in 0..<size { expected += [Double(r), -Double(r)] }
        expectEqual("allGather([Double])", gathered, expected)
    }

    // MARK: all-to-all

    /// Bytes rank `s` sends to rank `d`: some pairs empty, one large (past the eager limit).
    func pairBytes(_ s: Int, _ d: Int) -> Int {
        if s == 0 && d == size - 1 { return 300_001 }
        if (s + 2 * d) % 3 == 1 { return 0 }
        return 1 + (s * 37 + d * 101) % 997
    }

    /// Byte `k` of the message from rank `s` to rank `d`.
    func pairByte(_ s: Int, _ d: Int, _ k: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: s &* 131 &+ d &* 17 &+ k &* 7 &+ k >> 8)
    }

    mutating func allToAllAndV() {
        // Counts first, as the trainer does.
        let sendCounts = (0..<size).map { pairBytes(rank, $0) }
        var receiveCounts = [Int](repeating: -1, count: size)
        sendCounts.withUnsafeBufferPointer { s in
            receiveCounts.withUnsafeMutableBufferPointer { r in comm.allToAll(send: s, receive: r) }
        }
        expectEqual("all-to-all (counts)", receiveCounts, (0..<size).map { pairBytes($0, rank) })
        guard receiveCounts.allSatisfy({ $0 >= 0 }) else { return }
        if injects(.truncate) {
            for p in 0..<size where receiveCounts[p] > 0 { receiveCounts[p] -= 1 }
        }

        // Send segments in reverse rank order with a 3-byte gap before each,
        // receive segments in rank order with a 5-byte gap: offsets matter.
        let sentinel: UInt8 = 0xEE
        var sendOffsets = [Int](repeating: 0, count: size)
        var end = 0
        for p in (0..<size).reversed() {
            sendOffsets[p] = end + 3
            end = sendOffsets[p] + sendCounts[p]
        }
        var send = [UInt8](repeating: sentinel, count: end)
        for p in 0..<size {
            for k in 0..<sendCounts[p] { send[sendOffsets[p] + k] = pairByte(rank, p, k) }
        }
        var receiveOffsets = [Int](repeating: 0, count: size)
        end = 0
        for p in 0..<size {
            receiveOffsets[p] = end + 5
            end = receiveOffsets[p] + receiveCounts[p]
        }
        var receive = [UInt8](repeating: sentinel, count: end)

        send.withUnsafeBytes { s in
            receive.withUnsafeMutableBytes { r in
                sendCounts.withUnsafeBufferPointer { sc in
                    sendOffsets.withUnsafeBufferPointer { so in
                        receiveCounts.withUnsafeBufferPointer { rc in
                            receiveOffsets.withUnsafeBufferPointer { ro in
                                comm.allToAllV(send: s, sendCounts: sc, sendOffsets: so,
                                               receive: r, receiveCounts: rc, receiveOffsets: ro)
                            }
                        }
                    }
                }
            }
        }
        if corrupt && !receive.isEmpty { receive[receive.count - 1] ^= 0xFF }

        var expected = [UInt8](repeating: sentinel, count: receive.count)
        for p in 0..<size {
            for k in 0..<receiveCounts[p] { expected[receiveOffsets[p] + k] = pairByte(p, rank, k) }
        }
        let sizes = (0..<size).map { "\(pairBytes($0, rank))" }.joined(separator: ",")
        expectEqual("all-to-all-v (bytes from ranks, sizes \(sizes))", receive, expected)
    }

    // MARK: broadcast, all-gather

    mutating func broadcast(root: Int, bytes: Int) {
        func pattern(_ k: Int) -> UInt8 { UInt8(truncatingIfNeeded: k &* 31 &+ root &* 7 &+ 1) }
        let mine = rank == root
        var buffer = (0..<bytes).map { k -> UInt8 in mine ? pattern(k) : UInt8(truncatingIfNeeded: (rank &* 13 &+ k) ^ 0x5A) }
        buffer.withUnsafeMutableBytes { comm.broadcast($0, root: root) }
        expectEqual("broadcast (\(bytes) bytes from rank \(root))", buffer, (0..<bytes).map(pattern))
    }

    mutating func allGather() {
        let mine: [Double] = [Double(rank), Double(rank * rank) + 0.5, -Double(rank)]
        var all = [Double](repeating: .nan, count: 3 * size)
        mine.withUnsafeBytes { s in all.withUnsafeMutableBytes { r in comm.allGather(s, into: r) } }
        var expected: [Double] = []
        for r in 0..<size { expected += [Double(r), Double(r * r) + 0.5, -Double(r)] }
        expectEqual("all-gather (3 doubles a rank)", all, expected)

        let nothing: [UInt8] = []
        var none: [UInt8] = []
        nothing.withUnsafeBytes { s in none.withUnsafeMutableBytes { r in comm.allGather(s, into: r) } }
    }

    // MARK: comparison

    /// Exact comparison (every value here is exactly representable); records
    /// the first differing index and how many differ.
    mutating func expectEqual<T: Equatable>(_ what: String, _ got: [T], _ expected: [T]) {
        guard got.count == expected.count else {
            failures.append("\(what): got \(got.count) values, expected \(expected.count)")
            return
        }
        var first: Int?
        var count = 0
        for i in got.indices where got[i] != expected[i] {
            if first == nil { first = i }
            count += 1
        }
        if let i = first {
            failures.append("\(what): \(count) of \(got.count) values differ; first at index \(i): got \(got[i]), expected \(expected[i])")
        }
    }
}

extension CollectiveSmoke {
    /// Runs every check on every rank (collective) and agrees on the outcome:
    /// how many ranks failed; this rank's mismatches are in `failures`.
    public mutating func runAndAgree() -> Int {
        runAll()
        let failing = Int(comm.sum(failures.isEmpty ? 0 : 1))
        comm.barrier()
        return failing
    }
}
