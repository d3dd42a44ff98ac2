// Finite-difference check of the hard-selection embedding (ARCHITECTURE §2,
// Eq. 1): rows of mixed widths d_j carried up the transform chain to the top
// width, BatchNorm over the batch, tanh. The objective Σ w·activated (random
// w) is differentiated with respect to the received row values (through
// the received rows' gradient slots, duplicates of an ID summed), every chain weight and bias,
// and BatchNorm's γ and β.
//
// Tolerance: the five-point stencil with step h = 1e-2 (truncation O(h⁴),
// negligible here; the plain central difference's O(h²) error already shows
// at 1e-2 through tanh and a BatchNorm of ~30 rows), forward in Float,
// objective summed in Double. Passes when
//   |analytic − numeric| ≤ atol + 2e-3·max(|analytic|, |numeric|).
// What limits the check is Float rounding of the objective: a perturbation
// moves BatchNorm's statistics, so every one of the records × top activations
// is rounded anew, and the noise, ~1.5·√(records·top)·6e-8 / h, grows with
// the square root of the output size. atol is 1e-4 with top width 8
// (≈ 230 outputs) and 1e-3 with top width 128 (≈ 6800 outputs: noise floor
// measured ~3e-4). The worst ratio to the tolerance is printed (≈ 0.2 for
// width 8). A wrong gradient (a dropped chain link, a missing BatchNorm term,
// duplicates not summed) is off by O(1) relative on entries of 0.1–5.
import Comm
import Embeddings
import Kernels
import Model
import Policies
import Random
import TestSupport
import XCTest

final class HardSelectionGradientTests: XCTestCase {
    static let rtol: Float = 2e-3

    /// One side's embedding over a batch whose distinct IDs hold rows at `sizes`
    /// (width indices), each ID repeated in several records.
    final class Fixture {
        let comm = LocalCommunicator()
        let widths: [Int]
        let rows: ReceivedRows
        let parameters: HardSelectionParameters
        let arena: ParameterArena
        let embedding: HardSelectionEmbedding
        let records: Int
        let top: Int
        let w: [Float]

        let atol: Float

        init(widths: [Int], sizes: [Int], seed: UInt64, atol: Float = 1e-4) {
            self.widths = widths
            self.atol = atol
            top = widths.last!
            var rng = RandomStream(seed: seed, purpose: .test)
            // Records: every distinct ID once, then repeats of some of them.
            let distinct = sizes.count
            var ids = (0..<distinct).map { UInt32($0) }
            for k in 0..<(distinct + 5) { ids.append(UInt32((3 * k + 1) % distinct)) }
            let n = ids.count
            records = n
            // The rows as their owners would send them, with no table or exchange.
            let rows = ReceivedRows(widths: widths, extraWidth: 0, totalIDs: distinct, capacity: n)
            self.rows = rows
            rows.receive(recordIDs: ids.map { Int($0) }) { id in
                var values = [Float](repeating: 0, count: widths[sizes[id]])
                if sizes[id] == 0 {
                    values.withUnsafeMutableBufferPointer { initRow(values: $0.baseAddress!, width: widths[0], seed: seed, id: id, side: .user) }
                } else {
                    for j in values.indices { values[j] = Float(rng.normal()) }
                }
                return (sizes[id], values, [])
            }

            var layout = ParameterLayout()
            parameters = HardSelectionParameters(side: .user, widths: widths, layout: &layout)
            arena = ParameterArena(layout: layout, seed: seed)
            // Move γ and β away from 1 and 0 so that their gradients are generic.
            for c in 0..<top {
                arena.value(parameters.norm.gamma)[c] = Float(rng.uniform(0.5, 1.5))
                arena.value(parameters.norm.beta)[c] = Float(0.3 * rng.normal())
            }
            embedding = HardSelectionEmbedding(parameters: parameters, maxSlice: records)
            w = (0..<(records * top)).map { _ in Float(rng.normal()) }
        }

        /// Σ w·activated, in Double.
        func objective() -> Double {
            embedding.forward(rows: rows, arena: arena, comm: comm)
            var s = 0.0
            for i in 0..<(records * top) { s += Double(w[i]) * Double(embedding.activated[i]) }
            return s
        }

        /// Runs forward and backward with d(activated) = w.
        func backward() {
            _ = objective()
            for i in 0..<(records * top) { embedding.dactivated[i] = w[i] }
            arena.zeroGradients()
            embedding.backward(rows: rows, arena: arena, comm: comm)
        }

        func check(file: StaticString = #filePath, line: UInt = #line) -> Float {
            backward()
            var worst: Float = 0
            // Row values: the received copy is what forward reads.
            for d in 0..<rows.distinctCount {
                let width = rows.width(d)
                let analytic = rows.gradientValues(d).row
                worst = max(worst, checkGradient("row of ID \(rows.globalID(d)) (width \(width))",
                                                 at: UnsafeMutablePointer(mutating: rows.row(d)), count: width, analytic: analytic,
                                                 indices: Array(0..<width), rtol: rtol, atol: atol, fourthOrder: true,
                                                 file: file, line: line, objective: objective))
            }
            var views: [ParameterView] = [parameters.norm.gamma, parameters.norm.beta]
            for link in parameters.chain { views += [link.weight, link.bias!] }
            var rng = RandomStream(seed: 3, purpose: .test)
            for view in views {
                let analytic = Array(UnsafeBufferPointer(start: arena.gradient(view), count: view.count))
                // Every element of small tensors, 64 random ones of larger.
                var indices = Array(0..<view.count)
                if view.count > 64 {
                    for i in 0..<64 { indices.swapAt(i, i + rng.below(view.count - i)) }
                    indices = Array(indices.prefix(64))
                }
                worst = max(worst, checkGradient(view.name, at: arena.value(view), count: view.count, analytic: analytic,
                                                 indices: indices, rtol: rtol, atol: atol, fourthOrder: true,
                                                 file: file, line: line, objective: objective))
            }
            return worst
        }

        var rtol: Float { HardSelectionGradientTests.rtol }
    }

    func testMixedWidthsThroughTheCascade() {
        // Widths 2, 4, 8: IDs at every level, several records per ID.
        let f = Fixture(widths: [2, 4, 8], sizes: (0..<12).map { $0 % 3 }, seed: 21)
        XCTAssertEqual(Set((0..<f.rows.distinctCount).map { f.rows.sizeIndex($0) }), [0, 1, 2])
        let worst = f.check()
        print("hard selection [2,4,8], mixed widths: worst |Δ|/tolerance \(worst)")
    }

    func testAnEmptyMiddleLevelIsCarriedThrough() {
        // No row at width 4: width-2 rows still go 2→4→8.
        let f = Fixture(widths: [2, 4, 8], sizes: [0, 2, 0, 2, 2, 0], seed: 22)
        let worst = f.check()
        print("hard selection [2,4,8], nothing at 4: worst |Δ|/tolerance \(worst)")
    }

    func testSixWidthsAsESAPNUsesThem() {
        let f = Fixture(widths: [2, 4, 8, 16, 64, 128], sizes: (0..<24).map { $0 % 6 }, seed: 23, atol: 1e-3)
        let worst = f.check()
        print("hard selection [2…128], mixed widths: worst |Δ|/tolerance \(worst)")
    }

    func testFixedIsOneWidthWithoutAChain() {
        let f = Fixture(widths: [8], sizes: [0, 0, 0, 0, 0, 0, 0], seed: 24)
        XCTAssertTrue(f.parameters.chain.isEmpty)
        let worst = f.check()
        print("hard selection FIXED [8]: worst |Δ|/tolerance \(worst)")
    }

    /// The cascade is a pure re-ordering of the per-ID chain: a row's embedding
    /// before BatchNorm equals W_{n-1}(…W_j(e)+b_j…)+b_{n-1} computed directly.
    func testForwardEqualsTheChainAppliedRowByRow() {
        let f = Fixture(widths: [2, 4, 8], sizes: [0, 1, 2, 0, 2], seed: 25)
        _ = f.objective()
        // chain(row) per record in Double, then BatchNorm over the records and tanh.
        var pre = [[Double]]()
        for k in 0..<f.records {
            let d = f.rows.distinct(ofRecord: k)
            let size = f.rows.sizeIndex(d)
            var x = (0..<f.widths[size]).map { Double(f.rows.row(d)[$0]) }
            for L in size..<(f.widths.count - 1) {
                let link = f.parameters.chain[L]
                let W = f.arena.value(link.weight), b = f.arena.value(link.bias!)
                x = (0..<link.outFeatures).map { o in
                    (0..<link.inFeatures).reduce(Double(b[o])) { $0 + Double(W[o * link.inFeatures + $1]) * x[$1] }
                }
            }
            pre.append(x)
        }
        let n = Double(f.records)
        for c in 0..<f.top {
            let mean = pre.reduce(0) { $0 + $1[c] } / n
            let variance = pre.reduce(0) { $0 + ($1[c] - mean) * ($1[c] - mean) } / n
            let gamma = Double(f.arena.value(f.parameters.norm.gamma)[c]), beta = Double(f.arena.value(f.parameters.norm.beta)[c])
            for k in 0..<f.records {
                let expected = tanh(gamma * (pre[k][c] - mean) / (variance + 1e-5).squareRoot() + beta)
                XCTAssertEqual(Double(f.embedding.activated[k * f.top + c]), expected, accuracy: 1e-5, "record \(k) channel \(c)")
            }
        }
    }
}
