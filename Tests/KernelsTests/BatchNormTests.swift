import Comm
import Kernels
import Random
import TestSupport
import XCTest

final class BatchNormTests: XCTestCase {
    let B = 10, C = 6

    struct Case {
        let inp: Buffer, gamma: Buffer, beta: Buffer, dout: Buffer
    }

    func makeCase(_ seed: UInt64) -> Case {
        var rng = RandomStream(seed: seed, purpose: .test, 6)
        // Per-channel offsets and scales so that statistics matter.
        let inp = (0..<B * C).map { i in Float(i % C) - 2 + Float(1 + i % 3) * Float(rng.normal()) }
        return Case(inp: Buffer(inp), gamma: Buffer(randomUniform(C, &rng, 0.5, 1.5)),
                    beta: Buffer(randomNormal(C, &rng)), dout: Buffer(randomUniform(B * C, &rng, -1, 1)))
    }

    // MARK: - Forward against the definition

    func testForwardMatchesDefinition() {
        let t = makeCase(7), out = Buffer(zeros: B * C), cache = BatchNormCache(channels: C)
        batchNormForward(out: out.p, cache: cache, inp: t.inp.p, gamma: t.gamma.p, beta: t.beta.p,
                         batch: B, channels: C, comm: LocalCommunicator())
        var expected = [Float](repeating: 0, count: B * C)
        for c in 0..<C {
            let xs = (0..<B).map { Double(t.inp[$0 * C + c]) }
            let mean = xs.reduce(0, +) / Double(B)
            let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(B)   // biased
            for b in 0..<B {
                expected[b * C + c] = Float(Double(t.gamma[c]) * (xs[b] - mean) / (variance + 1e-5).squareRoot()
                                            + Double(t.beta[c]))
            }
        }
        assertClose(out.array, expected, rtol: 1e-5, atol: 1e-5)
        XCTAssertEqual(cache.globalCount, Double(B))
    }

    // MARK: - Gradient check

    /// Objective Σ w·out. Tolerance atol 1e-4, rtol 1e-3: step 1e-2 on inputs
    /// of spread ~1 gives a truncation error ~1e-5 relative, Float rounding
    /// of the objective ~1e-5 absolute (observed worst: <0.01 of the tolerance).
    func testGradients() {
        var rng = RandomStream(seed: 8, purpose: .test, 8)
        let t = makeCase(8), out = Buffer(zeros: B * C), cache = BatchNormCache(channels: C)
        let comm = LocalCommunicator()
        let objective = { () -> Double in
            batchNormForward(out: out.p, cache: cache, inp: t.inp.p, gamma: t.gamma.p, beta: t.beta.p,
                             batch: self.B, channels: self.C, comm: comm)
            return weightedSum(t.dout, out)
        }
        _ = objective()
        let start = (randomNormal(B * C, &rng), randomNormal(C, &rng), randomNormal(C, &rng))
        let dinp = Buffer(start.0), dgamma = Buffer(start.1), dbeta = Buffer(start.2)
        batchNormBackward(dinp: dinp.p, dgamma: dgamma.p, dbeta: dbeta.p, dout: t.dout.p, inp: t.inp.p,
                          gamma: t.gamma.p, cache: cache, batch: B, channels: C, comm: comm)
        let added = { (after: Buffer, before: [Float]) in zip(after.array, before).map { $0 - $1 } }
        checkGradient("BN dinp", t.inp, analytic: added(dinp, start.0), rng: &rng, objective: objective)
        checkGradient("BN dgamma", t.gamma, analytic: added(dgamma, start.1), rng: &rng, objective: objective)
        checkGradient("BN dbeta", t.beta, analytic: added(dbeta, start.2), rng: &rng, objective: objective)
    }

    // MARK: - SyncBN: P ranks holding slices = one rank holding the batch

    /// Cuts the batch into P contiguous slices (sizes differ by at most 1; with
    /// P > B some are empty), runs forward and backward on every simulated rank
    /// and compares: outputs and dinp row by row, dγ and dβ after summing the
    /// ranks' local contributions (what the trainer's all-reduce does).
    /// Tolerance rtol 1e-5, atol 1e-6: only the order of the Double sums differs.
    func testSlicesEqualWholeBatch() {
        let t = makeCase(9)
        let whole = runRanks(t, ranks: 1)
        for P in [2, 3, 4, 7, 12] {
            let sliced = runRanks(t, ranks: P)
            assertClose(sliced.out, whole.out, rtol: 1e-5, atol: 1e-6, "out, P=\(P)")
            assertClose(sliced.dinp, whole.dinp, rtol: 1e-5, atol: 1e-6, "dinp, P=\(P)")
            assertClose(sliced.dgamma, whole.dgamma, rtol: 1e-5, atol: 1e-6, "dgamma, P=\(P)")
            assertClose(sliced.dbeta, whole.dbeta, rtol: 1e-5, atol: 1e-6, "dbeta, P=\(P)")
            XCTAssertEqual(sliced.collectiveCalls, 2, "one all-reduce in forward, one in backward, P=\(P)")
        }
        // The comparison can fail: a slice normalised with its own statistics differs.
        let local = runRanks(t, ranks: 2, synchronised: false)
        XCTAssertGreaterThan(zip(local.out, whole.out).map { abs($0 - $1) }.max()!, 1e-2)
    }

    struct RanksResult { var out, dinp, dgamma, dbeta: [Float]; var collectiveCalls: Int }

    func runRanks(_ t: Case, ranks P: Int, synchronised: Bool = true) -> RanksResult {
        let out = Buffer(zeros: B * C), dinp = Buffer(zeros: B * C)
        let dgammas = (0..<P).map { _ in Buffer(zeros: C) }, dbetas = (0..<P).map { _ in Buffer(zeros: C) }
        let caches = (0..<P).map { _ in BatchNormCache(channels: C) }
        let comm = SimulatedRanks(size: P)
        comm.run { r in
            let start = r * B / P, rows = (r + 1) * B / P - start
            let offset = start * C
            let c: any Communicator = synchronised ? comm : LocalCommunicator()
            (dinp.p + offset).update(repeating: 0, count: rows * C)
            dgammas[r].fill([Float](repeating: 0, count: C))
            dbetas[r].fill([Float](repeating: 0, count: C))
            batchNormForward(out: out.p + offset, cache: caches[r], inp: t.inp.p + offset, gamma: t.gamma.p,
                             beta: t.beta.p, batch: rows, channels: C, comm: c)
            batchNormBackward(dinp: dinp.p + offset, dgamma: dgammas[r].p, dbeta: dbetas[r].p,
                              dout: t.dout.p + offset, inp: t.inp.p + offset, gamma: t.gamma.p, cache: caches[r],
                              batch: rows, channels: C, comm: c)
        }
        let sum = { (bs: [Buffer]) in bs.map(\.array).reduce([Float](repeating: 0, count: self.C)) { zip($0, $1).map(+) } }
        return RanksResult(out: out.array, dinp: dinp.array, dgamma: sum(dgammas), dbeta: sum(dbetas),
                           collectiveCalls: comm.callsPerRank)
    }
}
