// ESAPN at the owner (ARCHITECTURE §3, §4; paper Algorithm 1): one per side.
// The owner of an ID is the only one that sees its state, samples or chooses
// its action, enlarges its row, and keeps its loss history, so decisions do
// not depend on how many ranks there are. Sampled actions come from the
// counter-based generator keyed by (seed, batch, side, global ID).
import Comm
import Embeddings
import Kernels
import Model
import Random

public final class ESAPNPolicy: SelectionPolicy {
    public let network: StateNetwork
    public let history: LossHistory
    public let state: PolicyState
    let chain: HardSelectionParameters
    let side: EmbeddingSide
    let seed: UInt64
    let sizes: Int
    /// Per owned ID of the current batch: size index, action (0 keep, 1 enlarge),
    /// REINFORCE weight, softmax probabilities and dlogits.
    let sizeIndex: UnsafeMutablePointer<Int32>
    let actions: UnsafeMutablePointer<Int32>
    let weights: UnsafeMutablePointer<Float>
    let probabilities: UnsafeMutablePointer<Float>
    let dlogits: UnsafeMutablePointer<Float>
    /// The model stage's wanted enlargements: owned index and margin, in the order they are granted.
    let grantOrder: UnsafeMutablePointer<Int32>
    let margins: UnsafeMutablePointer<Float>

    /// Registers the policy network's weights in `layout`.
    public static func parameters(side: EmbeddingSide, sizes: Int, state: PolicyState, hidden: Int,
                                  layout: inout ParameterLayout) -> StateNetworkParameters {
        StateNetworkParameters(name: "\(side.singular).policy",
                               extra: (state.size ? sizes : 0) + (state.lastLoss ? 1 : 0),
                               hidden: hidden, outputs: 2, layout: &layout)
    }

    public init(side: EmbeddingSide, parameters: StateNetworkParameters, state: PolicyState, chain: HardSelectionParameters,
                rewardWindow: Int, store: RowStore, maxBatch: Int, seed: UInt64) {
        self.side = side
        self.state = state
        self.chain = chain
        self.seed = seed
        sizes = chain.widths.count
        network = StateNetwork(parameters: parameters, capacity: maxBatch)
        history = LossHistory(window: rewardWindow, store: store)
        let n = max(1, maxBatch)
        sizeIndex = .allocate(capacity: n); sizeIndex.initialize(repeating: 0, count: n)
        actions = .allocate(capacity: n); actions.initialize(repeating: 0, count: n)
        weights = .allocate(capacity: n); weights.initialize(repeating: 0, count: n)
        probabilities = .allocate(capacity: 2 * n); probabilities.initialize(repeating: 0, count: 2 * n)
        dlogits = .allocate(capacity: 2 * n); dlogits.initialize(repeating: 0, count: 2 * n)
        grantOrder = .allocate(capacity: n); grantOrder.initialize(repeating: 0, count: n)
        margins = .allocate(capacity: n); margins.initialize(repeating: 0, count: n)
    }

    deinit {
        sizeIndex.deallocate(); actions.deallocate(); weights.deallocate(); probabilities.deallocate(); dlogits.deallocate()
        grantOrder.deallocate(); margins.deallocate()
    }

    /// The action sampled for owned ID `o` in this batch's policy stage (0 keep, 1 enlarge).
    public func action(_ o: Int) -> Int { Int(actions[o]) }
    /// The probability the policy gave owned ID `o`'s action `a` when it last evaluated it.
    public func probability(_ o: Int, action a: Int) -> Float { probabilities[2 * o + a] }

    public var hasValidationStage: Bool { true }
    public var validationNeedsGradients: Bool { false }
    public var readsRecordLosses: Bool { true }

    /// Fills the states of the owned IDs and runs the network (collective).
    func evaluate(_ owned: OwnedRows, context: PolicyContext) {
        let m = owned.count
        let E = network.parameters.extra
        for o in 0..<m {
            let k = owned.sizeIndex(o)
            sizeIndex[o] = Int32(k)
            network.buckets[o] = Int32(FrequencyBuckets.bucket(owned.frequency(o)))
            let x = network.extra + o * E
            var c = 0
            if state.size {
                x.update(repeating: 0, count: sizes)
                x[k] = 1
                c = sizes
            }
            if state.lastLoss { x[c] = history.last(owned.entry(o)) }
        }
        network.forward(states: m, arena: context.policyArena, comm: context.comm)
        for o in 0..<m { softmax(out: probabilities + 2 * o, inp: network.logits + 2 * o, count: 2) }
    }

    /// The row one size up: W_{k→k+1} e + b, with the side's learned transform (Eq. 1).
    func enlarge(_ old: UnsafePointer<Float>, from k: Int, into new: UnsafeMutablePointer<Float>, arena: ParameterArena) {
        let link = chain.chain[k]
        linearForward(out: new, inp: old, weight: arena.value(link.weight), bias: arena.value(link.bias!),
                      batch: 1, inFeatures: chain.widths[k], outFeatures: chain.widths[k + 1])
    }

    // MARK: - Model stage

    /// Argmax actions; enlarges rows permanently (the old slot is freed, the
    /// new row starts with zero moments at `readStep`). Under a shard budget
    /// the enlargements are granted by margin (logit of enlarging minus logit
    /// of keeping, largest first; ties in owned order) while they fit; the
    /// rest are refused and counted.
    public func prepareModel(_ owned: OwnedRows, context: PolicyContext, batch: Int, readStep: Int) {
        evaluate(owned, context: context)
        var wanted = 0
        for o in 0..<owned.count {
            let k = Int(sizeIndex[o])
            guard k + 1 < sizes, network.logits[2 * o + 1] > network.logits[2 * o] else { continue }
            grantOrder[wanted] = Int32(o)
            // Under a budget, margin per float the enlargement adds: cheap steps of many IDs before dear steps of few.
            margins[wanted] = (network.logits[2 * o + 1] - network.logits[2 * o]) / Float(chain.widths[k + 1] - chain.widths[k])
            wanted += 1
        }
        if owned.budget != nil { sortByMargin(wanted) }
        for i in 0..<wanted {
            let o = Int(grantOrder[i]), k = Int(sizeIndex[o])
            guard owned.fits(o, size: k + 1) else { owned.refuse(o); continue }
            owned.resize(o, to: k + 1, step: readStep) { old, new in
                enlarge(old, from: k, into: new, arena: context.arena)
            }
        }
    }

    /// Sorts the first n (owned index, margin) pairs by margin, largest first,
    /// ties by owned index; in place (heapsort), allocating nothing.
    func sortByMargin(_ n: Int) {
        guard n > 1 else { return }
        for start in stride(from: n / 2 - 1, through: 0, by: -1) { sift(start, n) }
        for end in stride(from: n - 1, to: 0, by: -1) {
            swapPairs(0, end)
            sift(0, end)
        }
    }

    /// Whether pair a is granted after pair b: a smaller margin, or the same and a later owned index.
    @inline(__always)
    private func goesAfter(_ a: Int, _ b: Int) -> Bool {
        margins[a] < margins[b] || (margins[a] == margins[b] && grantOrder[a] > grantOrder[b])
    }

    @inline(__always)
    private func swapPairs(_ a: Int, _ b: Int) {
        let w = margins[a]; margins[a] = margins[b]; margins[b] = w
        let o = grantOrder[a]; grantOrder[a] = grantOrder[b]; grantOrder[b] = o
    }

    /// Restores the heap below `start` within 0..<end; its root is the pair granted last.
    private func sift(_ start: Int, _ end: Int) {
        var root = start
        while 2 * root + 1 < end {
            var child = 2 * root + 1
            if child + 1 < end && goesAfter(child + 1, child) { child += 1 }
            guard goesAfter(child, root) else { return }
            swapPairs(root, child)
            root = child
        }
    }

    /// Pushes each record's loss into its ID's FIFO, in stream order.
    public func finishModel(_ owned: OwnedRows) {
        owned.forEachRecordValues { o, values, count in
            let entry = owned.entry(o)
            for j in 0..<count { history.push(entry, values[j]) }
        }
    }

    // MARK: - Policy stage

    /// Samples actions and makes the sampled enlargements visible to
    /// requesters as temporary rows, storing nothing.
    public func prepareValidation(_ owned: OwnedRows, context: PolicyContext, batch: Int) {
        evaluate(owned, context: context)
        for o in 0..<owned.count {
            let k = Int(sizeIndex[o])
            actions[o] = 0
            guard k + 1 < sizes else { continue }
            let key = owned.drawKey(o)
            var rng = RandomStream(seed: seed, purpose: .policyAction, UInt64(batch), UInt64(side.rawValue) << 40 | UInt64(key))
            if Float(rng.uniform()) < probabilities[2 * o + 1] {
                actions[o] = 1
                enlarge(owned.row(o), from: k, into: owned.serveTemporary(o, size: k + 1), arena: context.arena)
            }
        }
    }

    /// REINFORCE: each ID's weight is Σ over its records of (mean of its last
    /// T losses − loss) (Eq. 2); adds the gradient of Σ weight × CE(logits,
    /// action) into the policy's weights (collective).
    public func learn(_ owned: OwnedRows, context: PolicyContext, batch: Int) {
        let m = owned.count
        weights.update(repeating: 0, count: m)
        owned.forEachRecordValues { o, values, count in
            guard let baseline = history.mean(owned.entry(o)) else { return }
            var w: Float = 0
            for j in 0..<count { w += baseline - values[j] }
            weights[o] += w
        }
        // A row at the largest width had no choice: it teaches the policy nothing.
        for o in 0..<m where Int(sizeIndex[o]) + 1 >= sizes { weights[o] = 0 }
        dlogits.update(repeating: 0, count: 2 * m)
        softmaxCrossEntropyBackward(dlogits: dlogits, probs: probabilities, labels: actions, weights: weights,
                                    scale: 1, batch: m, classes: 2)
        network.backward(dlogits: dlogits, arena: context.policyArena, comm: context.comm)
    }
}

