// The typed small collectives (Communicator+Typed.swift) on three threaded
// ranks and on one local rank: gathers of a struct, an array and a string,
// `agree`, and one all-reduce of named segments.
import Comm
import Foundation
import TestSupport
import XCTest

final class TypedCollectivesTests: XCTestCase {
    struct Figures: BitwiseCopyable, Equatable { var a: Int; var b: Double; var flag: Bool }

    func testGathersGiveEveryRanksValueInRankOrder() {
        let P = 3
        let seen = Locked([Int: ([Figures], [[Int16]], [String])]())
        ThreadedWorld(size: P).run { comm in
            let r = comm.rank
            let figures = comm.allGather(Figures(a: 10 * r, b: Double(r) + 0.5, flag: r == 1))
            let arrays = comm.allGather([Int16(r), Int16(-r), Int16(7)])
            // Rank 2's name is cut at 5 bytes, inside "é" (2 bytes): the cut keeps whole characters.
            let names = comm.allGather(string: ["zero", "", "abcdéf"][r], maxBytes: 5)
            seen.update { $0[r] = (figures, arrays, names) }
        }
        for r in 0..<P {
            let (figures, arrays, names) = seen.value[r]!
            XCTAssertEqual(figures, (0..<P).map { Figures(a: 10 * $0, b: Double($0) + 0.5, flag: $0 == 1) }, "rank \(r)")
            XCTAssertEqual(arrays, (0..<P).map { [Int16($0), Int16(-$0), 7] }, "rank \(r)")
            XCTAssertEqual(names, ["zero", "", "abcd"], "rank \(r)")
        }
        XCTAssertEqual(LocalCommunicator().allGather(string: "hostname", maxBytes: 255), ["hostname"])
        XCTAssertEqual(LocalCommunicator().allGather([Int8]()), [[]])
    }

    struct Planted: Error, CustomStringConvertible { let description: String }

    func testAgreeThrowsTheLowestFailingRanksErrorOnEveryRank() {
        let P = 3
        let outcomes = Locked([Int: [String]]())
        ThreadedWorld(size: P).run { comm in
            var mine: [String] = []
            for failing in [Set<Int>(), [2], [1, 2]] {
                do {
                    try comm.agree { if failing.contains(comm.rank) { throw Planted(description: "disk full on \(comm.rank)") } }
                    mine.append("passed")
                } catch let failure as AgreedFailure {
                    mine.append("\(failure)")
                } catch {
                    mine.append("other error \(error)")
                }
            }
            outcomes.update { $0[comm.rank] = mine }
        }
        for r in 0..<P {
            XCTAssertEqual(outcomes.value[r], ["passed", "rank 2: disk full on 2", "rank 1: disk full on 1"], "rank \(r)")
        }
        // One rank: the message alone.
        XCTAssertThrowsError(try LocalCommunicator().agree { throw Planted(description: "no room") }) {
            XCTAssertEqual("\($0)", "no room")
        }
    }

    func testFusedSumAddsEverySegmentInOneAllReduce() {
        let P = 3
        let sums = Locked([Int: ([Double], [Double], Int)]())
        ThreadedWorld(size: P).run { inner in
            let comm = CountingCommunicator(inner)
            let fused = FusedSum()
            let flags = fused.segment(2), slots = fused.segment(P)
            for round in 0..<2 {
                fused.clear()
                fused[flags][0] = Double(comm.rank + round)
                fused[flags][1] = 1
                fused[slots][comm.rank] = Double(100 * (comm.rank + 1))
                fused.allReduce(comm)
            }
            sums.update { $0[inner.rank] = (Array(fused[flags]), Array(fused[slots]), comm.calls[CountingCommunicator.Kind.allReduce.rawValue]) }
        }
        for r in 0..<P {
            let (flags, slots, calls) = sums.value[r]!
            XCTAssertEqual(flags, [0 + 1 + 2 + 3, 3], "rank \(r): the second round's sums, the first cleared")
            XCTAssertEqual(slots, [100, 200, 300], "rank \(r): each rank's slot")
            XCTAssertEqual(calls, 2, "one all-reduce per round")
        }
    }
}
