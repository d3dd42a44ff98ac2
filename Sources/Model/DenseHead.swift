// The inference layers shared by every model (ARCHITECTURE §2):
//   concat(user, item) (256) ─ BN(256) ─ Linear(256,512) ─ BN(512) ─ tanh ─ Linear(512, 1|5) ─ sigmoid/softmax
// BatchNorms are synchronised: every rank normalises with the global batch's statistics.
import Comm
import Embeddings
import Kernels

public struct DenseHeadParameters: Sendable {
    public let inputNorm: BatchNormParameters
    /// fc1 → BN → tanh → fc2.
    public let block: HiddenBlockParameters

    public init(inputs: Int, hidden width: Int, outputs: Int, layout: inout ParameterLayout) {
        inputNorm = layout.addBatchNorm("head.norm0", channels: inputs)
        block = HiddenBlockParameters("head", inputs: inputs, hidden: width, outputs: outputs, layout: &layout)
    }
}

/// Activations of the head over one slice, and the loss. Buffers sized once.
public final class DenseHead {
    public let parameters: DenseHeadParameters
    public let task: Task
    let inputs, outputs: Int
    /// (n, inputs): the concatenated embeddings; callers write here.
    public let input: UnsafeMutablePointer<Float>
    public let dinput: UnsafeMutablePointer<Float>
    /// (n, inputs): BN0's output, and its gradient.
    let h0, d0: UnsafeMutablePointer<Float>
    let block: HiddenBlock
    /// (n, outputs): the block's output.
    public var logits: UnsafeMutablePointer<Float> { block.out }
    public let probabilities, dlogits: UnsafeMutablePointer<Float>
    /// Per-record loss and correctness, written by `forward`.
    public let losses: UnsafeMutablePointer<Float>
    public let correct: UnsafeMutablePointer<Bool>
    /// Labels of the slice: 0/1 floats (binary) or class indices (multiclass); callers write here.
    public let binaryLabels: UnsafeMutablePointer<Float>
    public let classLabels: UnsafeMutablePointer<Int32>
    let norm0: BatchNormCache
    var records = 0

    public init(parameters: DenseHeadParameters, task: Task, maxSlice: Int) {
        self.parameters = parameters
        self.task = task
        inputs = parameters.inputNorm.channels
        outputs = parameters.block.output.outFeatures
        let n = max(1, maxSlice)
        func buffer(_ c: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: n * c)
            p.initialize(repeating: 0, count: n * c)
            return p
        }
        input = buffer(inputs); dinput = buffer(inputs)
        h0 = buffer(inputs); d0 = buffer(inputs)
        block = HiddenBlock(parameters: parameters.block, capacity: n)
        probabilities = buffer(outputs); dlogits = buffer(outputs)
        losses = buffer(1)
        correct = .allocate(capacity: n)
        correct.initialize(repeating: false, count: n)
        binaryLabels = buffer(1)
        classLabels = .allocate(capacity: n)
        classLabels.initialize(repeating: 0, count: n)
        norm0 = BatchNormCache(channels: inputs)
    }

    deinit {
        for p in [input, dinput, h0, d0, probabilities, dlogits, losses, binaryLabels] { p.deallocate() }
        correct.deallocate(); classLabels.deallocate()
    }

    /// Forward over `n` records of `input`; fills `losses` and `correct`.
    public func forward(records n: Int, arena: ParameterArena, comm: any Communicator) {
        records = n
        let p = parameters
        batchNormForward(out: h0, cache: norm0, inp: input, gamma: arena.value(p.inputNorm.gamma),
                         beta: arena.value(p.inputNorm.beta), batch: n, channels: inputs, comm: comm)
        block.forward(h0, rows: n, arena: arena, comm: comm)
        switch task {
        case .binary:
            sigmoidMSEForward(losses: losses, correct: correct, probs: probabilities, logits: logits,
                              labels: binaryLabels, batch: n)
        case .multiclass:
            softmaxCrossEntropyForward(losses: losses, correct: correct, probs: probabilities, logits: logits,
                                       labels: classLabels, batch: n, classes: outputs)
        }
    }

    /// Backward of the summed loss; adds dense gradients into `arena` and
    /// writes d(input) into `dinput`.
    public func backward(arena: ParameterArena, comm: any Communicator) {
        let n = records, p = parameters
        dlogits.update(repeating: 0, count: n * outputs)
        switch task {
        case .binary:
            sigmoidMSEBackward(dlogits: dlogits, probs: probabilities, labels: binaryLabels, weights: nil, scale: 1, batch: n)
        case .multiclass:
            softmaxCrossEntropyBackward(dlogits: dlogits, probs: probabilities, labels: classLabels, weights: nil,
                                        scale: 1, batch: n, classes: outputs)
        }
        block.backward(dout: dlogits, inp: h0, dinp: d0, arena: arena, comm: comm)
        dinput.update(repeating: 0, count: n * inputs)
        batchNormBackward(dinp: dinput, dgamma: arena.gradient(p.inputNorm.gamma), dbeta: arena.gradient(p.inputNorm.beta),
                          dout: d0, inp: input, gamma: arena.value(p.inputNorm.gamma), cache: norm0,
                          batch: n, channels: inputs, comm: comm)
    }
}
