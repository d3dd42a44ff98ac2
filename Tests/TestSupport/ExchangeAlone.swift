// One table's exchange steps on their own, for tests that drive a table
// without the trainer: each step is BatchExchange's (the one path) over this
// table alone. A test helper: it makes an exchange per call, so it allocates.
import Comm
import Embeddings

extension ShardedTable {
    private var alone: BatchExchange { BatchExchange(tables: [self], comm: communicator) }

    /// Requests for this rank's slice (`ids[k]`, frequency `frequencies[k]`); owners merge them.
    public func request(ids: UnsafePointer<UInt32>, frequencies: UnsafePointer<UInt32>, count n: Int) {
        alone.request(ids: [UnsafeMutablePointer(mutating: ids)], frequencies: [UnsafeMutablePointer(mutating: frequencies)], count: n)
    }

    /// Owners answer every request with its row.
    public func answer() { alone.answer() }

    /// The rows' gradients back to their owners, summed there.
    public func returnGradients() { alone.returnGradients() }

    /// Per-record values to the owners of the records' IDs.
    public func sendRecordValues(_ values: UnsafePointer<Float>, records n: Int) {
        alone.sendRecordValues(values, records: n) { _ in true }
    }
}
