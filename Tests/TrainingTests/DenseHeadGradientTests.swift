// Finite-difference check of the inference head (BatchNorm over the
// concatenated embeddings → fc1 → BatchNorm → tanh → fc2 → sigmoid+MSE or
// softmax+cross-entropy), for the summed loss of the slice: every weight and
// the input, whose gradient is what the formers receive. Five-point stencil,
// step 1e-2; small inputs and hidden width so Float noise stays far below
// the tolerance.
import Comm
import Kernels
import Model
import Random
import TestSupport
import Training
import XCTest

final class DenseHeadGradientTests: XCTestCase {
    func check(_ task: Task, seed: UInt64) {
        let records = 12, inputs = 6
        var layout = ParameterLayout()
        let parameters = DenseHeadParameters(inputs: inputs, hidden: 7, outputs: task.outputs, layout: &layout)
        let arena = ParameterArena(layout: layout, seed: seed)
        var rng = RandomStream(seed: seed, purpose: .test)
        for norm in [parameters.inputNorm, parameters.block.hiddenNorm] {
            for c in 0..<norm.channels {
                arena.value(norm.gamma)[c] = Float(rng.uniform(0.5, 1.5))
                arena.value(norm.beta)[c] = Float(0.3 * rng.normal())
            }
        }
        let head = DenseHead(parameters: parameters, task: task, maxSlice: records)
        for i in 0..<(records * inputs) { head.input[i] = Float(rng.normal()) }
        for k in 0..<records {
            head.binaryLabels[k] = Float(k % 2)
            head.classLabels[k] = Int32(k % 5)
        }
        let comm = LocalCommunicator()
        func objective() -> Double {
            head.forward(records: records, arena: arena, comm: comm)
            return (0..<records).reduce(0.0) { $0 + Double(head.losses[$1]) }
        }
        func backward() {
            _ = objective()
            arena.zeroGradients()
            head.backward(arena: arena, comm: comm)
        }
        var worst = checkArenaGradients(arena, backward: backward, objective: objective)
        backward()
        let dinput = Array(UnsafeBufferPointer(start: head.dinput, count: records * inputs))
        worst = max(worst, TestSupport.checkGradient("input", at: head.input, count: records * inputs, analytic: dinput,
                                                     indices: Array(0..<(records * inputs)), rtol: 2e-3, atol: 1e-4,
                                                     fourthOrder: true, objective: objective))
        print("dense head (\(task.rawValue)): worst |Δ|/tolerance \(worst)")
    }

    func testBinaryHead() { check(.binary, seed: 41) }
    func testMulticlassHead() { check(.multiclass, seed: 42) }
}
