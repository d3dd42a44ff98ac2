// How a model turns the rows its owners sent into each record's 128-wide
// embedding (after BatchNorm and tanh), and back. Hard selection (FIXED,
// ESAPN) and soft selection (DARTS, AutoEmb) are the two kinds.
import Comm
import Embeddings
import Kernels

public protocol EmbeddingFormer: AnyObject {
    /// (records, 128): the embeddings `forward` formed.
    var activated: UnsafeMutablePointer<Float> { get }
    /// (records, 128): d(activated), written by the caller before `backward`.
    var dactivated: UnsafeMutablePointer<Float> { get }
    /// Forms `activated` for the `rows.records` records of this rank's slice
    /// from the rows their owners sent (collective: BatchNorm is synchronised).
    func forward(rows: ReceivedRows, arena: ParameterArena, comm: any Communicator)
    /// Adds dense gradients into `arena` and writes the rows' (and extra
    /// floats') gradients into `rows`' gradient slots (collective).
    func backward(rows: ReceivedRows, arena: ParameterArena, comm: any Communicator)
}

extension HardSelectionEmbedding: EmbeddingFormer {}
