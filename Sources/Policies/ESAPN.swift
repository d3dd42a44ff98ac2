// ESAPN at the owner (ARCHITECTURE §3, §4; paper Algorithm 1): one per side.
// The owner of an ID is the only one that sees its state, samples or chooses
// its action, enlarges its row, and keeps its loss history, so decisions do
// not depend on how many ranks there are. Sampled actions come from the
// counter-based generator keyed by (seed, batch, side, global ID).
import Comm
import Embeddings
import Kernels
import Random

public final class ESAPNPolicy {
    public let network: SizePolicyNetwork
    public let history: LossHistory
    let chain: HardSelectionParameters
    let side: EmbeddingSide
    let seed: UInt64
    let sizes: Int
    /// Per owned ID of the current batch: action (0 keep, 1 enlarge) and REINFORCE weight.
    let actions: UnsafeMutablePointer<Int32>
    let weights: UnsafeMutablePointer<Float>

    public init(side: EmbeddingSide, parameters: SizePolicyParameters, state: PolicyState, chain: HardSelectionParameters,
                rewardWindow: Int, localCount: Int, maxBatch: Int, seed: UInt64) {
        self.side = side
        self.chain = chain
        self.seed = seed
        sizes = chain.widths.count
        network = SizePolicyNetwork(parameters: parameters, state: state, sizes: sizes, capacity: maxBatch)
        history = LossHistory(window: rewardWindow, localCount: localCount)
        actions = .allocate(capacity: max(1, maxBatch))
        actions.initialize(repeating: 0, count: max(1, maxBatch))
        weights = .allocate(capacity: max(1, maxBatch))
        weights.initialize(repeating: 0, count: max(1, maxBatch))
    }

    deinit { actions.deallocate(); weights.deallocate() }

    /// Fills the network's states from the owned IDs of `table` and runs it (collective).
    func evaluate(_ table: ShardedTable, policyArena: ParameterArena, comm: any Communicator) {
        let m = table.ownedCount
        for o in 0..<m {
            let local = Int(table.ownedLocal[o])
            network.buckets[o] = Int32(FrequencyBuckets.bucket(table.ownedFrequency[o]))
            network.sizeIndex[o] = Int32(table.store.sizeIndex(of: local)!)
            network.lastLoss[o] = history.last(local)
        }
        network.forward(states: m, arena: policyArena, comm: comm)
    }

    /// The row one size up: W_{k→k+1} e + b, with the side's learned transform (Eq. 1).
    func enlarge(_ old: UnsafePointer<Float>, from k: Int, into new: UnsafeMutablePointer<Float>, arena: ParameterArena) {
        let link = chain.chain[k]
        linearForward(out: new, inp: old, weight: arena.value(link.weight), bias: arena.value(link.bias!),
                      batch: 1, inFeatures: chain.widths[k], outFeatures: chain.widths[k + 1])
    }

    // MARK: - Model stage

    /// Argmax actions for the owned IDs; enlarges rows permanently (the old
    /// slot is freed, the new row starts with zero moments at `readStep`).
    /// Returns how many rows were enlarged.
    @discardableResult
    public func decide(_ table: ShardedTable, arena: ParameterArena, policyArena: ParameterArena,
                       readStep: Int, comm: any Communicator) -> Int {
        evaluate(table, policyArena: policyArena, comm: comm)
        var enlarged = 0
        for o in 0..<table.ownedCount {
            let local = Int(table.ownedLocal[o])
            let k = Int(network.sizeIndex[o])
            guard k + 1 < sizes, network.logits[2 * o + 1] > network.logits[2 * o] else { continue }
            table.store.resize(local, to: k + 1, step: readStep) { old, new in
                enlarge(old, from: k, into: new, arena: arena)
            }
            enlarged += 1
        }
        return enlarged
    }

    /// After the model stage: pushes each record's loss into its ID's FIFO, in stream order (collective).
    public func recordLosses(_ table: ShardedTable, losses: UnsafePointer<Float>, records n: Int) {
        table.sendRecordValues(losses, records: n) { o, values, count in
            let local = Int(table.ownedLocal[o])
            for j in 0..<count { history.push(local, values[j]) }
        }
    }

    // MARK: - Policy stage (validation batch)

    /// Samples actions for the owned IDs of the validation batch and makes the
    /// sampled enlargements visible to requesters as overrides, storing nothing.
    public func sample(_ table: ShardedTable, arena: ParameterArena, policyArena: ParameterArena,
                       batch: Int, comm: any Communicator) {
        evaluate(table, policyArena: policyArena, comm: comm)
        for o in 0..<table.ownedCount {
            let local = Int(table.ownedLocal[o])
            let k = Int(network.sizeIndex[o])
            actions[o] = 0
            guard k + 1 < sizes else { continue }
            var rng = RandomStream(seed: seed, purpose: .policyAction, UInt64(batch),
                                   UInt64(side.rawValue) << 40 | UInt64(table.sharding.global(of: local)))
            if Float(rng.uniform()) < network.probabilities[2 * o + 1] {
                actions[o] = 1
                enlarge(table.store.row(local).values, from: k, into: table.overrideRows + o * table.maxWidth, arena: arena)
                table.overrideSize[o] = Int32(k + 1)
            }
        }
    }

    /// REINFORCE on the validation losses: each ID's weight is Σ over its
    /// records of (mean of its last T losses − loss) (Eq. 2); adds the
    /// gradient of Σ weight × CE(logits, action) into `policyArena` (collective).
    public func reinforce(_ table: ShardedTable, losses: UnsafePointer<Float>, records n: Int,
                          policyArena: ParameterArena, comm: any Communicator) {
        let m = table.ownedCount
        weights.update(repeating: 0, count: m)
        table.sendRecordValues(losses, records: n) { o, values, count in
            guard let baseline = history.mean(Int(table.ownedLocal[o])) else { return }
            var w: Float = 0
            for j in 0..<count { w += baseline - values[j] }
            weights[o] += w
        }
        // A row at the largest width had no choice: it teaches the policy nothing.
        for o in 0..<m where Int(network.sizeIndex[o]) + 1 >= sizes { weights[o] = 0 }
        network.backward(actions: actions, weights: weights, arena: policyArena, comm: comm)
    }
}
