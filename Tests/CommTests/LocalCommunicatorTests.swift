// The single-process communicator: every collective is the identity or a copy.
import XCTest
import Comm

final class LocalCommunicatorTests: XCTestCase {
    let comm = LocalCommunicator()

    func testIsRankZeroOfOne() {
        XCTAssertEqual(comm.rank, 0)
        XCTAssertEqual(comm.size, 1)
        XCTAssertTrue(comm.isRoot)
    }

    func testAllReducesLeaveValuesAsTheyAre() {
        var floats: [Float] = [1.5, -2, 0, .greatestFiniteMagnitude]
        floats.withUnsafeMutableBufferPointer { comm.allReduceSum($0) }
        XCTAssertEqual(floats, [1.5, -2, 0, .greatestFiniteMagnitude])

        var doubles: [Double] = [3.25, -7, 1e300]
        doubles.withUnsafeMutableBufferPointer { comm.allReduceSum($0) }
        XCTAssertEqual(doubles, [3.25, -7, 1e300])
        doubles.withUnsafeMutableBufferPointer { comm.allReduceMax($0) }
        XCTAssertEqual(doubles, [3.25, -7, 1e300])

        var empty: [Double] = []
        empty.withUnsafeMutableBufferPointer { comm.allReduceSum($0) }
        XCTAssertEqual(empty, [])
    }

    func testAllToAllCopiesTheCount() {
        let send = [42]
        var receive = [-1]
        send.withUnsafeBufferPointer { s in
            receive.withUnsafeMutableBufferPointer { comm.allToAll(send: s, receive: $0) }
        }
        XCTAssertEqual(receive, [42])
    }

    func testAllToAllVCopiesBetweenOffsetsAndLeavesTheRest() {
        let send: [UInt8] = [9, 9, 9, 1, 2, 3, 4, 9]
        var receive = [UInt8](repeating: 0xEE, count: 10)
        exchange(send, count: 4, sendOffset: 3, into: &receive, receiveOffset: 5)
        XCTAssertEqual(receive, [0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 1, 2, 3, 4, 0xEE])
    }

    func testAllToAllVOfNothingTouchesNothing() {
        var receive = [UInt8](repeating: 0xEE, count: 3)
        exchange([7, 7], count: 0, sendOffset: 2, into: &receive, receiveOffset: 3)
        XCTAssertEqual(receive, [0xEE, 0xEE, 0xEE])

        var none: [UInt8] = []
        exchange([], count: 0, sendOffset: 0, into: &none, receiveOffset: 0)
        XCTAssertEqual(none, [])
    }

    func testBroadcastFromRootZeroKeepsTheBuffer() {
        var bytes: [UInt8] = [1, 2, 3]
        bytes.withUnsafeMutableBytes { comm.broadcast($0, root: 0) }
        XCTAssertEqual(bytes, [1, 2, 3])
    }

    func testAllGatherCopiesTheOneContribution() {
        let mine: [Double] = [1.5, -2.5]
        var all: [Double] = [0, 0]
        mine.withUnsafeBytes { s in all.withUnsafeMutableBytes { comm.allGather(s, into: $0) } }
        XCTAssertEqual(all, [1.5, -2.5])

        let nothing: [UInt8] = []
        var none: [UInt8] = []
        nothing.withUnsafeBytes { s in none.withUnsafeMutableBytes { comm.allGather(s, into: $0) } }
        XCTAssertEqual(none, [])
    }

    func testConveniences() {
        XCTAssertEqual(comm.sum(2.5), 2.5)
        XCTAssertEqual(comm.max(-4), -4)
        XCTAssertEqual(comm.allGather([1, 2, 3]), [[1, 2, 3]])
        comm.barrier()
    }

    /// One-rank all-to-all-v of `count` bytes from `send[sendOffset...]` to `receive[receiveOffset...]`.
    private func exchange(_ send: [UInt8], count: Int, sendOffset: Int, into receive: inout [UInt8], receiveOffset: Int) {
        let counts = [count], sendOffsets = [sendOffset], receiveOffsets = [receiveOffset]
        send.withUnsafeBytes { s in
            receive.withUnsafeMutableBytes { r in
                counts.withUnsafeBufferPointer { c in
                    sendOffsets.withUnsafeBufferPointer { so in
                        receiveOffsets.withUnsafeBufferPointer { ro in
                            comm.allToAllV(send: s, sendCounts: c, sendOffsets: so,
                                           receive: r, receiveCounts: c, receiveOffsets: ro)
                        }
                    }
                }
            }
        }
    }
}
