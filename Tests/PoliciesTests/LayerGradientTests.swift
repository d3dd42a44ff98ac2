// Finite-difference checks of the layers the multi-rank contract cannot see
// (a bug that is the same on every rank passes P-versus-1): soft selection's
// mixture of candidates, and the state network of ESAPN's policy and
// AutoEmb's controller. The rows come through ReceivedRows laid out with no
// table or exchange. Objective Σ w·output with random w; five-point stencil,
// step 1e-2, |analytic − numeric| ≤ 1e-4 + 2e-3·max(|analytic|, |numeric|)
// (the hard-selection check's tolerance, for outputs of this size).
import Comm
import Embeddings
import Kernels
import Model
import Policies
import Random
import TestSupport
import XCTest

final class LayerGradientTests: XCTestCase {
    /// Soft selection with candidates 2, 4, 8: each ID's row holds all three
    /// (14 floats) and three weight logits beside it; several records per ID.
    func testSoftSelectionMixture() {
        let widths = [2, 4, 8], K = widths.count, rowWidth = widths.reduce(0, +), top = 8
        var rng = RandomStream(seed: 31, purpose: .test)
        let distinct = 6
        let ids = (0..<distinct).map { $0 } + (0..<10).map { (3 * $0 + 1) % distinct }
        let rows = ReceivedRows(widths: [rowWidth], extraWidth: K, totalIDs: distinct, capacity: ids.count)
        rows.receive(recordIDs: ids) { _ in
            (0, (0..<rowWidth).map { _ in Float(rng.normal()) }, (0..<K).map { _ in Float(rng.normal()) })
        }
        var layout = ParameterLayout()
        let parameters = SoftSelectionParameters(side: .item, widths: widths, layout: &layout)
        let arena = ParameterArena(layout: layout, seed: 31)
        for norm in parameters.norms {
            for c in 0..<top {
                arena.value(norm.gamma)[c] = Float(rng.uniform(0.5, 1.5))
                arena.value(norm.beta)[c] = Float(0.3 * rng.normal())
            }
        }
        let former = SoftSelectionEmbedding(parameters: parameters, maxSlice: ids.count)
        let comm = LocalCommunicator()
        let w = (0..<(ids.count * top)).map { _ in Float(rng.normal()) }
        func objective() -> Double {
            former.forward(rows: rows, arena: arena, comm: comm)
            return (0..<(ids.count * top)).reduce(0.0) { $0 + Double(w[$1]) * Double(former.activated[$1]) }
        }
        func backward() {
            _ = objective()
            for i in 0..<(ids.count * top) { former.dactivated[i] = w[i] }
            arena.zeroGradients()
            // The exchange hands out zeroed gradient slots once per batch.
            rows.receive(recordIDs: ids) { id in
                let d = (0..<rows.distinctCount).first { rows.globalID($0) == id }!
                return (0, Array(UnsafeBufferPointer(start: rows.row(d), count: rowWidth)),
                        Array(UnsafeBufferPointer(start: rows.extra(d), count: K)))
            }
            former.backward(rows: rows, arena: arena, comm: comm)
        }
        var worst = checkArenaGradients(arena, backward: backward, objective: objective)
        backward()
        for d in 0..<rows.distinctCount {
            let g = rows.gradientValues(d)
            worst = max(worst, TestSupport.checkGradient("row of ID \(rows.globalID(d))", at: UnsafeMutablePointer(mutating: rows.row(d)),
                                                         count: rowWidth, analytic: g.row, indices: Array(0..<rowWidth),
                                                         rtol: 2e-3, atol: 1e-4, fourthOrder: true, objective: objective))
            worst = max(worst, TestSupport.checkGradient("weight logits of ID \(rows.globalID(d))",
                                                         at: UnsafeMutablePointer(mutating: rows.extra(d)), count: K,
                                                         analytic: g.extra, indices: Array(0..<K),
                                                         rtol: 2e-3, atol: 1e-4, fourthOrder: true, objective: objective))
        }
        print("soft selection [2,4,8]: worst |Δ|/tolerance \(worst)")
    }

    /// The state network: frequency embedding → BatchNorm, beside the extra
    /// inputs, → fc1 → BatchNorm → tanh → fc2. The frequency table is checked
    /// on the rows the states read (the others get no gradient).
    func testStateNetwork() {
        let states = 14, extra = 3, outputs = 2
        var layout = ParameterLayout()
        let parameters = StateNetworkParameters(name: "user.policy", extra: extra, hidden: 6, outputs: outputs, layout: &layout)
        let arena = ParameterArena(layout: layout, seed: 32)
        let network = StateNetwork(parameters: parameters, capacity: states)
        var rng = RandomStream(seed: 32, purpose: .test)
        let frequencies: [UInt32] = [1, 1, 2, 3, 5, 8, 13, 700, 1024, 5000, 1, 2, 3, 100_000]
        for i in 0..<states {
            network.buckets[i] = Int32(FrequencyBuckets.bucket(frequencies[i]))
            for j in 0..<extra { network.extra[i * extra + j] = Float(rng.normal()) }
        }
        for norm in [parameters.frequencyNorm, parameters.block.hiddenNorm] {
            for c in 0..<norm.channels {
                arena.value(norm.gamma)[c] = Float(rng.uniform(0.5, 1.5))
                arena.value(norm.beta)[c] = Float(0.3 * rng.normal())
            }
        }
        let comm = LocalCommunicator()
        let w = (0..<(states * outputs)).map { _ in Float(rng.normal()) }
        func objective() -> Double {
            network.forward(states: states, arena: arena, comm: comm)
            return (0..<(states * outputs)).reduce(0.0) { $0 + Double(w[$1]) * Double(network.logits[$1]) }
        }
        func backward() {
            _ = objective()
            arena.zeroGradients()
            w.withUnsafeBufferPointer { network.backward(dlogits: $0.baseAddress!, arena: arena, comm: comm) }
        }
        let F = StateNetworkParameters.frequencyWidth
        let readRows = Set(frequencies.map { FrequencyBuckets.bucket($0) }).sorted()
        let worst = checkArenaGradients(arena, indices: { view in
            view == parameters.frequencyTable ? readRows.flatMap { r in (0..<F).map { r * F + $0 } } : nil
        }, backward: backward, objective: objective)
        print("state network: worst |Δ|/tolerance \(worst)")
    }
}
