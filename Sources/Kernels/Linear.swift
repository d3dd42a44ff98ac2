// Linear layer, PyTorch layout: weight (OC, C), bias (OC).
//
//   out[B, OC] = inp[B, C] · weight[OC, C]ᵀ + bias[OC]
//
// Both directions are single `cblas_sgemm` calls (row-major). Backward ADDS
// into the gradient buffers (llm.c convention), so the caller zeroes all
// gradients once per step with one memset.
import CBLAS
import Synchronization

/// Floating-point operations of every sgemm this process ran (2·M·N·K each),
/// for `esapn train --profile`'s achieved GFLOP/s. A relaxed atomic add per
/// call: nothing beside a product of ≥ 2·500·2·2 operations.
public let sgemmOperations = Atomic<Int>(0)

// MARK: - Forward

/// `out[B, OC] = inp[B, C] · weight[OC, C]ᵀ + bias[OC]`. `bias` may be nil.
/// `out` must not alias `inp` or `weight`. A batch of 0 rows is a no-op.
public func linearForward(out: UnsafeMutablePointer<Float>,
                          inp: UnsafePointer<Float>,
                          weight: UnsafePointer<Float>,     // (OC, C)
                          bias: UnsafePointer<Float>?,      // (OC)
                          batch B: Int, inFeatures C: Int, outFeatures OC: Int) {
    precondition(B >= 0 && C > 0 && OC > 0,
                 "linearForward: need batch >= 0 and positive features, got B=\(B) C=\(C) OC=\(OC)")
    guard B > 0 else { return }
    var beta: Float = 0
    if let bias {
        // Seed every output row with the bias, then let sgemm accumulate onto it.
        for b in 0..<B { (out + b * OC).update(from: bias, count: OC) }
        beta = 1
    }
    sgemmOperations.add(2 * B * OC * C, ordering: .relaxed)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                blasint(B), blasint(OC), blasint(C),
                1, inp, blasint(C), weight, blasint(C),
                beta, out, blasint(OC))
}

// MARK: - Backward

/// Adds the gradients of a scalar loss, given `dout = ∂L/∂out` (B, OC):
/// `dinp += dout · weight`, `dweight += doutᵀ · inp`, `dbias += Σ_b dout[b]`.
/// Any gradient pointer may be nil to skip that gradient (a frozen weight, an
/// input that needs no gradient).
public func linearBackward(dinp: UnsafeMutablePointer<Float>?,     // (B, C)
                           dweight: UnsafeMutablePointer<Float>?,  // (OC, C)
                           dbias: UnsafeMutablePointer<Float>?,    // (OC)
                           dout: UnsafePointer<Float>,             // (B, OC)
                           inp: UnsafePointer<Float>,              // (B, C)
                           weight: UnsafePointer<Float>,           // (OC, C)
                           batch B: Int, inFeatures C: Int, outFeatures OC: Int) {
    precondition(B >= 0 && C > 0 && OC > 0,
                 "linearBackward: need batch >= 0 and positive features, got B=\(B) C=\(C) OC=\(OC)")
    guard B > 0 else { return }
    sgemmOperations.add(2 * B * OC * C * ((dinp == nil ? 0 : 1) + (dweight == nil ? 0 : 1)), ordering: .relaxed)
    if let dinp {
        // dinp[B, C] += dout[B, OC] · weight[OC, C]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                    blasint(B), blasint(C), blasint(OC),
                    1, dout, blasint(OC), weight, blasint(C),
                    1, dinp, blasint(C))
    }
    if let dweight {
        // dweight[OC, C] += dout[B, OC]ᵀ · inp[B, C]
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,
                    blasint(OC), blasint(C), blasint(B),
                    1, dout, blasint(OC), inp, blasint(C),
                    1, dweight, blasint(C))
    }
    if let dbias {
        for b in 0..<B {
            let row = dout + b * OC
            for o in 0..<OC { dbias[o] += row[o] }
        }
    }
}
