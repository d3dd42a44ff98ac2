// The inference layers shared by every model (ARCHITECTURE §2):
//   concat(user, item) (256) ─ BN(256) ─ Linear(256,512) ─ BN(512) ─ tanh ─ Linear(512, 1|5) ─ sigmoid/softmax
// BatchNorms are synchronised: every rank normalises with the global batch's statistics.
import Comm
import Kernels

public struct DenseHeadParameters: Sendable {
    public let inputNorm: BatchNormParameters
    public let hidden: LinearParameters
    public let hiddenNorm: BatchNormParameters
    public let output: LinearParameters

    public init(inputs: Int, hidden width: Int, outputs: Int, layout: inout ParameterLayout) {
        inputNorm = layout.addBatchNorm("head.norm0", channels: inputs)
        hidden = layout.addLinear("head.fc1", inFeatures: inputs, outFeatures: width)
        hiddenNorm = layout.addBatchNorm("head.norm1", channels: width)
        output = layout.addLinear("head.fc2", inFeatures: width, outFeatures: outputs)
    }
}

/// Activations of the head over one slice, and the loss. Buffers sized once.
public final class DenseHead {
    public let parameters: DenseHeadParameters
    public let task: Task
    let inputs, width, outputs: Int
    /// (n, inputs): the concatenated embeddings; callers write here.
    public let input: UnsafeMutablePointer<Float>
    public let dinput: UnsafeMutablePointer<Float>
    let h0, h1, h2, h3: UnsafeMutablePointer<Float>   // BN0 out, fc1 out, BN1 out, tanh out
    let d0, d1, d2, d3: UnsafeMutablePointer<Float>
    public let logits, probabilities, dlogits: UnsafeMutablePointer<Float>
    /// Per-record loss and correctness, written by `forward`.
    public let losses: UnsafeMutablePointer<Float>
    public let correct: UnsafeMutablePointer<Bool>
    /// Labels of the slice: 0/1 floats (binary) or class indices (multiclass); callers write here.
    public let binaryLabels: UnsafeMutablePointer<Float>
    public let classLabels: UnsafeMutablePointer<Int32>
    let norm0, norm1: BatchNormCache
    var records = 0

    public init(parameters: DenseHeadParameters, task: Task, maxSlice: Int) {
        self.parameters = parameters
        self.task = task
        inputs = parameters.inputNorm.channels
        width = parameters.hidden.outFeatures
        outputs = parameters.output.outFeatures
        let n = max(1, maxSlice)
        func buffer(_ c: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: n * c)
            p.initialize(repeating: 0, count: n * c)
            return p
        }
        input = buffer(inputs); dinput = buffer(inputs)
        h0 = buffer(inputs); h1 = buffer(width); h2 = buffer(width); h3 = buffer(width)
        d0 = buffer(inputs); d1 = buffer(width); d2 = buffer(width); d3 = buffer(width)
        logits = buffer(outputs); probabilities = buffer(outputs); dlogits = buffer(outputs)
        losses = buffer(1)
        correct = .allocate(capacity: n)
        correct.initialize(repeating: false, count: n)
        binaryLabels = buffer(1)
        classLabels = .allocate(capacity: n)
        classLabels.initialize(repeating: 0, count: n)
        norm0 = BatchNormCache(channels: inputs)
        norm1 = BatchNormCache(channels: width)
    }

    deinit {
        for p in [input, dinput, h0, h1, h2, h3, d0, d1, d2, d3, logits, probabilities, dlogits, losses, binaryLabels] {
            p.deallocate()
        }
        correct.deallocate(); classLabels.deallocate()
    }

    /// Forward over `n` records of `input`; fills `losses` and `correct`.
    public func forward(records n: Int, arena: ParameterArena, comm: any Communicator) {
        records = n
        let p = parameters
        batchNormForward(out: h0, cache: norm0, inp: input, gamma: arena.value(p.inputNorm.gamma),
                         beta: arena.value(p.inputNorm.beta), batch: n, channels: inputs, comm: comm)
        linearForward(out: h1, inp: h0, weight: arena.value(p.hidden.weight), bias: arena.value(p.hidden.bias!),
                      batch: n, inFeatures: inputs, outFeatures: width)
        batchNormForward(out: h2, cache: norm1, inp: h1, gamma: arena.value(p.hiddenNorm.gamma),
                         beta: arena.value(p.hiddenNorm.beta), batch: n, channels: width, comm: comm)
        tanhForward(out: h3, inp: h2, count: n * width)
        linearForward(out: logits, inp: h3, weight: arena.value(p.output.weight), bias: arena.value(p.output.bias!),
                      batch: n, inFeatures: width, outFeatures: outputs)
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
        d3.update(repeating: 0, count: n * width)
        linearBackward(dinp: d3, dweight: arena.gradient(p.output.weight), dbias: arena.gradient(p.output.bias!),
                       dout: dlogits, inp: h3, weight: arena.value(p.output.weight),
                       batch: n, inFeatures: width, outFeatures: outputs)
        d2.update(repeating: 0, count: n * width)
        tanhBackward(dinp: d2, dout: d3, out: h3, count: n * width)
        d1.update(repeating: 0, count: n * width)
        batchNormBackward(dinp: d1, dgamma: arena.gradient(p.hiddenNorm.gamma), dbeta: arena.gradient(p.hiddenNorm.beta),
                          dout: d2, inp: h1, gamma: arena.value(p.hiddenNorm.gamma), cache: norm1,
                          batch: n, channels: width, comm: comm)
        d0.update(repeating: 0, count: n * inputs)
        linearBackward(dinp: d0, dweight: arena.gradient(p.hidden.weight), dbias: arena.gradient(p.hidden.bias!),
                       dout: d1, inp: h0, weight: arena.value(p.hidden.weight),
                       batch: n, inFeatures: inputs, outFeatures: width)
        dinput.update(repeating: 0, count: n * inputs)
        batchNormBackward(dinp: dinput, dgamma: arena.gradient(p.inputNorm.gamma), dbeta: arena.gradient(p.inputNorm.beta),
                          dout: d0, inp: input, gamma: arena.value(p.inputNorm.gamma), cache: norm0,
                          batch: n, channels: inputs, comm: comm)
    }
}
