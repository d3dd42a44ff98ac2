// Element-wise activations. Backward ADDS into `dinp` and uses the forward
// OUTPUT (tanh′ = 1 − tanh²), so no extra cache is needed.
import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whether this CPU runs the AVX2 kernels of CKernels (asked once).
/// `ESAPN_PORTABLE_KERNELS=1` keeps the Swift ones (for comparing the two).
public let avx2Kernels: Bool = esapn_cpu_has_avx2() != 0 && getenv("ESAPN_PORTABLE_KERNELS") == nil

// MARK: - tanh

/// `out[i] = tanh(inp[i])` for `count` elements. `out` may alias `inp`
/// (backward needs only `out`). Eight lanes at a time in AVX2 where the CPU
/// has it (CKernels), else sixteen at a time in Swift (`fastTanh16`, SSE2),
/// the tail with the scalar `fastTanh`: all three are the same sequence of
/// IEEE operations, so an element's result does not depend on where it sits
/// nor on which ran.
public func tanhForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int) {
    precondition(count >= 0, "tanhForward: negative count \(count)")
    let body = count & ~15
    var i = avx2Kernels ? esapn_tanh_avx2(out, inp, count) : 0
    while i < body {
        let x = UnsafeRawPointer(inp + i).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(out + i).storeBytes(of: fastTanh16(x), as: SIMD16<Float>.self)
        i += 16
    }
    while i < count {
        out[i] = fastTanh(inp[i])
        i += 1
    }
}

/// `fastTanh` on sixteen lanes: the same operations in the same order, so
/// each lane equals the scalar function bit for bit.
@inline(__always)
public func fastTanh16(_ x: SIMD16<Float>) -> SIMD16<Float> {
    typealias F = SIMD16<Float>
    typealias U = SIMD16<UInt32>
    let xb = unsafeBitCast(x, to: U.self)
    let m = unsafeBitCast(xb & 0x7FFF_FFFF, to: F.self)
    // m ≥ 9.5 → 9.5; NaN compares false and passes through, as in the scalar.
    let a = m.replacing(with: 9.5, where: m .>= 9.5)
    let z = x * x
    var p = F(repeating: -1382.0 / 155925.0)
    p = p * z + 62.0 / 2835.0
    p = p * z - 17.0 / 315.0
    p = p * z + 2.0 / 15.0
    p = p * z - 1.0 / 3.0
    let small = x + x * z * p
    let y = 2 * a
    let k = (y * 1.442695041 + 12_582_912) - 12_582_912
    let r = (y - k * 0.693145752) - k * 1.42860677e-6
    var e = F(repeating: 1.0 / 5040.0)
    e = e * r + 1.0 / 720.0
    e = e * r + 1.0 / 120.0
    e = e * r + 1.0 / 24.0
    e = e * r + 1.0 / 6.0
    e = e * r + 0.5
    e = e * r + 1
    e = e * r + 1
    let biased = unsafeBitCast(k + 8_388_735, to: U.self) & 0x7F_FFFF
    e *= unsafeBitCast(biased &<< 23, to: F.self)
    let t = 1 - 2 / (e + 1)
    let large = unsafeBitCast(unsafeBitCast(t, to: U.self) | (xb & 0x8000_0000), to: F.self)
    return large.replacing(with: small, where: a .< 0.4)
}

/// tanh in Float to within 3e-7 relative (tested against libm over a dense
/// grid). libm's `tanhf` took a quarter of a FIXED batch; this one is
/// branch-free so the loop vectorises: an odd Taylor polynomial near zero,
/// and 1 − 2/(e^{2|x|} + 1) elsewhere, with e^y = 2^k·e^r (|r| ≤ ln2/2,
/// degree-7 polynomial) and 2^k built from bits. NaN passes through.
@inline(__always)
public func fastTanh(_ x: Float) -> Float {
    let m = Float(bitPattern: x.bitPattern & 0x7FFF_FFFF)
    let a = m < 9.5 ? m : (m.isNaN ? m : 9.5)    // tanh(9.5) rounds to 1 in Float
    // Near zero: x − x³/3 + 2x⁵/15 − 17x⁷/315 + 62x⁹/2835 − 1382x¹¹/155925.
    let z = x * x
    var p: Float = -1382.0 / 155925.0
    p = p * z + 62.0 / 2835.0
    p = p * z - 17.0 / 315.0
    p = p * z + 2.0 / 15.0
    p = p * z - 1.0 / 3.0
    let small = x + x * z * p
    // Elsewhere: e^{2a} with k = round(2a / ln 2) by the 1.5·2²³ rounding trick.
    let y = 2 * a
    let k = (y * 1.442695041 + 12_582_912) - 12_582_912
    let r = (y - k * 0.693145752) - k * 1.42860677e-6
    var e: Float = 1.0 / 5040.0
    e = e * r + 1.0 / 720.0
    e = e * r + 1.0 / 120.0
    e = e * r + 1.0 / 24.0
    e = e * r + 1.0 / 6.0
    e = e * r + 0.5
    e = e * r + 1
    e = e * r + 1
    // 2^k: k + 127 sits in the low mantissa bits of k + 127 + 2²³.
    let biased = (k + 8_388_735).bitPattern & 0x7F_FFFF
    e *= Float(bitPattern: biased << 23)
    let t = 1 - 2 / (e + 1)
    let large = Float(bitPattern: t.bitPattern | (x.bitPattern & 0x8000_0000))
    return a < 0.4 ? small : large
}

/// `dinp[i] += (1 − out[i]²)·dout[i]`, where `out` is the forward's output.
public func tanhBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                         out: UnsafePointer<Float>, count: Int) {
    precondition(count >= 0, "tanhBackward: negative count \(count)")
    for i in 0..<count {
        let y = out[i]
        dinp[i] += (1 - y * y) * dout[i]
    }
}

// MARK: - softmax

/// `out[j] = exp(inp[j] − max) / Σ exp(inp[k] − max)` over `count` values;
/// `out` may alias `inp`.
@inline(__always)
public func softmax(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int) {
    var hi = inp[0]
    for j in 1..<max(1, count) { hi = max(hi, inp[j]) }
    var sum: Float = 0
    for j in 0..<count { out[j] = expf(inp[j] - hi); sum += out[j] }
    for j in 0..<count { out[j] /= sum }
}
