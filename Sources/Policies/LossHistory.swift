// Each owned ID's last T per-record losses (Eq. 2's FIFO), pushed in stream
// order by the owner. Ring buffers in one allocation: T floats per local ID.
import Kernels

public final class LossHistory {
    public let window: Int
    public let localCount: Int
    private let losses: UnsafeMutablePointer<Float>
    /// Losses pushed per ID, kept below 2T (same value mod T, same min with T).
    private let counts: UnsafeMutablePointer<Int32>

    public init(window: Int, localCount: Int) {
        precondition(window > 0, "the reward window must be positive, got \(window)")
        self.window = window
        self.localCount = localCount
        losses = .allocate(capacity: max(1, localCount * window))
        losses.initialize(repeating: 0, count: max(1, localCount * window))
        counts = .allocate(capacity: max(1, localCount))
        counts.initialize(repeating: 0, count: max(1, localCount))
    }

    deinit { losses.deallocate(); counts.deallocate() }

    @inline(__always)
    public func push(_ local: Int, _ loss: Float) {
        let c = Int(counts[local])
        losses[local * window + c % window] = loss
        // Only min(count, T) and count mod T matter: fold the count back by T once it passes 2T.
        counts[local] = Int32(c + 1 >= 2 * window ? c + 1 - window : c + 1)
    }

    /// Mean of the last min(T, pushed) losses, or nil when none was pushed.
    @inline(__always)
    public func mean(_ local: Int) -> Float? {
        let c = min(Int(counts[local]), window)
        guard c > 0 else { return nil }
        var s: Float = 0
        for j in 0..<c { s += losses[local * window + j] }
        return s / Float(c)
    }

    /// The most recent loss, or 0 when none was pushed.
    @inline(__always)
    public func last(_ local: Int) -> Float {
        let c = Int(counts[local])
        return c == 0 ? 0 : losses[local * window + (c - 1) % window]
    }

    /// The rings and their counts, for checkpoints.
    public var stateBuffers: [StateBuffer] {
        [StateBuffer("loss_history", .f32, shape: [max(1, localCount * window)], perID: window, losses),
         StateBuffer("loss_count", .i32, shape: [max(1, localCount)], perID: 1, counts)]
    }

    public var residentBytes: Int { max(1, localCount * window) * 4 + max(1, localCount) * 4 }
}
