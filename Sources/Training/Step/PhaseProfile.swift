// Where a batch's time goes (`esapn train --profile`): wall time per phase of
// Algorithm 1, exclusive (a phase timed inside another counts for the outer
// one only, so the phases add up to the batches' time). Off, each timer is one
// predictable branch; nothing is read from the clock.
import Model
#if canImport(Glibc)
import Glibc
#endif

public enum Phase: Int, CaseIterable, Sendable {
    /// Algorithm 1, lines 2–6, whole: the validation batch's lookup, forward
    /// (and backward), the policies' learning and their all-reduce.
    case policyStage
    /// The model stage's exchanges: requests, rows back, gradients and values to owners.
    case exchange
    /// Owners create, catch up and choose rows (ESAPN's argmax and enlargement).
    case decide
    case forward
    case backward
    /// The dense gradients' all-reduce.
    case allReduce
    case rowOptimizer
    case denseAdam
    /// Scoring the batch and the sizes digest.
    case metrics

    public var name: String {
        ["policy stage", "exchanges", "owners decide", "forward", "backward", "dense all-reduce", "row optimizer",
         "dense Adam", "metrics"][rawValue]
    }
}

public final class PhaseProfile {
    public let enabled: Bool
    /// Seconds per phase, this rank.
    public private(set) var seconds = [Double](repeating: 0, count: Phase.allCases.count)
    private var depth = 0

    public init(enabled: Bool) { self.enabled = enabled }

    @inline(__always)
    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    /// Runs `body`, adding its wall time to `phase` unless it runs inside another timed phase.
    @inline(__always)
    public func time<T>(_ phase: Phase, _ body: () throws -> T) rethrows -> T {
        guard enabled, depth == 0 else { return try body() }
        depth += 1
        let start = Self.now()
        defer {
            seconds[phase.rawValue] += Self.now() - start
            depth -= 1
        }
        return try body()
    }
}

extension Duration {
    /// The duration in seconds.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
