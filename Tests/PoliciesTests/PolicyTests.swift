// The policies on the owner's view (OwnedRows) with no table or MPI: the sign
// of ESAPN's REINFORCE update, that it enlarges rows when enlarging pays (and
// not when keeping does), DARTS' and AutoEmb's use of the extra state, the
// loss history's ring across its wrap-around, and the frequency buckets.
import Comm
import Embeddings
import Kernels
import Model
import Policies
import Random
import TestSupport
import XCTest

final class PolicyTests: XCTestCase {
    /// ESAPN on one side with candidate widths 2, 4, 8, its owned IDs made locally.
    final class ESAPNFixture {
        let widths = [2, 4, 8]
        let owned: OwnedRows
        let policy: ESAPNPolicy
        let context: PolicyContext
        let policyArena: ParameterArena
        let chain: HardSelectionParameters
        let window = 5

        init(frequencies: [UInt32], seed: UInt64 = 3) {
            owned = OwnedRows(side: .user, sharding: Sharding(rank: 0, ranks: 1), widths: widths,
                              totalIDs: frequencies.count, extraWidth: 0, seed: seed, capacity: frequencies.count)
            var layout = ParameterLayout(), policyLayout = ParameterLayout()
            chain = HardSelectionParameters(side: .user, widths: widths, layout: &layout)
            let network = ESAPNPolicy.parameters(side: .user, sizes: widths.count, state: PolicyState(), hidden: 16,
                                                 layout: &policyLayout)
            policy = ESAPNPolicy(side: .user, parameters: network, state: PolicyState(), chain: chain, rewardWindow: window,
                                 store: owned.store, maxBatch: frequencies.count, seed: seed)
            owned.receiveLocally(requests: frequencies.enumerated().map { ($0.offset, $0.element) }, optimizer: RowAdam(lr: 1e-3))
            policyArena = ParameterArena(layout: policyLayout, seed: seed)
            context = PolicyContext(arena: ParameterArena(layout: layout, seed: seed), policyArena: policyArena,
                                    comm: LocalCommunicator())
            // Every ID's baseline: the mean of its last T losses, 1.
            for o in 0..<owned.count { for _ in 0..<window { policy.history.push(owned.entry(o), 1) } }
        }

        /// One policy stage at `batch`: sample, then learn from `reward(o, action)`
        /// (each owned ID one record whose loss is baseline − reward), one Adam step.
        func policyStep(batch: Int, lr: Double = 1e-2, reward: (Int, Int) -> Float) {
            policy.prepareValidation(owned, context: context, batch: batch)
            owned.receiveValuesLocally((0..<owned.count).map { o in [1 - reward(o, policy.action(o))] })
            policyArena.zeroGradients()
            policy.learn(owned, context: context, batch: batch)
            policyArena.adamStep(lr: lr, step: batch)
            owned.clearTemporaryRows()
        }
    }

    /// One ID rewarded (the others' rewards are 0, so they teach nothing):
    /// after one step, the probability of the action it sampled is higher
    /// with a positive reward and lower with a negative one.
    func testReinforceFollowsTheSignOfTheReward() {
        for sign: Float in [1, -1] {
            for batch in 1...4 {
                let f = ESAPNFixture(frequencies: [3, 3, 3, 3])
                f.policy.prepareValidation(f.owned, context: f.context, batch: batch)
                let a = f.policy.action(0)
                let before = f.policy.probability(0, action: a)
                f.owned.clearTemporaryRows()
                f.policyStep(batch: batch) { o, _ in o == 0 ? sign : 0 }
                f.policy.prepareValidation(f.owned, context: f.context, batch: batch)
                let after = f.policy.probability(0, action: a)
                if sign > 0 {
                    XCTAssertGreaterThan(after, before, "reward +1 for action \(a) (batch \(batch)) must raise its probability")
                } else {
                    XCTAssertLessThan(after, before, "reward −1 for action \(a) (batch \(batch)) must lower its probability")
                }
            }
        }
    }

    /// When enlarging pays (+1 for enlarge, −1 for keep), the policy learns it
    /// and the model stage enlarges every row by one size through the
    /// transform; when keeping pays, it enlarges none. (Learning rate 1e-3:
    /// with 1e-2 and only eight IDs, the BatchNorm over the IDs couples them
    /// so strongly that one ID is driven to the opposite choice before its own
    /// gradient, which vanishes once its policy saturates, can pull it back.)
    func testESAPNEnlargesRowsWhenEnlargingPays() {
        let frequencies: [UInt32] = [1, 2, 5, 9, 40, 300, 1, 7]
        for enlargingPays in [true, false] {
            let f = ESAPNFixture(frequencies: frequencies)
            for batch in 1...300 {
                f.policyStep(batch: batch, lr: 1e-3) { _, action in (action == 1) == enlargingPays ? 1 : -1 }
            }
            f.policy.prepareModel(f.owned, context: f.context, batch: 301, readStep: 0)
            let sizes = (0..<f.owned.count).map { f.owned.sizeIndex($0) }
            XCTAssertEqual(sizes, [Int](repeating: enlargingPays ? 1 : 0, count: frequencies.count),
                           enlargingPays ? "every row enlarged to width 4" : "no row enlarged")
            if enlargingPays {
                // The enlarged row is W_{2→4}·e + b of the row it replaced (N(0,1), keyed by the ID).
                let link = f.chain.chain[0]
                var old = [Float](repeating: 0, count: 2)
                old.withUnsafeMutableBufferPointer { initRow(values: $0.baseAddress!, width: 2, seed: 3, id: 4, side: .user) }
                let W = f.context.arena.value(link.weight), b = f.context.arena.value(link.bias!)
                let expected = (0..<4).map { o in b[o] + W[2 * o] * old[0] + W[2 * o + 1] * old[1] }
                assertClose(Array(UnsafeBufferPointer(start: f.owned.row(4), count: 4)), expected, rtol: 1e-5, atol: 1e-6)
            }
        }
    }

    /// DARTS: one Adam step of each owned ID's α with the gradient its owner
    /// summed moves α against that gradient, by about the learning rate.
    func testDARTSStepsEachIDsWeightsAgainstTheirGradient() {
        let owned = OwnedRows(side: .item, sharding: Sharding(rank: 0, ranks: 1), widths: [14], totalIDs: 3, extraWidth: 3,
                              seed: 1, capacity: 3)
        let policy = DARTSPolicy(candidates: 3, store: owned.store, learningRate: 0.01, optimizer: .catchUpAdam)
        owned.receiveLocally(requests: [(0, 1), (2, 1)], optimizer: RowAdam(lr: 1e-3))
        let context = PolicyContext(arena: ParameterArena(layout: ParameterLayout(), seed: 1),
                                    policyArena: ParameterArena(layout: ParameterLayout(), seed: 1), comm: LocalCommunicator())
        policy.prepareValidation(owned, context: context, batch: 1)
        let gradients: [[Float]] = [[0.5, -2, 0], [-1, 0.25, 3]]
        owned.receiveGradientsLocally(rows: [[Float]](repeating: [Float](repeating: 0, count: 14), count: 2), extras: gradients)
        policy.learn(owned, context: context, batch: 1)
        for o in 0..<2 {
            let alpha = Array(UnsafeBufferPointer(start: owned.extra(o), count: 3))
            let expected = gradients[o].map { $0 == 0 ? Float(0) : ($0 > 0 ? -0.01 : 0.01) }
            assertClose(alpha, expected, rtol: 1e-3, atol: 1e-6, "α of owned ID \(o) after one Adam step")
        }
    }

    /// AutoEmb: the controller's logits become each owned ID's current weights
    /// (its extra state, which travels with the row).
    func testAutoEmbStoresTheControllersLogitsAsTheIDsWeights() {
        let owned = OwnedRows(side: .item, sharding: Sharding(rank: 0, ranks: 1), widths: [14], totalIDs: 4, extraWidth: 3,
                              seed: 2, capacity: 4)
        owned.receiveLocally(requests: [(3, 10), (1, 2), (0, 500)], optimizer: RowAdam(lr: 1e-3))
        var policyLayout = ParameterLayout()
        let parameters = AutoEmbPolicy.parameters(side: .item, candidates: 3, hidden: 8, layout: &policyLayout)
        let policy = AutoEmbPolicy(parameters: parameters, maxBatch: 4)
        let context = PolicyContext(arena: ParameterArena(layout: ParameterLayout(), seed: 2),
                                    policyArena: ParameterArena(layout: policyLayout, seed: 2), comm: LocalCommunicator())
        policy.prepareModel(owned, context: context, batch: 1, readStep: 0)
        for o in 0..<3 {
            XCTAssertEqual(Array(UnsafeBufferPointer(start: owned.extra(o), count: 3)),
                           Array(UnsafeBufferPointer(start: policy.controller.logits + 3 * o, count: 3)))
        }
        XCTAssertNotEqual(owned.extra(0)[0], owned.extra(2)[0], "IDs of other frequencies get other weights")
    }

    /// The ring of the last T losses across many wrap-arounds (the count folds back below 2T).
    func testLossHistoryAcrossItsWrapAround() {
        let T = 3
        let store = RowStore(widths: [2], localCount: 2)
        let history = LossHistory(window: T, store: store)
        _ = store.create(0, size: 0, step: 0)
        _ = store.create(1, size: 0, step: 0)
        XCTAssertNil(history.mean(0), "no loss pushed: no baseline")
        XCTAssertEqual(history.last(0), 0)
        history.push(0, 4)
        XCTAssertEqual(history.mean(0), 4)
        history.push(0, 8)
        XCTAssertEqual(history.mean(0), 6, "fewer than T losses: their mean")
        var pushed: [Float] = [4, 8]
        for k in 0..<1000 {
            let loss = Float(k % 17) * 0.25
            history.push(0, loss)
            pushed.append(loss)
            let tail = pushed.suffix(T)
            XCTAssertEqual(history.mean(0)!, tail.reduce(0, +) / Float(T), accuracy: 1e-6, "after \(pushed.count) pushes")
            XCTAssertEqual(history.last(0), loss)
        }
        XCTAssertNil(history.mean(1), "another ID's ring is untouched")
    }

    func testFrequencyBuckets() {
        XCTAssertEqual(FrequencyBuckets.bucket(0), 0, "frequency 0 counts as 1")
        XCTAssertEqual((1...1024).map { FrequencyBuckets.bucket(UInt32($0)) }, Array(0..<1024), "a row per exact frequency")
        XCTAssertEqual(FrequencyBuckets.bucket(1025), 1024)
        XCTAssertEqual(FrequencyBuckets.bucket(2048), 1024 + FrequencyBuckets.perOctave, "8 buckets per doubling")
        XCTAssertEqual(FrequencyBuckets.bucket(4096), 1024 + 2 * FrequencyBuckets.perOctave)
        XCTAssertLessThan(FrequencyBuckets.bucket(UInt32.max), FrequencyBuckets.count, "the largest frequency fits")
        XCTAssertGreaterThan(FrequencyBuckets.bucket(UInt32.max), 1024 + 21 * FrequencyBuckets.perOctave)
        var last = -1
        for f in stride(from: UInt32(1), to: UInt32.max / 2, by: 9973) {
            let b = FrequencyBuckets.bucket(f)
            XCTAssertGreaterThanOrEqual(b, last, "monotone at \(f)")
            last = b
        }
    }
}
