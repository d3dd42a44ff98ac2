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
    let localCount: Int
    /// α's Adam moments and the policy step each ID's α was last brought to.
    let m, v: UnsafeMutablePointer<Float>
    let lastStep: UnsafeMutablePointer<Int32>

    public init(candidates: Int, localCount: Int, learningRate: Double, optimizer: RowOptimizerKind) {
        K = candidates
        self.localCount = localCount
        adam = RowAdam(kind: optimizer, lr: learningRate)
        let n = max(1, localCount * candidates)
        m = .allocate(capacity: n); m.initialize(repeating: 0, count: n)
        v = .allocate(capacity: n); v.initialize(repeating: 0, count: n)
        lastStep = .allocate(capacity: max(1, localCount)); lastStep.initialize(repeating: 0, count: max(1, localCount))
    }

    deinit { m.deallocate(); v.deallocate(); lastStep.deallocate() }

    public var hasValidationStage: Bool { true }
    public var validationNeedsGradients: Bool { true }
    public var readsRecordLosses: Bool { false }
    /// α, its two moments, and its last step.
    public var residentBytes: Int { localCount * (3 * K * 4 + 4) }
    /// α's moments and last steps (α itself is the IDs' extra state).
    public var stateBuffers: [StateBuffer] {
        [StateBuffer("alpha_adam_m", .f32, shape: [max(1, localCount * K)], perID: K, m),
         StateBuffer("alpha_adam_v", .f32, shape: [max(1, localCount * K)], perID: K, v),
         StateBuffer("alpha_last_step", .i32, shape: [max(1, localCount)], perID: 1, lastStep)]
    }

    /// Brings the α of the owned IDs to policy step `step` before they are read.
    func catchUp(_ owned: OwnedRows, to step: Int) {
        for o in 0..<owned.count {
            let local = owned.local(o)
            let from = Int(lastStep[local])
            guard from < step else { continue }
            adam.catchUp(values: owned.extra(o), m: m + local * K, v: v + local * K,
                         width: K, lastStep: from, to: step)
            lastStep[local] = Int32(step)
        }
    }

    public func prepareValidation(_ owned: OwnedRows, context: PolicyContext, batch: Int) {
        catchUp(owned, to: batch - 1)
    }

    /// One Adam step (policy step `batch`) on each owned α with the gradient its owner received.
    public func learn(_ owned: OwnedRows, context: PolicyContext, batch: Int) {
        for o in 0..<owned.count {
            let local = owned.local(o)
            adam.step(values: owned.extra(o), m: m + local * K, v: v + local * K,
                      grads: owned.extraGradient(o), width: K, step: batch)
            lastStep[local] = Int32(batch)
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
    let localCount: Int

    /// Registers the controller's weights in `layout`: state = frequency embedding + current weights (K).
    public static func parameters(side: EmbeddingSide, candidates: Int, hidden: Int,
                                  layout: inout ParameterLayout) -> StateNetworkParameters {
        StateNetworkParameters(name: "\(side.singular).controller", extra: candidates,
                               hidden: hidden, outputs: candidates, layout: &layout)
    }

    public init(parameters: StateNetworkParameters, localCount: Int, maxBatch: Int) {
        controller = StateNetwork(parameters: parameters, capacity: maxBatch)
        K = parameters.extra
        self.localCount = localCount
    }

    public var hasValidationStage: Bool { true }
    public var validationNeedsGradients: Bool { true }
    public var readsRecordLosses: Bool { false }
    /// The current weights' logits of every ID.
    public var residentBytes: Int { localCount * K * 4 }
    /// Nothing beyond the IDs' extra state and the controller's weights.
    public var stateBuffers: [StateBuffer] { [] }

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

