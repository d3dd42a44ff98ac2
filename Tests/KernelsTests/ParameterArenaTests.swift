import Kernels
import Random
import TestSupport
import XCTest

final class ParameterArenaTests: XCTestCase {
    func makeLayout(extraFirst: Bool = false) -> (ParameterLayout, LinearParameters, BatchNormParameters) {
        var layout = ParameterLayout()
        if extraFirst { layout.add("extra", shape: [3], initialiser: .ones) }
        let fc = layout.addLinear("fc", inFeatures: 38, outFeatures: 20)
        let bn = layout.addBatchNorm("bn", channels: 20)
        return (layout, fc, bn)
    }

    // MARK: - Layout

    func testLayoutIsFlatAlignedAndContiguous() {
        let (layout, fc, bn) = makeLayout()
        let arena = ParameterArena(layout: layout, seed: 1)
        XCTAssertEqual(layout.views.map(\.name), ["fc.weight", "fc.bias", "bn.gamma", "bn.beta"])
        XCTAssertEqual(fc.weight.shape, [20, 38])
        XCTAssertEqual(fc.weight.count, 760)
        for view in layout.views { XCTAssertEqual(view.offset % ParameterLayout.alignment, 0, view.description) }
        XCTAssertEqual(layout.count, 768 + 32 + 32 + 32)
        // The four regions follow each other in one allocation.
        XCTAssertEqual(arena.gradients.baseAddress!, arena.values.baseAddress! + arena.count)
        XCTAssertEqual(arena.firstMoments.baseAddress!, arena.gradients.baseAddress! + arena.count)
        XCTAssertEqual(arena.secondMoments.baseAddress!, arena.firstMoments.baseAddress! + arena.count)
        XCTAssertEqual(arena.gradient(bn.beta), arena.gradients.baseAddress! + bn.beta.offset)
        XCTAssertEqual(arena.view(named: "bn.gamma"), bn.gamma)

        for i in 0..<arena.count { arena.gradients[i] = Float(i) + 1 }
        arena.zeroGradients()
        XCTAssert(arena.gradients.allSatisfy { $0 == 0 })
        XCTAssertNotEqual(arena.values[0], 0, "zeroGradients must not touch the values")
    }

    // MARK: - Initialisation

    func testPyTorchDefaultInitialisation() {
        let (layout, fc, bn) = makeLayout()
        let arena = ParameterArena(layout: layout, seed: 42)
        let bound = 1 / Float(38).squareRoot()
        let w = Array(UnsafeBufferPointer(start: arena.value(fc.weight), count: fc.weight.count))
        let b = Array(UnsafeBufferPointer(start: arena.value(fc.bias!), count: 20))
        XCTAssert((w + b).allSatisfy { abs($0) < bound })
        // U(±a): mean 0, variance a²/3; 760 samples, so 4σ bands.
        let mean = w.reduce(0, +) / Float(w.count)
        let variance = w.map { $0 * $0 }.reduce(0, +) / Float(w.count)
        XCTAssertLessThan(abs(mean), 4 * bound / (3 * Float(w.count)).squareRoot())
        XCTAssertEqual(variance, bound * bound / 3, accuracy: 0.15 * bound * bound / 3)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: arena.value(bn.gamma), count: 20)), [Float](repeating: 1, count: 20))
        XCTAssertEqual(Array(UnsafeBufferPointer(start: arena.value(bn.beta), count: 20)), [Float](repeating: 0, count: 20))
        XCTAssert(arena.gradients.allSatisfy { $0 == 0 } && arena.firstMoments.allSatisfy { $0 == 0 })

        // Keyed by (seed, name): same seed same values, even with another tensor registered first.
        let (layout2, fc2, _) = makeLayout(extraFirst: true)
        let again = ParameterArena(layout: layout2, seed: 42)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: again.value(fc2.weight), count: 760)), w)
        let other = ParameterArena(layout: layout, seed: 43)
        XCTAssertNotEqual(Array(UnsafeBufferPointer(start: other.value(fc.weight), count: 760)), w)
    }

    // MARK: - Adam

    /// Three steps against PyTorch's formula evaluated by hand (Python, Double):
    /// lr 0.1, β 0.9/0.999, ε 1e-8. Element 2 has |g| = 1e-3 at step 1, where ε shows
    /// (−0.099999 instead of −0.1). Float arithmetic: rtol 1e-6.
    func testAdamThreeStepsMatchReference() {
        var layout = ParameterLayout()
        let p = layout.add("p", shape: [3], initialiser: .zeros)
        let arena = ParameterArena(layout: layout, seed: 0)
        let x = arena.value(p), g = arena.gradient(p)
        x[0] = 1; x[1] = -0.5; x[2] = 0
        let grads: [[Float]] = [[0.5, -0.2, 1e-3], [-1, 0.3, 0], [0.25, 0.3, -2]]
        let expected: [[Float]] = [[0.900000002, -0.400000005, -0.099999],
                                   [0.936610354, -0.424770186, -0.167003878],
                                   [0.95027942, -0.480359431, -0.103148398]]
        for t in 1...3 {
            arena.zeroGradients()
            for i in 0..<3 { g[i] += grads[t - 1][i] }
            arena.adamStep(lr: 0.1, step: t)
            assertClose(Array(UnsafeBufferPointer(start: x, count: 3)), expected[t - 1], rtol: 1e-6, atol: 1e-7, "step \(t)")
        }
        assertClose(Array(UnsafeBufferPointer(start: arena.firstMoments.baseAddress!, count: 3)),
                    [-0.0245, 0.0408, -0.199919], rtol: 1e-5, atol: 1e-9)
        assertClose(Array(UnsafeBufferPointer(start: arena.secondMoments.baseAddress!, count: 3)),
                    [0.00131100025, 0.00021983004, 0.004000001], rtol: 1e-5, atol: 1e-12)
        // Padding never moves.
        XCTAssert(arena.values[3..<arena.count].allSatisfy { $0 == 0 })
    }

    // MARK: - Checksum

    func testChecksumDetectsAnyChangedBit() {
        let (layout, fc, _) = makeLayout()
        let a = ParameterArena(layout: layout, seed: 9), b = ParameterArena(layout: layout, seed: 9)
        XCTAssertEqual(a.checksum(), b.checksum())
        b.value(fc.weight)[100] = Float(bitPattern: b.value(fc.weight)[100].bitPattern ^ 1)
        XCTAssertNotEqual(a.checksum(), b.checksum())
        XCTAssertNotEqual(a.checksum(), ParameterArena(layout: layout, seed: 10).checksum())
        // Swapping two values changes it too (order-sensitive).
        let c = ParameterArena(layout: layout, seed: 9)
        let w = c.value(fc.weight)
        (w[0], w[1]) = (w[1], w[0])
        XCTAssertNotEqual(a.checksum(), c.checksum())
    }
}
