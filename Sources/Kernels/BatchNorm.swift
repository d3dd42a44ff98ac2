// BatchNorm1d in training mode, synchronised across ranks (SyncBN,
// ARCHITECTURE §4). Every rank holds a slice of the global batch; the
// per-channel statistics are those of the GLOBAL batch, so P ranks give the
// P = 1 result up to the summation order of the all-reduce.
//
//   forward:  local Σx, Σx² (Double) and the local row count → ONE all-reduce
//             → mean, biased variance, rstd = 1/√(var + 1e-5)
//             → y = γ·x̂ + β,  x̂ = (x − mean)·rstd
//   backward: local Σdy, Σdy·x̂ (Double) → ONE all-reduce
//             → dx = γ·rstd·(dy − Σdy/N − x̂·Σ(dy·x̂)/N)   (as PyTorch)
//
// dγ and dβ receive this rank's LOCAL contributions only (Σ over its own
// rows). The trainer all-reduces all dense gradients afterwards (one call
// over `ParameterArena.gradients`), which completes them. Adding the global
// sums here instead would count them P times.
//
// Every rank must call forward and backward, even with 0 local rows: each
// makes exactly one collective call. Running statistics are not kept: the
// model never runs in eval mode (ARCHITECTURE §2).
import Comm

/// BatchNorm's ε, PyTorch's default.
public let batchNormEpsilon: Double = 1e-5

// MARK: - Cache

/// What backward needs from forward, plus the per-channel workspace of both
/// directions. Sized once by the channel count (not by the batch); owned by
/// the caller, one per BatchNorm layer. x̂ is not stored: backward recomputes
/// it from the input, which the caller keeps anyway.
public final class BatchNormCache {
    public let channels: Int
    /// Global batch mean of the last forward, (C).
    public let mean: UnsafeMutablePointer<Float>
    /// 1/√(biased variance + ε) of the last forward, (C).
    public let rstd: UnsafeMutablePointer<Float>
    /// Rows in the global batch of the last forward.
    public internal(set) var globalCount: Double = 0
    /// All-reduce buffer: forward [Σx (C), Σx² (C), rows (1)], backward [Σdy (C), Σdy·x̂ (C)].
    let reduce: UnsafeMutablePointer<Double>
    /// Backward per-channel coefficients: γ·rstd, Σdy/N, Σ(dy·x̂)/N, each (C).
    let coefficients: UnsafeMutablePointer<Float>

    public init(channels: Int) {
        precondition(channels > 0, "BatchNormCache needs a positive channel count, got \(channels)")
        self.channels = channels
        mean = .allocate(capacity: channels)
        rstd = .allocate(capacity: channels)
        reduce = .allocate(capacity: 2 * channels + 1)
        coefficients = .allocate(capacity: 3 * channels)
        mean.initialize(repeating: 0, count: channels)
        rstd.initialize(repeating: 0, count: channels)
        reduce.initialize(repeating: 0, count: 2 * channels + 1)
        coefficients.initialize(repeating: 0, count: 3 * channels)
    }

    deinit {
        mean.deallocate()
        rstd.deallocate()
        reduce.deallocate()
        coefficients.deallocate()
    }
}

// MARK: - Forward

/// `out[b, c] = γ[c]·(inp[b, c] − mean[c])·rstd[c] + β[c]` with the statistics
/// of the global batch (this rank's `B` rows plus every other rank's).
/// Fills `cache` for backward. `out` may alias `inp` only if backward is not needed.
public func batchNormForward(out: UnsafeMutablePointer<Float>,   // (B, C)
                             cache: BatchNormCache,
                             inp: UnsafePointer<Float>,          // (B, C)
                             gamma: UnsafePointer<Float>,        // (C)
                             beta: UnsafePointer<Float>,         // (C)
                             batch B: Int, channels C: Int,
                             comm: any Communicator) {
    precondition(B >= 0, "batchNormForward: negative batch \(B)")
    precondition(cache.channels == C, "batchNormForward: cache has \(cache.channels) channels, layer has \(C)")
    let sum = cache.reduce, sumSquares = cache.reduce + C
    sum.update(repeating: 0, count: 2 * C)
    for b in 0..<B {
        let x = inp + b * C
        for c in 0..<C {
            let xi = Double(x[c])
            sum[c] += xi
            sumSquares[c] += xi * xi
        }
    }
    cache.reduce[2 * C] = Double(B)
    comm.allReduceSum(UnsafeMutableBufferPointer(start: cache.reduce, count: 2 * C + 1))
    let n = cache.reduce[2 * C]
    cache.globalCount = n
    guard n > 0 else { return }   // every rank is empty: nothing to normalise

    let mean = cache.mean, rstd = cache.rstd
    for c in 0..<C {
        let mu = sum[c] / n
        let variance = Swift.max(sumSquares[c] / n - mu * mu, 0)
        mean[c] = Float(mu)
        rstd[c] = Float(1 / (variance + batchNormEpsilon).squareRoot())
    }
    for b in 0..<B {
        let x = inp + b * C, y = out + b * C
        for c in 0..<C {
            y[c] = (x[c] - mean[c]) * rstd[c] * gamma[c] + beta[c]
        }
    }
}

// MARK: - Backward

/// Adds `dinp` (global-batch BatchNorm gradient, as PyTorch) and this rank's
/// LOCAL contributions to `dgamma` (Σ dy·x̂) and `dbeta` (Σ dy); see the file
/// header for why they are local. `cache` must come from the matching forward.
public func batchNormBackward(dinp: UnsafeMutablePointer<Float>?,    // (B, C)
                              dgamma: UnsafeMutablePointer<Float>?,  // (C)
                              dbeta: UnsafeMutablePointer<Float>?,   // (C)
                              dout: UnsafePointer<Float>,            // (B, C)
                              inp: UnsafePointer<Float>,             // (B, C)
                              gamma: UnsafePointer<Float>,           // (C)
                              cache: BatchNormCache,
                              batch B: Int, channels C: Int,
                              comm: any Communicator) {
    precondition(B >= 0, "batchNormBackward: negative batch \(B)")
    precondition(cache.channels == C, "batchNormBackward: cache has \(cache.channels) channels, layer has \(C)")
    let mean = cache.mean, rstd = cache.rstd
    let sumDy = cache.reduce, sumDyXhat = cache.reduce + C
    sumDy.update(repeating: 0, count: 2 * C)
    for b in 0..<B {
        let x = inp + b * C, dy = dout + b * C
        for c in 0..<C {
            let g = Double(dy[c])
            sumDy[c] += g
            sumDyXhat[c] += g * Double((x[c] - mean[c]) * rstd[c])
        }
    }
    // Local parameter gradients, before the sums become global.
    if let dbeta { for c in 0..<C { dbeta[c] += Float(sumDy[c]) } }
    if let dgamma { for c in 0..<C { dgamma[c] += Float(sumDyXhat[c]) } }

    comm.allReduceSum(UnsafeMutableBufferPointer(start: cache.reduce, count: 2 * C))
    let n = cache.globalCount
    guard let dinp, n > 0, B > 0 else { return }

    let scale = cache.coefficients, meanDy = scale + C, meanDyXhat = scale + 2 * C
    for c in 0..<C {
        scale[c] = gamma[c] * rstd[c]
        meanDy[c] = Float(sumDy[c] / n)
        meanDyXhat[c] = Float(sumDyXhat[c] / n)
    }
    for b in 0..<B {
        let x = inp + b * C, dy = dout + b * C, dx = dinp + b * C
        for c in 0..<C {
            let xhat = (x[c] - mean[c]) * rstd[c]
            dx[c] += scale[c] * (dy[c] - meanDy[c] - xhat * meanDyXhat[c])
        }
    }
}
