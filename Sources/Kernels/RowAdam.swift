// The optimizer of embedding rows (ARCHITECTURE §2). Rows are updated only
// when touched; what a row missed while untouched is applied when it is next
// read ("catch-up"), so predictions equal dense Adam over the whole table at
// lazy cost.
//
// A row last updated at global step s, brought up to date at step u, missed
// k = u − s zero-gradient steps. In them m and v decay by β1ʲ, β2ʲ and the
// value moves, element-wise, by
//   −lr · (m_s / √v_s) · F(s, k),
//   F(s, k) = Σ_{j=1..k} rʲ · √(1 − β2^{s+j}) / (1 − β1^{s+j}),   r = β1/√β2,
// with ε neglected (dense Adam divides by √v̂ + ε; the relative difference of
// each move is ε/√v̂) and elements with v_s = 0 not moving. Then m ← β1ᵏ m,
// v ← β2ᵏ v.
//
// F is O(1) per row: with F∞(n) = Σ_{j≥1} rʲ g(n + j), g(i) = √(1−β2ⁱ)/(1−β1ⁱ),
//   F(s, k) = F∞(s) − rᵏ · F∞(s + k)
// exactly. F∞ is tabulated once by the backward recursion
// F∞(n) = r·(g(n+1) + F∞(n+1)) from the index N where β^N < 1e-17 (g ≡ 1 in
// Double there, and F∞ is the geometric limit r/(1 − r)); ~39k entries
// (300 KB) for β2 = 0.999.
//
// Caller's protocol, per row, with lastStep stored by the caller (0 = never
// updated; a fresh or freshly enlarged row has zero moments, so catching it
// up moves nothing):
//   read at step t (lookup, enlargement):   catchUp(…, lastStep: s, to: t − 1); s = t − 1
//   gradient at step t:                     (caught up to t − 1 by the read) step(…, step: t); s = t
//   end of stream / checkpoint after T:     catchUp(…, lastStep: s, to: T)
// With `.lazyAdam` `catchUp` does nothing: plain lazy Adam.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum RowOptimizerKind: String, Sendable, Codable, CaseIterable {
    /// Adam on touched rows only; untouched rows stand still.
    case lazyAdam = "lazy"
    /// Lazy storage, dense-Adam values: missed steps applied when read.
    case catchUpAdam = "catch-up"
}

public struct RowAdam: Sendable {
    public let kind: RowOptimizerKind
    public let hyperparameters: AdamHyperparameters

    /// r = β1/√β2.
    let ratio: Double
    /// F∞(n) for n in 0..<table.count; beyond it, `limit`.
    let table: [Double]
    /// r / (1 − r).
    let limit: Double

    public init(kind: RowOptimizerKind = .catchUpAdam, _ hyperparameters: AdamHyperparameters) {
        self.kind = kind
        self.hyperparameters = hyperparameters
        let b1 = hyperparameters.beta1, b2 = hyperparameters.beta2
        guard kind == .catchUpAdam else {
            ratio = 0; table = []; limit = 0
            return
        }
        let r = b1 / b2.squareRoot()
        precondition(r < 1, "catch-up Adam needs β1/√β2 < 1 (the missed moves form a convergent series), got β1=\(b1) β2=\(b2)")
        ratio = r
        limit = r / (1 - r)
        // Smallest N with β1^N and β2^N below 1e-17 (0 when a β is 0).
        func vanishing(_ b: Double) -> Int { b > 0 ? Int((log(1e-17) / log(b)).rounded(.up)) : 0 }
        let n = Swift.max(vanishing(b1), vanishing(b2))
        precondition(n <= 1 << 24, "catch-up Adam: β2=\(b2) is too close to 1 for the F table (\(n) entries)")
        var t = [Double](repeating: limit, count: n + 1)
        var i = n - 1
        while i >= 0 {
            let g = (1 - pow(b2, Double(i + 1))).squareRoot() / (1 - pow(b1, Double(i + 1)))
            t[i] = r * (g + t[i + 1])
            i -= 1
        }
        table = t
    }

    public init(kind: RowOptimizerKind = .catchUpAdam, lr: Double, beta1: Double = 0.9,
                beta2: Double = 0.999, eps: Double = 1e-8) {
        self.init(kind: kind, AdamHyperparameters(lr: lr, beta1: beta1, beta2: beta2, eps: eps))
    }

    // MARK: - Missed steps

    /// F(s, k) = Σ_{j=1..k} rʲ·√(1 − β2^{s+j})/(1 − β1^{s+j}); O(1). Catch-up only.
    public func missedStepFactor(lastStep s: Int, missed k: Int) -> Double {
        precondition(kind == .catchUpAdam, "missedStepFactor is defined for catch-up Adam only")
        precondition(s >= 0 && k >= 0, "missedStepFactor: need lastStep >= 0 and missed >= 0, got \(s), \(k)")
        guard k > 0 else { return 0 }
        return infiniteFactor(s) - pow(ratio, Double(k)) * infiniteFactor(s + k)
    }

    @inline(__always)
    func infiniteFactor(_ n: Int) -> Double {
        table.withUnsafeBufferPointer { n < $0.count ? $0[n] : limit }
    }

    /// Applies the zero-gradient steps lastStep+1 … `to` that a row missed, so
    /// that it holds what dense Adam would hold after global step `to`. The
    /// caller then records `to` as the row's last step. A no-op for lazy Adam
    /// and when `to == lastStep`. Used for every read (lookup, enlargement,
    /// checkpoint), not only before a gradient step.
    public func catchUp(values: UnsafeMutablePointer<Float>,
                        m: UnsafeMutablePointer<Float>,
                        v: UnsafeMutablePointer<Float>,
                        width: Int, lastStep s: Int, to u: Int) {
        precondition(u >= s && s >= 0, "catchUp: the row was last updated at step \(s), cannot bring it to step \(u)")
        guard kind == .catchUpAdam, u > s else { return }
        let k = u - s
        let h = hyperparameters
        let move = Float(h.lr * missedStepFactor(lastStep: s, missed: k))
        let decay1 = Float(pow(h.beta1, Double(k))), decay2 = Float(pow(h.beta2, Double(k)))
        for i in 0..<width {
            let vi = v[i]
            if vi > 0 { values[i] -= move * m[i] / vi.squareRoot() }
            m[i] *= decay1
            v[i] = vi * decay2
        }
    }

    // MARK: - Step

    /// The ordinary Adam step of global step `t` for a touched row (caught up
    /// to t − 1 beforehand when catching up).
    public func step(values: UnsafeMutablePointer<Float>,
                     m: UnsafeMutablePointer<Float>,
                     v: UnsafeMutablePointer<Float>,
                     grads: UnsafePointer<Float>,
                     width: Int, step t: Int) {
        adamUpdate(values: values, m: m, v: v, grads: grads, count: width, hyperparameters, step: t)
    }
}
