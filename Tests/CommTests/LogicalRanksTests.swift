// Logical ranks (--deterministic): C logical ranks hosted by P processes
// (here P threads of a ThreadedWorld, each hosting its block on threads of
// its own) must give every collective the bits C ranks of their own give.
// ThreadedWorld folds its sums in rank order, which is the order the logical
// world promises, so C threaded ranks are the reference.
import Comm
import TestSupport
import XCTest

final class LogicalRanksTests: XCTestCase {
    /// Values whose sum depends on the order it is taken in (1e8 + 1 − 1e8 ≠ 1 − 1e8 + 1e8 in Float).
    static func values(rank v: Int, count n: Int) -> [Float] {
        (0..<n).map { j in
            let big: Float = (v + j) % 3 == 0 ? 1e8 : -1e8
            return v % 2 == 0 ? big : Float(v * 7 + j) * 0.37
        }
    }

    /// Every collective once (some twice), as rank `comm.rank` of `comm.size`;
    /// returns what the rank received, as bit patterns.
    static func script(_ comm: any Communicator) -> [UInt64] {
        let v = comm.rank, C = comm.size
        var out: [UInt64] = []
        var floats = values(rank: v, count: 37)
        floats.withUnsafeMutableBufferPointer { comm.allReduceSum($0) }
        out += floats.map { UInt64($0.bitPattern) }
        var doubles = (0..<5).map { Double(v) * 0.1 + Double($0) * 1e16 * (v % 2 == 0 ? 1 : -1) }
        doubles.withUnsafeMutableBufferPointer { comm.allReduceSum($0) }
        out += doubles.map(\.bitPattern)
        var maxima = (0..<3).map { Double((v * 5 + $0) % 7) }
        maxima.withUnsafeMutableBufferPointer { comm.allReduceMax($0) }
        out += maxima.map(\.bitPattern)
        var empty: [Float] = []
        empty.withUnsafeMutableBufferPointer { comm.allReduceSum($0) }
        // Counts: rank s sends (s + 2d) % 4 bytes to d (zeros included).
        let sendCounts = (0..<C).map { d in (v + 2 * d) % 4 }
        var receiveCounts = [Int](repeating: -1, count: C)
        sendCounts.withUnsafeBufferPointer { s in receiveCounts.withUnsafeMutableBufferPointer { comm.allToAll(send: s, receive: $0) } }
        out += receiveCounts.map { UInt64($0) }
        var sendOffsets = [Int](), at = 0
        for c in sendCounts { sendOffsets.append(at); at += c }
        let send = (0..<at).map { UInt8(truncatingIfNeeded: 31 * v + $0) }
        var receiveOffsets = [Int](), total = 0
        for c in receiveCounts { receiveOffsets.append(total); total += c }
        var receive = [UInt8](repeating: 0, count: total)
        send.withUnsafeBytes { s in
            receive.withUnsafeMutableBytes { r in
                comm.allToAllV(send: s, sendCounts: sendCounts.withUnsafeBufferPointer { $0 },
                               sendOffsets: sendOffsets.withUnsafeBufferPointer { $0 }, receive: r,
                               receiveCounts: receiveCounts.withUnsafeBufferPointer { $0 },
                               receiveOffsets: receiveOffsets.withUnsafeBufferPointer { $0 })
            }
        }
        out += receive.map { UInt64($0) }
        var root = [UInt8](repeating: UInt8(v), count: 9)
        root.withUnsafeMutableBytes { comm.broadcast($0, root: C - 1) }
        out += root.map { UInt64($0) }
        let mine = [UInt32](repeating: UInt32(1000 + v), count: 3)
        var all = [UInt32](repeating: 0, count: 3 * C)
        mine.withUnsafeBytes { m in all.withUnsafeMutableBytes { comm.allGather(m, into: $0) } }
        out += all.map { UInt64($0) }
        comm.barrier()
        // Once more, so that the staging buffers are reused.
        floats = values(rank: C - 1 - v, count: 1000)
        floats.withUnsafeMutableBufferPointer { comm.allReduceSum($0) }
        out += floats.map { UInt64($0.bitPattern) }
        // Sums over LogicalWorld.gatherWholeBytes are reduced in segments (a count no P divides).
        var large = values(rank: v, count: 20011)
        large.withUnsafeMutableBufferPointer { comm.allReduceSum($0) }
        out += large.map { UInt64($0.bitPattern) }
        var largeDoubles = (0..<9001).map { Double(values(rank: v, count: 9001)[$0]) * 1e-3 + Double(v) }
        largeDoubles.withUnsafeMutableBufferPointer { comm.allReduceSum($0) }
        out += largeDoubles.map(\.bitPattern)
        return out
    }

    /// What C ranks of their own receive, per rank.
    static func reference(size C: Int) -> [[UInt64]] {
        let results = Locked([[UInt64]](repeating: [], count: C))
        ThreadedWorld(size: C).run { comm in
            let r = script(comm)
            results.update { $0[comm.rank] = r }
        }
        return results.value
    }

    /// What C logical ranks hosted by P processes receive, per logical rank.
    static func logical(size C: Int, processes P: Int) -> [[UInt64]] {
        let results = Locked([[UInt64]](repeating: [], count: C))
        ThreadedWorld(size: P).run { process in
            let world = LogicalWorld(outer: process, size: C)
            let errors = world.run { comm in
                precondition(comm.size == C)
                let r = script(comm)
                results.update { $0[comm.rank] = r }
            }
            precondition(errors.allSatisfy { $0 == nil })
        }
        return results.value
    }

    func testBlocksCoverTheLogicalRanksOnce() {
        for C in 1...9 {
            for P in 1...C {
                let blocks = (0..<P).map { LogicalWorld.hosted(process: $0, processes: P, logical: C) }
                XCTAssertEqual(blocks.flatMap { Array($0) }, Array(0..<C), "C = \(C), P = \(P)")
                XCTAssertTrue(blocks.allSatisfy { !$0.isEmpty }, "C = \(C), P = \(P): a process hosts nothing")
                XCTAssertLessThanOrEqual(blocks.map(\.count).max()! - blocks.map(\.count).min()!, 1)
            }
        }
    }

    func testEveryCollectiveGivesTheBitsOfCRanksWhateverP() {
        for C in [4, 5] {
            let expected = Self.reference(size: C)
            XCTAssertTrue(expected.allSatisfy { !$0.isEmpty })
            for P in 1...C {
                let got = Self.logical(size: C, processes: P)
                for v in 0..<C where got[v] != expected[v] {
                    let first = zip(got[v], expected[v]).enumerated().first { $0.element.0 != $0.element.1 }
                    XCTFail("C = \(C), P = \(P): logical rank \(v) differs from rank \(v) of \(C) at value "
                            + "\(first.map { "\($0.offset)" } ?? "count") (\(got[v].count) against \(expected[v].count) values)")
                }
            }
        }
    }

    /// The values do depend on the order of the sum, so a world that grouped
    /// the sum by process (as MPI's reduction does) would fail the test above.
    func testLargeSumsTakeTheSegmentedPath() {
        XCTAssertGreaterThan(4 * 20011 * MemoryLayout<Float>.stride, LogicalWorld.gatherWholeBytes)
        XCTAssertLessThan(5 * 1000 * MemoryLayout<Float>.stride, LogicalWorld.gatherWholeBytes)
    }

    func testTheSumsInTheScriptDependOnTheirOrder() {
        let C = 4
        let rows = (0..<C).map { Self.values(rank: $0, count: 37) }
        let leftToRight = (0..<37).map { j in rows.dropFirst().reduce(rows[0][j]) { $0 + $1[j] } }
        let byProcess = (0..<37).map { j in (rows[0][j] + rows[1][j]) + (rows[2][j] + rows[3][j]) }
        XCTAssertNotEqual(leftToRight.map(\.bitPattern), byProcess.map(\.bitPattern))
    }
}
