// What differs between FIXED, ESAPN, DARTS and AutoEmb at the owners of the
// rows, behind one protocol the trainer drives (Algorithm 1). Each model
// supplies only its hooks, on the owner's view of a table (OwnedRows: the
// owned IDs of the batch and what may be done to them); the lookup, forward,
// backward and every exchange are the trainer's.
import Comm
import Embeddings
import Kernels
import Model

/// The dense weights and communicator a policy works with.
public struct PolicyContext {
    /// The recommendation model's weights (transform chains…).
    public let arena: ParameterArena
    /// The policy's or controller's own weights.
    public let policyArena: ParameterArena
    public let comm: any Communicator

    public init(arena: ParameterArena, policyArena: ParameterArena, comm: any Communicator) {
        self.arena = arena
        self.policyArena = policyArena
        self.comm = comm
    }
}

public protocol SelectionPolicy: AnyObject {
    /// Whether Algorithm 1's policy stage runs on a validation batch.
    var hasValidationStage: Bool { get }
    /// Whether that stage needs the loss's gradient (soft selection learns by
    /// gradient; ESAPN learns from rewards).
    var validationNeedsGradients: Bool { get }

    /// Whether `learn` and `finishModel` read the per-record losses, which the
    /// trainer then routes to the owners first (`owned.forEachRecordValues`).
    var readsRecordLosses: Bool { get }

    /// Policy stage, at the owner, before it answers the validation batch's requests.
    func prepareValidation(_ owned: OwnedRows, context: PolicyContext, batch: Int)
    /// Policy stage, after the validation forward (and backward when asked):
    /// learn from the records' losses or from the extra floats' gradients the
    /// owner received (collective).
    func learn(_ owned: OwnedRows, context: PolicyContext, batch: Int)
    /// Model stage, at the owner, before it answers: choose each ID's
    /// embedding (collective).
    func prepareModel(_ owned: OwnedRows, context: PolicyContext, batch: Int, readStep: Int)
    /// Model stage, after the update, with the records' losses delivered.
    func finishModel(_ owned: OwnedRows)
}
// A policy's per-ID state is a set of columns of the store (RowStore.addColumn),
// registered when the policy is made: it is counted, checkpointed, moved and
// evicted with the ID's row. Its dense weights live in the policy arena.

/// FIXED: every row 128 wide, nothing to decide.
public final class FixedPolicy: SelectionPolicy {
    public init() {}
    public var hasValidationStage: Bool { false }
    public var validationNeedsGradients: Bool { false }
    public var readsRecordLosses: Bool { false }
    public func prepareValidation(_ owned: OwnedRows, context: PolicyContext, batch: Int) {}
    public func learn(_ owned: OwnedRows, context: PolicyContext, batch: Int) {}
    public func prepareModel(_ owned: OwnedRows, context: PolicyContext, batch: Int, readStep: Int) {}
    public func finishModel(_ owned: OwnedRows) {}
}
