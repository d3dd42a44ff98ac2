// A few floats per ID that travel with its row and whose gradient comes back
// with the row's, owned beside the rows but not understood by them: soft
// selection's six weight logits (DARTS' α, AutoEmb's current weights). The
// table sends and sums them; the policy that owns them says what they mean.
import Kernels

public final class ExtraState {
    /// Floats per ID (0: nothing travels beside the rows).
    public let width: Int
    public let localCount: Int
    private let values: UnsafeMutablePointer<Float>

    public init(width: Int, localCount: Int) {
        precondition(width >= 0, "extra state width must be ≥ 0, got \(width)")
        self.width = width
        self.localCount = localCount
        values = .allocate(capacity: max(1, localCount * width))
        values.initialize(repeating: 0, count: max(1, localCount * width))
    }

    deinit { values.deallocate() }

    /// Every local ID's floats, for checkpoints (none when the width is 0).
    public var stateBuffers: [StateBuffer] {
        width == 0 ? [] : [StateBuffer("extra", .f32, shape: [max(1, localCount * width)], perID: width, values)]
    }

    /// The `width` floats of local ID `local` (zero at first).
    @inline(__always)
    public func of(_ local: Int) -> UnsafeMutablePointer<Float> { values + local * width }
}
