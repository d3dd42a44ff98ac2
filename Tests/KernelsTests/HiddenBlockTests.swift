// Finite-difference check of HiddenBlock (Linear → BatchNorm → tanh → Linear),
// the block the inference head and the policy networks end with: the
// gradients of every weight and of the input, for Σ w·out with random w.
// Five-point stencil, step 1e-2, as the hard-selection check; a wrong term
// (a dropped BatchNorm term, tanh' of the wrong tensor) is off by O(1).
import Comm
import Kernels
import Random
import TestSupport
import XCTest

final class HiddenBlockTests: XCTestCase {
    func testGradientsOfEveryWeightAndOfTheInput() {
        let rows = 12, inputs = 5, hidden = 7, outputs = 3
        var layout = ParameterLayout()
        let parameters = HiddenBlockParameters("block", inputs: inputs, hidden: hidden, outputs: outputs, layout: &layout)
        let arena = ParameterArena(layout: layout, seed: 4)
        var rng = RandomStream(seed: 4, purpose: .test)
        // γ and β away from 1 and 0, so their gradients are generic.
        for c in 0..<hidden {
            arena.value(parameters.hiddenNorm.gamma)[c] = Float(rng.uniform(0.5, 1.5))
            arena.value(parameters.hiddenNorm.beta)[c] = Float(0.3 * rng.normal())
        }
        let block = HiddenBlock(parameters: parameters, capacity: rows)
        let comm = LocalCommunicator()
        let input = Buffer((0..<(rows * inputs)).map { _ in Float(rng.normal()) })
        let w = (0..<(rows * outputs)).map { _ in Float(rng.normal()) }
        let dinput = Buffer(zeros: rows * inputs)
        func objective() -> Double {
            block.forward(input.p, rows: rows, arena: arena, comm: comm)
            return (0..<(rows * outputs)).reduce(0.0) { $0 + Double(w[$1]) * Double(block.out[$1]) }
        }
        func backward() {
            _ = objective()
            arena.zeroGradients()
            w.withUnsafeBufferPointer { block.backward(dout: $0.baseAddress!, inp: input.p, dinp: dinput.p, arena: arena, comm: comm) }
        }
        let worst = checkArenaGradients(arena, backward: backward, objective: objective)
        backward()
        let inputWorst = TestSupport.checkGradient("input", at: input.p, count: rows * inputs, analytic: dinput.array,
                                                   indices: Array(0..<(rows * inputs)), rtol: 2e-3, atol: 1e-4,
                                                   fourthOrder: true, objective: objective)
        print("hidden block: worst |Δ|/tolerance \(max(worst, inputWorst))")
    }
}
