// The soft-selection baselines at the owners (ARCHITECTURE §1). Both store
// every candidate embedding (the row) and six weight logits per ID (the ID's
// extra state, which travels with its row); they differ in where the logits
// come from:
// - DARTS: the logits are per-ID architecture weights α, trained on the
//   validation batch's loss gradient with Adam at the policy learning rate
//   (catch-up Adam, like the rows, so untouched α move as dense Adam would);
// - AutoEmb: a controller on the ID's state (frequency embedding and its
//   current weights) outputs the logits; the controller is trained on the
//   validation batch's loss gradient.
import Comm
import Embeddings
import Kernels
import Model

public final class DARTSPolicy: SelectionPolicy {
    let adam: RowAdam
    let K: Int
    /// α's Adam moments and the policy step each ID's α was last brought to
    /// (per-ID columns of the store; α itself is the IDs' extra state).
    let m, v, lastStep: IDColumn

    public init(candidates: Int, store: RowStore, learningRate: Double, optimizer: RowOptimizerKind) {
        K = candidates
        adam = RowAdam(kind: optimizer, lr: learningRate)
        m = store.addColumn("alpha_adam_m", .f32, width: candidates)
        v = store.addColumn("alpha_adam_v", .f32, width: candidates)
        lastStep = store.addColumn("alpha_last_step", .i32, width: 1)
    }

    public var hasValidationStage: Bool { true }
    public var validationNeedsGradients: Bool { true }
    public var readsRecordLosses: Bool { false }

    /// Brings the α of the owned IDs to policy step `step` before they are read.
    func catchUp(_ owned: OwnedRows, to step: Int) {
        for o in 0..<owned.count {
            let e = owned.entry(o)
            let from = Int(lastStep.ints(e).pointee)
            guard from < step else { continue }
            adam.catchUp(values: owned.extra(o), m: m.floats(e), v: v.floats(e), width: K, lastStep: from, to: step)
            lastStep.ints(e).pointee = Int32(step)
        }
    }

    public func prepareValidation(_ owned: OwnedRows, context: PolicyContext, batch: Int) {
        catchUp(owned, to: batch - 1)
    }

    /// One Adam step (policy step `batch`) on each owned α with the gradient its owner received.
    public func learn(_ owned: OwnedRows, context: PolicyContext, batch: Int) {
        for o in 0..<owned.count {
            let e = owned.entry(o)
            adam.step(values: owned.extra(o), m: m.floats(e), v: v.floats(e), grads: owned.extraGradient(o), width: K, step: batch)
            lastStep.ints(e).pointee = Int32(batch)
        }
    }

    public func prepareModel(_ owned: OwnedRows, context: PolicyContext, batch: Int, readStep: Int) {
        catchUp(owned, to: batch)
    }

    public func finishModel(_ owned: OwnedRows) {}
}

public final class AutoEmbPolicy: SelectionPolicy {
    public let controller: StateNetwork
    let K: Int

    /// Registers the controller's weights in `layout`: state = frequency embedding + current weights (K).
    public static func parameters(side: EmbeddingSide, candidates: Int, hidden: Int,
                                  layout: inout ParameterLayout) -> StateNetworkParameters {
        StateNetworkParameters(name: "\(side.singular).controller", extra: candidates,
                               hidden: hidden, outputs: candidates, layout: &layout)
    }

    public init(parameters: StateNetworkParameters, maxBatch: Int) {
        controller = StateNetwork(parameters: parameters, capacity: maxBatch)
        K = parameters.extra
    }

    public var hasValidationStage: Bool { true }
    public var validationNeedsGradients: Bool { true }
    public var readsRecordLosses: Bool { false }

    /// Runs the controller on the owned IDs and stores its logits as their
    /// current weights, which the requesters receive (collective).
    func assignWeights(_ owned: OwnedRows, context: PolicyContext) {
        let m = owned.count
        for o in 0..<m {
            controller.buckets[o] = Int32(FrequencyBuckets.bucket(owned.frequency(o)))
            // The current weights: softmax of the stored logits (uniform at first).
            softmax(out: controller.extra + o * K, inp: owned.extra(o), count: K)
        }
        controller.forward(states: m, arena: context.policyArena, comm: context.comm)
        for o in 0..<m { owned.extra(o).update(from: controller.logits + o * K, count: K) }
    }

    public func prepareValidation(_ owned: OwnedRows, context: PolicyContext, batch: Int) {
        assignWeights(owned, context: context)
    }

    /// Back-propagates the logits' gradient (summed at the owner over all
    /// requesters) through the controller (collective).
    public func learn(_ owned: OwnedRows, context: PolicyContext, batch: Int) {
        controller.backward(dlogits: owned.extraGradients, arena: context.policyArena, comm: context.comm)
    }

    public func prepareModel(_ owned: OwnedRows, context: PolicyContext, batch: Int, readStep: Int) {
        assignWeights(owned, context: context)
    }

    public func finishModel(_ owned: OwnedRows) {}
}

