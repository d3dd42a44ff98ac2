// Helpers of the kernel tests: owned float buffers, random fills, the
// central-difference gradient check and a simulated multi-rank communicator.
import Comm
import Kernels
import Random
import TestSupport
import XCTest

// MARK: - Buffers

/// A heap buffer that kernels can write through a raw pointer.
final class Buffer {
    let p: UnsafeMutablePointer<Float>
    let count: Int

    init(_ values: [Float]) {
        count = values.count
        p = .allocate(capacity: Swift.max(count, 1))
        p.initialize(repeating: 0, count: Swift.max(count, 1))
        values.withUnsafeBufferPointer { if count > 0 { p.update(from: $0.baseAddress!, count: count) } }
    }

    convenience init(zeros n: Int) { self.init([Float](repeating: 0, count: n)) }

    deinit { p.deallocate() }

    var array: [Float] { Array(UnsafeBufferPointer(start: p, count: count)) }
    func fill(_ values: [Float]) {
        precondition(values.count == count)
        for i in 0..<count { p[i] = values[i] }
    }
    subscript(i: Int) -> Float {
        get { p[i] }
        set { p[i] = newValue }
    }
}

func randomNormal(_ n: Int, _ rng: inout RandomStream, scale: Float = 1, shift: Float = 0) -> [Float] {
    (0..<n).map { _ in shift + scale * Float(rng.normal()) }
}

func randomUniform(_ n: Int, _ rng: inout RandomStream, _ low: Float, _ high: Float) -> [Float] {
    (0..<n).map { _ in Float(rng.uniform(Double(low), Double(high))) }
}

/// Σ w·out in Double: the scalar objective of the gradient checks.
func weightedSum(_ w: Buffer, _ out: Buffer) -> Double {
    var s = 0.0
    for i in 0..<out.count { s += Double(w[i]) * Double(out[i]) }
    return s
}

// MARK: - Gradient check

/// Compares `analytic` (∂objective/∂x) with central differences of
/// `objective`, computed by perturbing `x` in place (Float forward, Double
/// objective, step `eps`). Every element is checked when there are at most
/// 100, otherwise 64 distinct random ones. Default tolerance atol 1e-4,
/// rtol 1e-3: with step 1e-2 the truncation error of a smooth kernel is
/// ~1e-5 relative and the Float rounding of the objective, divided by 2·step,
/// ~1e-5 absolute; observed worst over all checks: 0.16 of the tolerance. Passes when
/// |analytic − numeric| ≤ atol + rtol·max(|analytic|, |numeric|).
/// Returns the largest |analytic − numeric| / (atol + rtol·max(…)) seen.
@discardableResult
func checkGradient(_ name: String, _ x: Buffer, analytic: [Float], eps: Float = 1e-2,
                   rtol: Float = 1e-3, atol: Float = 1e-4, rng: inout RandomStream,
                   file: StaticString = #filePath, line: UInt = #line,
                   objective: () -> Double) -> Float {
    var indices = Array(0..<x.count)
    if x.count > 100 {
        for i in 0..<64 { indices.swapAt(i, i + rng.below(x.count - i)) }
        indices = Array(indices.prefix(64))
    }
    return TestSupport.checkGradient(name, at: x.p, count: x.count, analytic: analytic, indices: indices,
                                     eps: eps, rtol: rtol, atol: atol, file: file, line: line, objective: objective)
}

// MARK: - Simulated ranks

/// P ranks run sequentially in one process, in lockstep over collectives.
/// `run` executes the body for every rank repeatedly: pass n replays the
/// element-wise totals of all-reduces 0..<n (what MPI_Allreduce would give)
/// and records every rank's contribution to all-reduce n (later calls see
/// their own input, and that pass's results are discarded). When a pass makes
/// no new call, it was a complete replay and its outputs are final. The body
/// must be deterministic and must reset what it adds into (gradients).
final class SimulatedRanks: Communicator {
    let size: Int
    private(set) var rank = 0
    private var totals: [[Double]] = []
    private var pending: [Double]? = nil
    private var calls = 0

    init(size: Int) { self.size = size }

    func run(_ body: (_ rank: Int) -> Void, file: StaticString = #filePath, line: UInt = #line) {
        totals = []
        while true {
            pending = nil
            var callsByRank: [Int] = []
            for r in 0..<size {
                rank = r; calls = 0
                body(r)
                callsByRank.append(calls)
            }
            guard let newTotal = pending else {
                XCTAssert(callsByRank.allSatisfy { $0 == totals.count },
                          "ranks made different numbers of collective calls: \(callsByRank)", file: file, line: line)
                return
            }
            totals.append(newTotal)
        }
    }

    /// Number of all-reduce calls each rank made in the last `run`.
    var callsPerRank: Int { totals.count }

    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {
        defer { calls += 1 }
        if calls < totals.count {
            precondition(totals[calls].count == buffer.count, "replayed all-reduce of another size")
            for i in 0..<buffer.count { buffer[i] = totals[calls][i] }
        } else if calls == totals.count {
            if pending == nil { pending = [Double](repeating: 0, count: buffer.count) }
            precondition(pending!.count == buffer.count,
                         "rank \(rank) all-reduces \(buffer.count) values where rank 0 gave \(pending!.count)")
            for i in 0..<buffer.count { pending![i] += buffer[i] }
        }
    }

    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) { fatalError("not used by the kernels") }
    func allReduceMax(_ buffer: UnsafeMutableBufferPointer<Double>) { fatalError("not used by the kernels") }
    func allToAll(send: UnsafeBufferPointer<Int>, receive: UnsafeMutableBufferPointer<Int>) { fatalError("not used") }
    func allToAllV(send: UnsafeRawBufferPointer,
                   sendCounts: UnsafeBufferPointer<Int>, sendOffsets: UnsafeBufferPointer<Int>,
                   receive: UnsafeMutableRawBufferPointer,
                   receiveCounts: UnsafeBufferPointer<Int>, receiveOffsets: UnsafeBufferPointer<Int>) { fatalError("not used") }
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) { fatalError("not used") }
    func allGather(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer) { fatalError("not used") }
    func barrier() {}
    func abort(_ message: String, code: Int32) -> Never { fatalError(message) }
}
