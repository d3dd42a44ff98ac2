import Foundation
import Kernels
import Random
import TestSupport
import XCTest

final class ActivationLossTests: XCTestCase {
    // MARK: - tanh

    func testTanhForwardAndGradient() {
        var rng = RandomStream(seed: 3, purpose: .test, 3)
        let n = 60
        let inp = Buffer(randomNormal(n, &rng, scale: 1.5)), out = Buffer(zeros: n)
        let weights = Buffer(randomUniform(n, &rng, -1, 1))
        let objective = { () -> Double in
            tanhForward(out: out.p, inp: inp.p, count: n)
            return weightedSum(weights, out)
        }
        _ = objective()
        assertClose(out.array, inp.array.map { Float(Foundation.tanh(Double($0))) }, rtol: 1e-6, atol: 1e-7)
        let before = randomNormal(n, &rng)
        let dinp = Buffer(before)
        tanhBackward(dinp: dinp.p, dout: weights.p, out: out.p, count: n)
        // Default tolerance (atol 1e-4, rtol 1e-3): step 1e-2 leaves a truncation error ~1e-5.
        checkGradient("tanh dinp", inp, analytic: zip(dinp.array, before).map { $0 - $1 }, rng: &rng,
                      objective: objective)
    }

    // MARK: - Sigmoid + MSE

    func testSigmoidMSEValues() {
        let logits = Buffer([0, 0, 2, -100, 100]), labels = Buffer([1, 0, 0, 0, 0])
        let losses = Buffer(zeros: 5), probs = Buffer(zeros: 5)
        var correct = [Bool](repeating: false, count: 5)
        correct.withUnsafeMutableBufferPointer {
            sigmoidMSEForward(losses: losses.p, correct: $0.baseAddress, probs: probs.p, logits: logits.p,
                              labels: labels.p, batch: 5)
        }
        let p2 = Float(1 / (1 + Foundation.exp(-2.0)))
        assertClose(probs.array, [0.5, 0.5, p2, 0, 1], rtol: 1e-6, atol: 1e-30)
        assertClose(losses.array, [0.25, 0.25, p2 * p2, 0, 1], rtol: 1e-6, atol: 1e-30)
        // p ≥ 0.5 predicts 1: right for (0, y=1), wrong for (0, y=0) and (2, y=0).
        XCTAssertEqual(correct, [true, false, false, true, false])
    }

    /// Objective scale·Σ w_k loss_k; backward with the same weights and scale.
    func testSigmoidMSEGradient() {
        var rng = RandomStream(seed: 4, purpose: .test, 4)
        let B = 40
        let logits = Buffer(randomNormal(B, &rng, scale: 2)), labels = Buffer((0..<B).map { _ in Float(rng.below(2)) })
        let w = Buffer(randomUniform(B, &rng, 0.2, 2)), losses = Buffer(zeros: B), probs = Buffer(zeros: B)
        let scale: Float = 0.7
        let objective = { () -> Double in
            sigmoidMSEForward(losses: losses.p, correct: nil, probs: probs.p, logits: logits.p, labels: labels.p, batch: B)
            return Double(scale) * weightedSum(w, losses)
        }
        _ = objective()
        let dz = Buffer(zeros: B)
        sigmoidMSEBackward(dlogits: dz.p, probs: probs.p, labels: labels.p, weights: w.p, scale: scale, batch: B)
        checkGradient("sigmoidMSE dlogits", logits, analytic: dz.array, rng: &rng, objective: objective)

        // No weights = weights of 1.
        let ones = Buffer([Float](repeating: 1, count: B)), a = Buffer(zeros: B), b = Buffer(zeros: B)
        sigmoidMSEBackward(dlogits: a.p, probs: probs.p, labels: labels.p, weights: nil, scale: 1, batch: B)
        sigmoidMSEBackward(dlogits: b.p, probs: probs.p, labels: labels.p, weights: ones.p, scale: 1, batch: B)
        XCTAssertEqual(a.array, b.array)
    }

    // MARK: - Softmax + cross-entropy

    func testSoftmaxCrossEntropyValuesAreStable() {
        let C = 3
        let logits = Buffer([1000, 0, -1000,   1000, 0, -1000,   1, 1, 0,   0, 0, 0])
        let labels: [Int32] = [0, 1, 1, 2]
        let losses = Buffer(zeros: 4), probs = Buffer(zeros: 12)
        var correct = [Bool](repeating: false, count: 4)
        labels.withUnsafeBufferPointer { l in
            correct.withUnsafeMutableBufferPointer {
                softmaxCrossEntropyForward(losses: losses.p, correct: $0.baseAddress, probs: probs.p, logits: logits.p,
                                           labels: l.baseAddress!, batch: 4, classes: C)
            }
        }
        let lse = Float(Foundation.log(2 + Foundation.exp(-1.0)))   // logsumexp(1, 1, 0) − 1
        assertClose(losses.array, [0, 1000, lse, Float(Foundation.log(3.0))], rtol: 1e-6, atol: 1e-6)
        XCTAssert(probs.array.allSatisfy { $0.isFinite })
        // Ties go to the first index: (1, 1, 0) → 0 ≠ 1; (0, 0, 0) → 0 ≠ 2.
        XCTAssertEqual(correct, [true, false, false, false])
        for k in 0..<4 { assertClose(Double(probs.array[k * C..<(k + 1) * C].reduce(0, +)), 1, rtol: 1e-6) }
    }

    func testSoftmaxCrossEntropyGradient() {
        var rng = RandomStream(seed: 5, purpose: .test, 5)
        let B = 12, C = 5
        let logits = Buffer(randomNormal(B * C, &rng, scale: 2))
        let labels = (0..<B).map { _ in Int32(rng.below(C)) }
        let w = Buffer(randomUniform(B, &rng, -1, 2)), losses = Buffer(zeros: B), probs = Buffer(zeros: B * C)
        let scale: Float = 1.3
        labels.withUnsafeBufferPointer { l in
            let objective = { () -> Double in
                softmaxCrossEntropyForward(losses: losses.p, correct: nil, probs: probs.p, logits: logits.p,
                                           labels: l.baseAddress!, batch: B, classes: C)
                return Double(scale) * weightedSum(w, losses)
            }
            _ = objective()
            let before = randomNormal(B * C, &rng)
            let dz = Buffer(before)
            softmaxCrossEntropyBackward(dlogits: dz.p, probs: probs.p, labels: l.baseAddress!, weights: w.p,
                                        scale: scale, batch: B, classes: C)
            checkGradient("softmaxCE dlogits", logits, analytic: zip(dz.array, before).map { $0 - $1 }, rng: &rng,
                          objective: objective)
        }
    }
}

final class FastTanhTests: XCTestCase {
    /// fastTanh agrees with libm's tanh (in Double) over a dense grid and at the branch edges.
    func testFastTanhMatchesLibm() {
        var worst: Double = 0
        var worstAt: Float = 0
        var x: Float = -12
        while x <= 12 {
            let exact = Foundation.tanh(Double(x))
            let got = Double(fastTanh(x))
            let err = abs(got - exact) / max(abs(exact), 1e-30)
            if err > worst { worst = err; worstAt = x }
            x += 1.0 / 4096
        }
        let edges: [Float] = [0.4, Float(0.4).nextDown, Float(0.4).nextUp, 9.5, Float(9.5).nextDown,
                              1e-30, -1e-30, 0, 3.4e38, -3.4e38]
        for edge in edges {
            let exact = Foundation.tanh(Double(edge))
            let err = abs(Double(fastTanh(edge)) - exact) / max(abs(exact), 1e-30)
            if err > worst { worst = err; worstAt = edge }
        }
        XCTAssertLessThan(worst, 3e-7, "worst relative error \(worst) at x = \(worstAt)")
        XCTAssertTrue(fastTanh(.nan).isNaN, "NaN passes through")
        XCTAssertEqual(fastTanh(.infinity), 1)
        XCTAssertEqual(fastTanh(-.infinity), -1)
    }
}
