// The two tasks of the paper (§3.4, ARCHITECTURE §1).

public enum Task: String, CaseIterable, Codable, Sendable {
    /// Label 1 when rating > 3.5; sigmoid output, per-record MSE, accuracy at 0.5.
    case binary
    /// Five classes clamp(floor(rating − 0.5), 0, 4); softmax, cross-entropy, argmax accuracy.
    case multiclass

    public var outputs: Int { self == .binary ? 1 : 5 }

    @inline(__always)
    public static func binaryLabel(_ rating: Float) -> Float { rating > 3.5 ? 1 : 0 }

    @inline(__always)
    public static func classLabel(_ rating: Float) -> Int32 {
        Int32(min(4, max(0, (rating - 0.5).rounded(.down))))
    }
}
