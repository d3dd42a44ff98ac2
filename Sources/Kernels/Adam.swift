// Adam (Kingma & Ba), exactly as PyTorch's `torch.optim.Adam` computes it
// (no weight decay, no amsgrad), shared by the dense `ParameterArena` and the
// embedding `RowAdam`:
//   m ← m + (1 − β1)(g − m)            (PyTorch's lerp form)
//   v ← β2·v + (1 − β2)·g²
//   p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
// t is the GLOBAL step (1, 2, …): the bias correction of a row touched for
// the first time at step t is that of step t, as with dense Adam.
// Hyperparameters are Doubles (like PyTorch's Python floats); the bias
// corrections are computed in Double and the per-element work in Float.
import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Hyperparameters

/// Adam's settings. Defaults are PyTorch's (β 0.9/0.999, ε 1e-8).
public struct AdamHyperparameters: Sendable, Codable, Equatable {
    public var lr: Double
    public var beta1: Double
    public var beta2: Double
    public var eps: Double

    public init(lr: Double, beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8) {
        precondition(lr >= 0, "Adam: learning rate must be >= 0, got \(lr)")
        precondition(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1,
                     "Adam: betas must lie in [0, 1), got \(beta1), \(beta2)")
        precondition(eps >= 0, "Adam: eps must be >= 0, got \(eps)")
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
    }
}

// MARK: - Kernel

/// One Adam step at global step `t` (≥ 1) over `count` elements, in place.
public func adamUpdate(values: UnsafeMutablePointer<Float>,
                       m: UnsafeMutablePointer<Float>,
                       v: UnsafeMutablePointer<Float>,
                       grads: UnsafePointer<Float>,
                       count: Int,
                       _ h: AdamHyperparameters, step t: Int) {
    precondition(t >= 1, "adamUpdate: the global step starts at 1, got \(t)")
    precondition(count >= 0, "adamUpdate: negative count \(count)")
    let stepSize = Float(h.lr / (1 - pow(h.beta1, Double(t))))
    let correction2Root = Float((1 - pow(h.beta2, Double(t))).squareRoot())
    let oneMinusBeta1 = Float(1 - h.beta1), beta2 = Float(h.beta2), oneMinusBeta2 = Float(1 - h.beta2)
    let eps = Float(h.eps)
    // Eight lanes at a time in AVX2 where the CPU has it (CKernels), else
    // sixteen at a time in Swift, then the tail: the same IEEE operations in
    // the same order, so an element's result does not depend on where it
    // sits nor on which ran.
    var i = avx2Kernels ? esapn_adam_avx2(values, m, v, grads, count, stepSize, correction2Root,
                                          oneMinusBeta1, beta2, oneMinusBeta2, eps) : 0
    while i + 16 <= count {
        let g = load(grads + i), m0 = load(m + i), v0 = load(v + i)
        let mi = m0 + oneMinusBeta1 * (g - m0)
        let vi = beta2 * v0 + oneMinusBeta2 * g * g
        store(mi, m + i)
        store(vi, v + i)
        store(load(values + i) - stepSize * mi / (vi.squareRoot() / correction2Root + eps), values + i)
        i += 16
    }
    while i < count {
        let g = grads[i]
        let mi = m[i] + oneMinusBeta1 * (g - m[i])
        let vi = beta2 * v[i] + oneMinusBeta2 * g * g
        m[i] = mi
        v[i] = vi
        values[i] -= stepSize * mi / (vi.squareRoot() / correction2Root + eps)
        i += 1
    }
}

@inline(__always)
private func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }
@inline(__always)
private func load(_ p: UnsafeMutablePointer<Float>) -> SIMD16<Float> { load(UnsafePointer(p)) }
@inline(__always)
private func store(_ x: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: x, as: SIMD16<Float>.self)
}
