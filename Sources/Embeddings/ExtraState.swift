// A few floats per ID that travel with its row and whose gradient comes back
// with the row's, kept as a per-ID column of the store (so they live and go
// with the row) but not understood by it: soft selection's six weight logits
// (DARTS' α, AutoEmb's current weights). The table sends and sums them; the
// policy that owns them says what they mean.
import Kernels

public final class ExtraState {
    /// Floats per ID (0: nothing travels beside the rows).
    public let width: Int
    private let column: IDColumn?
    private let none = UnsafeMutablePointer<Float>.allocate(capacity: 1)

    public init(width: Int, store: RowStore) {
        precondition(width >= 0, "extra state width must be ≥ 0, got \(width)")
        self.width = width
        column = width == 0 ? nil : store.addColumn("extra", .f32, width: width)
    }

    deinit { none.deallocate() }

    /// The `width` floats of the ID at `entry` (zero when its row is created).
    @inline(__always)
    public func of(_ entry: Int) -> UnsafeMutablePointer<Float> { column?.floats(entry) ?? none }
}
