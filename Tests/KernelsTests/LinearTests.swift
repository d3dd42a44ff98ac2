import Kernels
import Random
import TestSupport
import XCTest

final class LinearTests: XCTestCase {
    // MARK: - Forward against a naive loop

    func testForwardMatchesNaiveProduct() {
        var rng = RandomStream(seed: 1, purpose: .test, 1)
        let B = 9, C = 13, OC = 7
        let inp = Buffer(randomNormal(B * C, &rng)), w = Buffer(randomNormal(OC * C, &rng))
        let bias = Buffer(randomNormal(OC, &rng))
        for useBias in [true, false] {
            let out = Buffer(zeros: B * OC)
            linearForward(out: out.p, inp: inp.p, weight: w.p, bias: useBias ? UnsafePointer(bias.p) : nil,
                          batch: B, inFeatures: C, outFeatures: OC)
            var expected = [Float]()
            for b in 0..<B {
                for o in 0..<OC {
                    var s = useBias ? Double(bias[o]) : 0
                    for c in 0..<C { s += Double(inp[b * C + c]) * Double(w[o * C + c]) }
                    expected.append(Float(s))
                }
            }
            assertClose(out.array, expected, rtol: 1e-5, atol: 1e-5, "bias \(useBias)")
        }
    }

    func testEmptyBatchIsNoOp() {
        let out = Buffer([42]), inp = Buffer([1]), w = Buffer([1, 2]), d = Buffer([7, 7])
        linearForward(out: out.p, inp: inp.p, weight: w.p, bias: nil, batch: 0, inFeatures: 1, outFeatures: 2)
        linearBackward(dinp: nil, dweight: d.p, dbias: nil, dout: out.p, inp: inp.p, weight: w.p,
                       batch: 0, inFeatures: 1, outFeatures: 2)
        XCTAssertEqual(out.array, [42])
        XCTAssertEqual(d.array, [7, 7])
    }

    // MARK: - Gradient check

    /// Objective Σ w·out; gradients are pre-filled with random values to check
    /// that backward ADDS. Tolerance atol 1e-4, rtol 1e-3 (Float forward,
    /// step 1e-2; Linear is exactly linear in each tensor, so the numeric
    /// gradient's error is rounding only, ~1e-5).
    func testGradients() {
        var rng = RandomStream(seed: 2, purpose: .test, 2)
        let B = 16, C = 24, OC = 10
        let inp = Buffer(randomNormal(B * C, &rng)), w = Buffer(randomNormal(OC * C, &rng, scale: 0.3))
        let bias = Buffer(randomNormal(OC, &rng)), weights = Buffer(randomUniform(B * OC, &rng, -1, 1))
        let out = Buffer(zeros: B * OC)
        let objective = { () -> Double in
            linearForward(out: out.p, inp: inp.p, weight: w.p, bias: bias.p, batch: B, inFeatures: C, outFeatures: OC)
            return weightedSum(weights, out)
        }
        let start = (randomNormal(B * C, &rng), randomNormal(OC * C, &rng), randomNormal(OC, &rng))
        let dinp = Buffer(start.0), dw = Buffer(start.1), db = Buffer(start.2)
        _ = objective()
        linearBackward(dinp: dinp.p, dweight: dw.p, dbias: db.p, dout: weights.p, inp: inp.p, weight: w.p,
                       batch: B, inFeatures: C, outFeatures: OC)
        let added = { (after: Buffer, before: [Float]) in zip(after.array, before).map { $0 - $1 } }
        let worst = [
            checkGradient("dinp", inp, analytic: added(dinp, start.0), rng: &rng, objective: objective),
            checkGradient("dweight", w, analytic: added(dw, start.1), rng: &rng, objective: objective),
            checkGradient("dbias", bias, analytic: added(db, start.2), rng: &rng, objective: objective),
        ]
        XCTAssertLessThanOrEqual(worst.max()!, 1)
    }
}
