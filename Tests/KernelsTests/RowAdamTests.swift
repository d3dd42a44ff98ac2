import Foundation
import Kernels
import Random
import TestSupport
import XCTest

final class RowAdamTests: XCTestCase {
    let hyper = AdamHyperparameters(lr: 1e-3)

    // MARK: - F(s, k)

    /// The O(1) table form against the defining sum, summed term by term in Double.
    func testMissedStepFactorMatchesDefinition() {
        let opt = RowAdam(hyper)
        let b1 = 0.9, b2 = 0.999, r = b1 / b2.squareRoot()
        func direct(_ s: Int, _ k: Int) -> Double {
            var f = 0.0
            for j in stride(from: k, through: 1, by: -1) {   // small terms first
                f += pow(r, Double(j)) * (1 - pow(b2, Double(s + j))).squareRoot() / (1 - pow(b1, Double(s + j)))
            }
            return f
        }
        for (s, k) in [(0, 1), (1, 1), (1, 2), (3, 10), (10, 300), (1000, 1), (1000, 5), (5000, 250),
                       (38_000, 20), (39_200, 3000), (100_000, 7), (2_000_000, 100_000)] {
            assertClose(opt.missedStepFactor(lastStep: s, missed: k), direct(s, k), rtol: 1e-12, atol: 1e-15,
                        "s=\(s) k=\(k)")
        }
        XCTAssertEqual(opt.missedStepFactor(lastStep: 7, missed: 0), 0)
        // Large s: the geometric limit r(1 − rᵏ)/(1 − r).
        assertClose(opt.missedStepFactor(lastStep: 1_000_000, missed: 40), r * (1 - pow(r, 40)) / (1 - r), rtol: 1e-13)
    }

    // MARK: - Edge cases

    func testCatchUpEdgeCases() {
        let opt = RowAdam(hyper)
        let values = Buffer([1, 2, 3]), m = Buffer([0.1, 0.2, 0]), v = Buffer([0.01, 0.04, 0])
        opt.catchUp(values: values.p, m: m.p, v: v.p, width: 3, lastStep: 5, to: 5)
        XCTAssertEqual(values.array, [1, 2, 3], "k = 0 moves nothing")
        opt.catchUp(values: values.p, m: m.p, v: v.p, width: 3, lastStep: 5, to: 9)
        XCTAssertLessThan(values[0], 1)
        XCTAssertLessThan(values[1], 2)
        XCTAssertEqual(values[2], 3, "an element with v = 0 does not move")
        assertClose(m.array, [Float(0.1 * pow(0.9, 4)), Float(0.2 * pow(0.9, 4)), 0], rtol: 1e-6)
        // A fresh row (zero moments) stays as it was.
        let fresh = Buffer([0.5, -0.5]), zeros = Buffer(zeros: 2), zeros2 = Buffer(zeros: 2)
        opt.catchUp(values: fresh.p, m: zeros.p, v: zeros2.p, width: 2, lastStep: 0, to: 100)
        XCTAssertEqual(fresh.array, [0.5, -0.5])
        // Lazy Adam never catches up.
        let lazy = RowAdam(kind: .lazyAdam, hyper), still = Buffer([1, 2]), lm = Buffer([0.1, 0.2]), lv = Buffer([0.01, 0.04])
        lazy.catchUp(values: still.p, m: lm.p, v: lv.p, width: 2, lastStep: 1, to: 50)
        XCTAssertEqual(still.array + lm.array + lv.array, [1, 2, 0.1, 0.2, 0.01, 0.04])
    }

    // MARK: - Catch-up Adam = dense Adam

    /// 50 rows × 8, 300 global steps. Each step touches a random subset of rows
    /// (rows 40–44 only during the first 30 steps, rows 45–49 never) with
    /// gradients N(0, σ_row²), σ_row log-uniform in [1e-2, 1]. Dense Adam runs
    /// over the whole table (zero gradient for untouched rows, ε = 1e-8, Float,
    /// as PyTorch). Catch-up Adam brings each touched row up to date when it is
    /// read, then steps it; at the end every row is caught up.
    ///
    /// Tolerance on values: |catch-up − dense| ≤ 1e-6 + 5e-6·|dense|.
    /// (1) ε neglected in the catch-up: each missed move differs relatively by
    /// ε/(√v̂ + ε) ≤ 1e-8/1e-3 here (|g| ≥ ~1e-3), i.e. ≤ 1e-5 of the moves of
    /// one gap (≤ lr·F ≤ 1e-2): ≤ 1e-7 absolute. It would dominate only for
    /// gradients near ε. (2) Float rounding, the larger term: dense Adam adds
    /// up to 300 updates to each value, each rounded by ≤ ulp/2 = 6e-8·|x|;
    /// as a random walk that is ~1e-6·|x| (worst case 1.8e-5·|x|); catch-up
    /// rounds once per gap. Moments: rtol 1e-4 (βᵏ by one pow against k
    /// Float multiplications).
    func testCatchUpEqualsDenseAdam() {
        let rows = 50, width = 8, steps = 300
        var rng = RandomStream(seed: 11, purpose: .test, 11)
        let sigma = (0..<rows).map { _ in Float(pow(10, rng.uniform(-2, 0))) }
        let start = Buffer(zeros: rows * width)
        var draws = RandomStream(seed: 3, purpose: .test, 3)
        ParameterInit.normal(standardDeviation: 1).fill(start.p, count: rows * width, stream: &draws)

        let dense = (values: Buffer(start.array), m: Buffer(zeros: rows * width), v: Buffer(zeros: rows * width))
        let catchUp = (values: Buffer(start.array), m: Buffer(zeros: rows * width), v: Buffer(zeros: rows * width))
        let lazy = (values: Buffer(start.array), m: Buffer(zeros: rows * width), v: Buffer(zeros: rows * width))
        var lastStep = [Int](repeating: 0, count: rows)
        let catchUpAdam = RowAdam(hyper), lazyAdam = RowAdam(kind: .lazyAdam, hyper)
        let grads = Buffer(zeros: rows * width)

        var worstRead: Float = 0, reads = 0, longestGap = 0
        func row(_ b: Buffer, _ r: Int) -> UnsafeMutablePointer<Float> { b.p + r * width }
        for t in 1...steps {
            grads.fill([Float](repeating: 0, count: rows * width))
            var touched: [Int] = []
            for r in 0..<rows where r < 45 && (r < 40 || t <= 30) && rng.uniform() < 0.15 {
                touched.append(r)
                for i in 0..<width { grads[r * width + i] = sigma[r] * Float(rng.normal()) }
            }
            for r in touched {
                // Read at step t: bring the row to step t − 1 and compare with dense Adam after t − 1.
                longestGap = max(longestGap, t - 1 - lastStep[r])
                catchUpAdam.catchUp(values: row(catchUp.values, r), m: row(catchUp.m, r), v: row(catchUp.v, r),
                                    width: width, lastStep: lastStep[r], to: t - 1)
                for i in 0..<width {
                    let d = dense.values[r * width + i]
                    worstRead = max(worstRead, abs(catchUp.values[r * width + i] - d) / (1e-6 + 5e-6 * abs(d)))
                }
                reads += 1
                catchUpAdam.step(values: row(catchUp.values, r), m: row(catchUp.m, r), v: row(catchUp.v, r),
                                 grads: row(grads, r), width: width, step: t)
                lastStep[r] = t
                lazyAdam.step(values: row(lazy.values, r), m: row(lazy.m, r), v: row(lazy.v, r),
                              grads: row(grads, r), width: width, step: t)
            }
            adamUpdate(values: dense.values.p, m: dense.m.p, v: dense.v.p, grads: grads.p, count: rows * width,
                       hyper, step: t)
        }
        for r in 0..<rows {
            catchUpAdam.catchUp(values: row(catchUp.values, r), m: row(catchUp.m, r), v: row(catchUp.v, r),
                                width: width, lastStep: lastStep[r], to: steps)
        }
        XCTAssertGreaterThan(reads, 1000)
        XCTAssertGreaterThan(longestGap, 30)
        XCTAssertLessThanOrEqual(worstRead, 1, "largest difference of a read row, in units of the tolerance")
        assertClose(catchUp.values.array, dense.values.array, rtol: 5e-6, atol: 1e-6, "values at the end")
        assertClose(catchUp.m.array, dense.m.array, rtol: 1e-4, atol: 1e-12, "m at the end")
        assertClose(catchUp.v.array, dense.v.array, rtol: 1e-4, atol: 1e-15, "v at the end")
        XCTAssertEqual(Array(catchUp.values.array[(45 * width)...]), Array(start.array[(45 * width)...]),
                       "never-touched rows keep their initial values")

        // Sanity: plain lazy Adam is far from dense Adam (rows drift on momentum when untouched).
        let lazyGap = zip(lazy.values.array, dense.values.array).map { abs($0 - $1) }.max()!
        XCTAssertGreaterThan(lazyGap, 1e-3, "lazy Adam should differ from dense Adam")
        print("catch-up vs dense: worst read \(worstRead) of tolerance, end abs \(zip(catchUp.values.array, dense.values.array).map { abs($0 - $1) }.max()!); lazy vs dense \(lazyGap); reads \(reads), longest gap \(longestGap)")
    }
}
