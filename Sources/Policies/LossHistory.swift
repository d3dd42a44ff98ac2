// Each owned ID's last T per-record losses (Eq. 2's FIFO), pushed in stream
// order by the owner: two per-ID columns of the store (a ring of T floats and
// its count), so the history lives and goes with the ID's row and costs
// nothing for IDs this shard does not hold.
import Embeddings
import Kernels

public final class LossHistory {
    public let window: Int
    private let losses: IDColumn
    /// Losses pushed per ID, kept below 2T (same value mod T, same min with T).
    private let counts: IDColumn

    public init(window: Int, store: RowStore) {
        precondition(window > 0, "the reward window must be positive, got \(window)")
        self.window = window
        losses = store.addColumn("loss_history", .f32, width: window)
        counts = store.addColumn("loss_count", .i32, width: 1)
    }

    @inline(__always)
    public func push(_ entry: Int, _ loss: Float) {
        let count = counts.ints(entry)
        let c = Int(count.pointee)
        losses.floats(entry)[c % window] = loss
        // Only min(count, T) and count mod T matter: fold the count back by T once it passes 2T.
        count.pointee = Int32(c + 1 >= 2 * window ? c + 1 - window : c + 1)
    }

    /// Mean of the last min(T, pushed) losses, or nil when none was pushed.
    @inline(__always)
    public func mean(_ entry: Int) -> Float? {
        let c = min(Int(counts.ints(entry).pointee), window)
        guard c > 0 else { return nil }
        let ring = losses.floats(entry)
        var s: Float = 0
        for j in 0..<c { s += ring[j] }
        return s / Float(c)
    }

    /// The most recent loss, or 0 when none was pushed.
    @inline(__always)
    public func last(_ entry: Int) -> Float {
        let c = Int(counts.ints(entry).pointee)
        return c == 0 ? 0 : losses.floats(entry)[(c - 1) % window]
    }
}
