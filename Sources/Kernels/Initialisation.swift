// Initialisation as PyTorch's defaults (ARCHITECTURE §2), from the
// counter-based generator so that every rank draws the same numbers without
// a broadcast:
//   Linear weight and bias   U(−1/√fan_in, 1/√fan_in)   (kaiming_uniform_(a=√5))
//   BatchNorm γ = 1, β = 0
// (Embedding rows, N(0, 1), are drawn where tables live: Embeddings/EmbeddingSide.swift.)
import Random

// MARK: - Rules

/// How a dense parameter tensor is initialised.
public enum ParameterInit: Sendable, Hashable {
    case constant(Float)
    case uniform(bound: Float)               // U(−bound, bound)
    case normal(standardDeviation: Float)    // N(0, sd²)

    public static let zeros = ParameterInit.constant(0)
    public static let ones = ParameterInit.constant(1)

    /// PyTorch's default for a Linear layer's weight and bias: U(±1/√fan_in).
    public static func linear(fanIn: Int) -> ParameterInit {
        precondition(fanIn > 0, "ParameterInit.linear: fan_in must be positive, got \(fanIn)")
        return .uniform(bound: Float(1 / Double(fanIn).squareRoot()))
    }

    /// Fills `count` floats, drawing from `stream` in index order.
    public func fill(_ values: UnsafeMutablePointer<Float>, count: Int, stream: inout RandomStream) {
        switch self {
        case .constant(let c):
            values.update(repeating: c, count: count)
        case .uniform(let bound):
            let b = Double(bound)
            for i in 0..<count { values[i] = Float(stream.uniform(-b, b)) }
        case .normal(let sd):
            for i in 0..<count { values[i] = sd * Float(stream.normal()) }
        }
    }
}

// MARK: - Keys

/// FNV-1a 64 of a name: the stable random key of a dense tensor, so its
/// initial values do not depend on which other tensors are registered.
public func stableKey(_ name: String) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in name.utf8 {
        h ^= UInt64(byte)
        h &*= 0x0000_0100_0000_01B3
    }
    return h
}
