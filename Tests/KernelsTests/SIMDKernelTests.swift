// The vectorised kernels compute each element with the same IEEE operations
// as their scalar tails, so a record's result does not depend on where it sits
// in a slice (exact reductions across P rely on it): checked bit for bit
// against the scalar code at every position of buffers whose lengths are not
// multiples of the vector width, on a dense grid and on special values.
import CKernels
import Kernels
import Random
import XCTest

final class SIMDKernelTests: XCTestCase {
    /// Inputs: a dense grid over [−12, 12], the branch points (0.4, 9.5), and special values.
    static var tanhInputs: [Float] {
        var x = stride(from: Float(-12), through: 12, by: 0.0007).map { $0 }
        let special: [Float] = [0, -0, 0.4, -0.4, Float(0.4).nextDown, Float(0.4).nextUp, 9.5, -9.5, Float(9.5).nextDown, Float(9.5).nextUp,
                                .infinity, -.infinity, .nan, .leastNonzeroMagnitude, -.leastNormalMagnitude,
                                .greatestFiniteMagnitude, 1e-20, -3e-8, 88, -100]
        x += special
        x.append(1) // an odd length
        return x
    }

    func testTanhVectorBodyEqualsTheScalarBitForBit() {
        let x = Self.tanhInputs
        XCTAssertNotEqual(x.count % 16, 0, "the tail must be exercised")
        // Every element once in the vector body (offset 0) and, shifted, in other lanes and the tail.
        for shift in [0, 1, 7, 15] {
            let input = Array(x[shift...]) + Array(x[..<shift])
            var out = [Float](repeating: 0, count: input.count)
            input.withUnsafeBufferPointer { i in out.withUnsafeMutableBufferPointer { o in
                tanhForward(out: o.baseAddress!, inp: i.baseAddress!, count: input.count)
            } }
            var mismatches = 0
            for k in input.indices where out[k].bitPattern != fastTanh(input[k]).bitPattern {
                if mismatches < 5 { XCTFail("tanh(\(input[k])) at position \(k): \(out[k]) vs scalar \(fastTanh(input[k]))") }
                mismatches += 1
            }
            XCTAssertEqual(mismatches, 0, "shift \(shift)")
        }
        XCTAssert(fastTanh16(SIMD16(repeating: .nan))[3].isNaN, "NaN passes through")
    }

    /// tanhForward picks one of two vector bodies by CPU (AVX2 in C, SSE2 in
    /// Swift); each, called directly, equals the scalar function bit for bit.
    func testBothTanhBodiesEqualTheScalarBitForBit() {
        let x = Self.tanhInputs
        let n = x.count & ~15
        var swift16 = [Float](repeating: 0, count: n)
        for k in stride(from: 0, to: n, by: 16) {
            let v = fastTanh16(SIMD16(x[k..<(k + 16)]))
            for j in 0..<16 { swift16[k + j] = v[j] }
        }
        for k in 0..<n where swift16[k].bitPattern != fastTanh(x[k]).bitPattern {
            XCTFail("fastTanh16(\(x[k])) = \(swift16[k]), scalar \(fastTanh(x[k]))")
            break
        }
        if esapn_cpu_has_avx2() == 0 {
            // Nothing else can run here: the AVX2 body is never chosen on this CPU.
            XCTAssertFalse(avx2Kernels, "AVX2 kernels chosen on a CPU without AVX2")
            return
        }
        var avx = [Float](repeating: -7, count: x.count)
        let done = x.withUnsafeBufferPointer { i in avx.withUnsafeMutableBufferPointer { o in
            esapn_tanh_avx2(o.baseAddress!, i.baseAddress!, i.count)
        } }
        XCTAssertEqual(done, x.count & ~7, "the AVX2 body does every whole group of eight")
        var mismatches = 0
        for k in 0..<done where avx[k].bitPattern != fastTanh(x[k]).bitPattern {
            if mismatches < 5 { XCTFail("AVX2 tanh(\(x[k])) = \(avx[k]), scalar \(fastTanh(x[k]))") }
            mismatches += 1
        }
        XCTAssertEqual(mismatches, 0)
        XCTAssertEqual(avx[done..<x.count].filter { $0 != -7 }.count, 0, "the tail is left to Swift")
    }

    func testAdamVectorBodyEqualsTheScalarBitForBit() {
        let n = 16 * 40 + 11
        var rng = RandomStream(seed: 9, purpose: .test)
        func randoms(_ scale: Double) -> [Float] { (0..<n).map { _ in Float(scale * rng.normal()) } }
        let values = randoms(1), m = randoms(0.01), v = randoms(0.001).map { abs($0) }, grads = randoms(0.1)
        let h = AdamHyperparameters(lr: 1e-3)
        // Whole buffer (vector body + tail) against element-by-element calls (tail only).
        var (pv, pm, pvv) = (values, m, v)
        pv.withUnsafeMutableBufferPointer { a in pm.withUnsafeMutableBufferPointer { b in pvv.withUnsafeMutableBufferPointer { c in
            grads.withUnsafeBufferPointer { g in
                adamUpdate(values: a.baseAddress!, m: b.baseAddress!, v: c.baseAddress!, grads: g.baseAddress!, count: n, h, step: 7)
            }
        } } }
        var (sv, sm, svv) = (values, m, v)
        for i in 0..<n {
            sv.withUnsafeMutableBufferPointer { a in sm.withUnsafeMutableBufferPointer { b in svv.withUnsafeMutableBufferPointer { c in
                grads.withUnsafeBufferPointer { g in
                    adamUpdate(values: a.baseAddress! + i, m: b.baseAddress! + i, v: c.baseAddress! + i,
                               grads: g.baseAddress! + i, count: 1, h, step: 7)
                }
            } } }
        }
        XCTAssertEqual(pv.map(\.bitPattern), sv.map(\.bitPattern), "values")
        XCTAssertEqual(pm.map(\.bitPattern), sm.map(\.bitPattern), "first moments")
        XCTAssertEqual(pvv.map(\.bitPattern), svv.map(\.bitPattern), "second moments")
        XCTAssertNotEqual(pv, values, "the step moved the values")
    }
}
