// Element-wise activations. Backward ADDS into `dinp` and uses the forward
// OUTPUT (tanh′ = 1 − tanh²), so no extra cache is needed.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - tanh

/// `out[i] = tanh(inp[i])` for `count` elements. `out` may alias `inp`
/// (backward needs only `out`).
public func tanhForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int) {
    precondition(count >= 0, "tanhForward: negative count \(count)")
    for i in 0..<count { out[i] = tanhf(inp[i]) }
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
