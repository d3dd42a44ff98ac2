// How an owner updates the rows it holds. The arithmetic lives in Kernels
// (catch-up and lazy Adam); this protocol is what the sharded table calls.

public protocol RowOptimizer: AnyObject {
    /// Brings a row whose state is at global step `from` to step `to`, as if
    /// it had received zero gradients in between (a no-op for lazy Adam).
    func catchUp(values: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
                 width: Int, from: Int, to: Int)
    /// Applies global step `t` with gradient `grad` to a row already at step t − 1.
    func step(values: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
              grad: UnsafePointer<Float>, width: Int, t: Int)
}
