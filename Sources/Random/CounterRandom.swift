// A counter-based random generator: every draw is a pure function of
// (seed, purpose, key1, key2, counter), so a value does not depend on which
// rank draws it, in what order, or how many ranks there are
// (ARCHITECTURE §4). The mixing function is SplitMix64's finaliser applied
// to a combination of the keys; it passes the usual avalanche tests and is
// ample for initialisation, sampling and synthetic data.

/// What a stream of random numbers is for; part of its key, so two purposes
/// never share numbers.
public enum RandomPurpose: UInt64, Sendable {
    case denseInit = 1
    case rowInit = 2
    case policyAction = 3
    case validationSample = 4
    case shuffle = 5
    case synthUsers = 6
    case synthItems = 7
    case synthRecords = 8
    case synthLatent = 9
    case diagnosis = 10
    case test = 99
}

@inline(__always)
public func splitMix64(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// A sequence of random numbers identified by its keys. Copying it copies
/// the position; two streams with the same keys give the same numbers.
public struct RandomStream: Sendable {
    @usableFromInline var key: UInt64
    @usableFromInline var counter: UInt64 = 0

    public init(seed: UInt64, purpose: RandomPurpose, _ key1: UInt64 = 0, _ key2: UInt64 = 0) {
        var k = splitMix64(seed ^ 0x6A09_E667_F3BC_C908)
        k = splitMix64(k ^ purpose.rawValue)
        k = splitMix64(k ^ key1)
        k = splitMix64(k ^ (key2 &* 0x9E37_79B9_7F4A_7C15))
        key = k
    }

    /// The next 64 random bits.
    @inlinable @inline(__always)
    public mutating func next() -> UInt64 {
        counter &+= 1
        return splitMix64(key ^ (counter &* 0xD1B5_4A32_D192_ED03))
    }

    /// Uniform in [0, 1), 53 random bits.
    @inlinable @inline(__always)
    public mutating func uniform() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// Uniform in [low, high).
    @inlinable @inline(__always)
    public mutating func uniform(_ low: Double, _ high: Double) -> Double {
        low + (high - low) * uniform()
    }

    /// Uniform integer in 0..<bound (bound > 0), by Lemire's multiply-shift.
    @inlinable @inline(__always)
    public mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0, "below(_:) needs a positive bound, got \(bound)")
        return Int(next().multipliedFullWidth(by: UInt64(bound)).high)
    }

    /// Standard normal, by Box–Muller (one value per call; the second is dropped
    /// so that a draw never depends on an earlier call's parity).
    @inlinable
    public mutating func normal() -> Double {
        var u1 = uniform()
        if u1 < 1e-300 { u1 = 1e-300 }
        let u2 = uniform()
        return (-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2)
    }
}

// Foundation-free log/cos for the generator (Glibc's, through the stdlib's math shims).
#if canImport(Glibc)
import Glibc
@usableFromInline func _log(_ x: Double) -> Double { Glibc.log(x) }
@usableFromInline func _cos(_ x: Double) -> Double { Glibc.cos(x) }
#else
import Darwin
@usableFromInline func _log(_ x: Double) -> Double { Darwin.log(x) }
@usableFromInline func _cos(_ x: Double) -> Double { Darwin.cos(x) }
#endif
