// `esapn bench-comm`'s measurements: each collective a batch makes, at
// message sizes from 8 bytes up by 4×, timed as the slowest rank's mean over
// repeated calls, median of 5 rounds (collective: every rank calls it).
import Comm
import Foundation

public enum CommBenchmark {
    /// The sizes measured and the points, all-reduce then all-to-all-v.
    public static func measure(_ comm: any Communicator, maxBytes: Int, secondsPerSize: Double)
        -> (sizes: [Int], points: [CommCalibration.Point]) {
        let P = comm.size
        var sizes: [Int] = []
        var n = 8
        while n <= maxBytes { sizes.append(n); n *= 4 }

        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(maxBytes, 8) * P, alignment: 64)
        let receive = UnsafeMutableRawBufferPointer.allocate(byteCount: max(maxBytes, 8) * P, alignment: 64)
        defer { buffer.deallocate(); receive.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 1)
        receive.initializeMemory(as: UInt8.self, repeating: 0)
        var counts = [Int](repeating: 0, count: P), offsets = [Int](repeating: 0, count: P)

        func allReduce(_ bytes: Int) {
            let floats = buffer.bindMemory(to: Float.self)
            comm.allReduceSum(UnsafeMutableBufferPointer(rebasing: floats[0..<(bytes / 4)]))
            // Keep the values finite however many times they are summed.
            floats[0] = 1
        }
        func allToAllV(_ bytes: Int) {
            for p in 0..<P {
                counts[p] = p == comm.rank ? 0 : bytes
                offsets[p] = p * bytes
            }
            counts.withUnsafeBufferPointer { c in offsets.withUnsafeBufferPointer { o in
                comm.allToAllV(send: UnsafeRawBufferPointer(buffer), sendCounts: c, sendOffsets: o,
                               receive: receive, receiveCounts: c, receiveOffsets: o)
            } }
        }

        var points: [CommCalibration.Point] = []
        for (kind, call) in [(CommCalibration.Kind.allReduce, allReduce), (.allToAllV, allToAllV)] {
            for bytes in sizes where kind != .allReduce || bytes % 4 == 0 {
                let seconds = measure(comm, secondsPerSize: secondsPerSize) { call(bytes) }
                points.append(.init(kind: kind, bytes: bytes, seconds: seconds))
            }
        }
        return (sizes, points)
    }

    /// The slowest rank's mean seconds per call of `body`, median of 5 rounds.
    /// Every rank makes the same number of calls (the count comes from a max
    /// all-reduce), so the collectives always match.
    static func measure(_ comm: any Communicator, secondsPerSize: Double, _ body: () -> Void) -> Double {
        func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }
        body()  // warm up (connections, pages)
        comm.barrier()
        var start = now()
        for _ in 0..<3 { body() }
        let perCall = comm.max((now() - start) / 3)
        let repetitions = max(2, min(100_000, Int(secondsPerSize / 5 / max(perCall, 1e-7))))
        var rounds: [Double] = []
        for _ in 0..<5 {
            comm.barrier()
            start = now()
            for _ in 0..<repetitions { body() }
            rounds.append(comm.max((now() - start) / Double(repetitions)))
        }
        return rounds.sorted()[2]
    }
}
