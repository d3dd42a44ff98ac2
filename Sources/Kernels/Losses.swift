// The two output heads with their per-record losses (ARCHITECTURE §1):
//   binary:     p = σ(z),          loss_k = (p_k − y_k)²,      correct ⇔ (p ≥ 0.5) == (y == 1)
//   multiclass: p = softmax(z),    loss_k = −log p_k[label],   correct ⇔ argmax z == label
// Forward writes the per-record losses (the trainer reports and FIFOs them)
// and keeps the probabilities for backward. Backward ADDS the gradient of
//   scale · Σ_k w_k · loss_k
// where w_k are optional per-record weights (nil = all 1; REINFORCE uses
// them) and `scale` is a global factor: the model's objective is the plain
// SUM over the global batch (scale 1), as the reference code does.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Sigmoid + squared error (binary)

/// Per record: `probs = σ(logits)`, `losses = (probs − labels)²`, and
/// `correct = (probs ≥ 0.5) == (labels == 1)` when `correct` is not nil.
/// Labels are 0 or 1.
public func sigmoidMSEForward(losses: UnsafeMutablePointer<Float>,   // (B)
                              correct: UnsafeMutablePointer<Bool>?,  // (B)
                              probs: UnsafeMutablePointer<Float>,    // (B)
                              logits: UnsafePointer<Float>,          // (B)
                              labels: UnsafePointer<Float>,          // (B)
                              batch B: Int) {
    precondition(B >= 0, "sigmoidMSEForward: negative batch \(B)")
    for k in 0..<B {
        let z = logits[k]
        // Stable on both sides: exp of a non-positive number only.
        let p: Float
        if z >= 0 { p = 1 / (1 + expf(-z)) } else { let e = expf(z); p = e / (1 + e) }
        probs[k] = p
        let d = p - labels[k]
        losses[k] = d * d
        correct?[k] = (p >= 0.5) == (labels[k] > 0.5)
    }
}

/// `dlogits[k] += scale · w_k · 2(p_k − y_k)·p_k(1 − p_k)`, with `probs` from forward.
public func sigmoidMSEBackward(dlogits: UnsafeMutablePointer<Float>,  // (B)
                               probs: UnsafePointer<Float>,           // (B)
                               labels: UnsafePointer<Float>,          // (B)
                               weights: UnsafePointer<Float>?,        // (B)
                               scale: Float,
                               batch B: Int) {
    precondition(B >= 0, "sigmoidMSEBackward: negative batch \(B)")
    for k in 0..<B {
        let p = probs[k]
        let w = weights.map { $0[k] } ?? 1
        dlogits[k] += scale * w * 2 * (p - labels[k]) * p * (1 - p)
    }
}

// MARK: - Softmax + cross-entropy (multiclass)

/// Per record (row of `classes` logits): `probs = softmax(logits)`,
/// `losses = logsumexp(logits) − logits[label]` (stable for any logit size),
/// `correct = argmax(logits) == label` (first index on ties).
public func softmaxCrossEntropyForward(losses: UnsafeMutablePointer<Float>,   // (B)
                                       correct: UnsafeMutablePointer<Bool>?,  // (B)
                                       probs: UnsafeMutablePointer<Float>,    // (B, C)
                                       logits: UnsafePointer<Float>,          // (B, C)
                                       labels: UnsafePointer<Int32>,          // (B)
                                       batch B: Int, classes C: Int) {
    precondition(B >= 0 && C > 0, "softmaxCrossEntropyForward: need batch >= 0 and classes > 0, got B=\(B) C=\(C)")
    for k in 0..<B {
        let z = logits + k * C, p = probs + k * C
        let label = Int(labels[k])
        precondition(label >= 0 && label < C, "softmaxCrossEntropyForward: label \(label) of record \(k) is outside 0..<\(C)")
        var maxValue = z[0], argmax = 0
        for c in 1..<C where z[c] > maxValue { maxValue = z[c]; argmax = c }
        var sum: Float = 0
        for c in 0..<C {
            let e = expf(z[c] - maxValue)
            p[c] = e
            sum += e
        }
        let inverse = 1 / sum
        for c in 0..<C { p[c] *= inverse }
        losses[k] = logf(sum) + maxValue - z[label]
        correct?[k] = argmax == label
    }
}

/// `dlogits[k, c] += scale · w_k · (probs[k, c] − [c == label_k])`, with `probs` from forward.
public func softmaxCrossEntropyBackward(dlogits: UnsafeMutablePointer<Float>,  // (B, C)
                                        probs: UnsafePointer<Float>,           // (B, C)
                                        labels: UnsafePointer<Int32>,          // (B)
                                        weights: UnsafePointer<Float>?,        // (B)
                                        scale: Float,
                                        batch B: Int, classes C: Int) {
    precondition(B >= 0 && C > 0, "softmaxCrossEntropyBackward: need batch >= 0 and classes > 0, got B=\(B) C=\(C)")
    for k in 0..<B {
        let p = probs + k * C, d = dlogits + k * C
        let s = scale * (weights.map { $0[k] } ?? 1)
        for c in 0..<C { d[c] += s * p[c] }
        d[Int(labels[k])] -= s
    }
}
