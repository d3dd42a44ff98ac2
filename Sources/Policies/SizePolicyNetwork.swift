// ESAPN's embedding size adjustment policy network, one per side
// (ARCHITECTURE §2, paper §2.3):
//   [BN(32)(FreqEmb(f)), onehot(size, S)] → Linear(·,512) → BN(512) → tanh → Linear(512,2) → softmax{keep, enlarge}
// FreqEmb has exact rows for f ≤ 1024 and logarithmic buckets above, so its
// gradient stays small enough to all-reduce every batch. Variants drop the
// size one-hot or add the ID's last loss to the state.
import Comm
import Kernels

/// What the policy sees of an ID.
public struct PolicyState: Codable, Equatable, Sendable {
    /// Include onehot(current size index).
    public var size = true
    /// Include the ID's most recent loss.
    public var lastLoss = false

    public init(size: Bool = true, lastLoss: Bool = false) {
        self.size = size
        self.lastLoss = lastLoss
    }
}

public enum FrequencyBuckets {
    /// Frequencies 1…exact get a row each; above, 8 buckets per doubling.
    public static let exact = 1024
    public static let perOctave = 8
    /// Enough octaves for any UInt32 frequency.
    public static let count = exact + 22 * perOctave + 1

    @inline(__always)
    public static func bucket(_ f: UInt32) -> Int {
        let f = Int(max(f, 1))
        if f <= exact { return f - 1 }
        let octave = Double(f) / Double(exact)
        let b = Int((log2(octave) * Double(perOctave)).rounded(.down))
        return min(count - 1, exact + b)
    }
}

public struct SizePolicyParameters: Sendable {
    public static let frequencyWidth = 32
    public let frequencyTable: ParameterView         // (buckets, 32)
    public let frequencyNorm: BatchNormParameters    // (32)
    public let hidden: LinearParameters              // (in, H)
    public let hiddenNorm: BatchNormParameters       // (H)
    public let output: LinearParameters              // (H, 2)
    public let inputs: Int

    public init(side: String, sizes: Int, state: PolicyState, hidden width: Int, layout: inout ParameterLayout) {
        frequencyTable = layout.add("\(side).policy.frequency", shape: [FrequencyBuckets.count, Self.frequencyWidth],
                                    initialiser: .normal(standardDeviation: 1))
        frequencyNorm = layout.addBatchNorm("\(side).policy.norm0", channels: Self.frequencyWidth)
        inputs = Self.frequencyWidth + (state.size ? sizes : 0) + (state.lastLoss ? 1 : 0)
        hidden = layout.addLinear("\(side).policy.fc1", inFeatures: inputs, outFeatures: width)
        hiddenNorm = layout.addBatchNorm("\(side).policy.norm1", channels: width)
        output = layout.addLinear("\(side).policy.fc2", inFeatures: width, outFeatures: 2)
    }
}

/// Forward and REINFORCE backward over a batch of states; buffers sized once.
public final class SizePolicyNetwork {
    public let parameters: SizePolicyParameters
    public let state: PolicyState
    let sizes: Int
    let width: Int
    let capacity: Int
    /// Per state: frequency bucket; caller fills `buckets`, `sizeIndex`, `lastLoss`.
    public let buckets: UnsafeMutablePointer<Int32>
    public let sizeIndex: UnsafeMutablePointer<Int32>
    public let lastLoss: UnsafeMutablePointer<Float>
    let x0, x1, input, h1, h2, h3: UnsafeMutablePointer<Float>
    let dx0, dx1, dinput, dh1, dh2, dh3: UnsafeMutablePointer<Float>
    /// (m, 2) logits and probabilities of {keep, enlarge}.
    public let logits, probabilities: UnsafeMutablePointer<Float>
    let dlogits: UnsafeMutablePointer<Float>
    let norm0, norm1: BatchNormCache
    var count = 0

    public init(parameters: SizePolicyParameters, state: PolicyState, sizes: Int, capacity: Int) {
        self.parameters = parameters
        self.state = state
        self.sizes = sizes
        width = parameters.hidden.outFeatures
        self.capacity = capacity
        let n = max(1, capacity)
        func floats(_ c: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: n * c)
            p.initialize(repeating: 0, count: n * c)
            return p
        }
        buckets = .allocate(capacity: n); buckets.initialize(repeating: 0, count: n)
        sizeIndex = .allocate(capacity: n); sizeIndex.initialize(repeating: 0, count: n)
        lastLoss = floats(1)
        let F = SizePolicyParameters.frequencyWidth
        x0 = floats(F); x1 = floats(F); input = floats(parameters.inputs)
        h1 = floats(width); h2 = floats(width); h3 = floats(width)
        dx0 = floats(F); dx1 = floats(F); dinput = floats(parameters.inputs)
        dh1 = floats(width); dh2 = floats(width); dh3 = floats(width)
        logits = floats(2); probabilities = floats(2); dlogits = floats(2)
        norm0 = BatchNormCache(channels: F)
        norm1 = BatchNormCache(channels: width)
    }

    deinit {
        buckets.deallocate(); sizeIndex.deallocate()
        for p in [lastLoss, x0, x1, input, h1, h2, h3, dx0, dx1, dinput, dh1, dh2, dh3, logits, probabilities, dlogits] {
            p.deallocate()
        }
    }

    /// Logits and probabilities for `m` states (every rank calls it: BatchNorm is synchronised).
    public func forward(states m: Int, arena: ParameterArena, comm: any Communicator) {
        precondition(m <= capacity, "policy batch \(m) exceeds its capacity \(capacity)")
        count = m
        let p = parameters
        let F = SizePolicyParameters.frequencyWidth
        let table = arena.value(p.frequencyTable)
        for i in 0..<m { (x0 + i * F).update(from: table + Int(buckets[i]) * F, count: F) }
        batchNormForward(out: x1, cache: norm0, inp: x0, gamma: arena.value(p.frequencyNorm.gamma),
                         beta: arena.value(p.frequencyNorm.beta), batch: m, channels: F, comm: comm)
        let D = p.inputs
        for i in 0..<m {
            let row = input + i * D
            row.update(from: x1 + i * F, count: F)
            var c = F
            if state.size {
                (row + c).update(repeating: 0, count: sizes)
                row[c + Int(sizeIndex[i])] = 1
                c += sizes
            }
            if state.lastLoss { row[c] = lastLoss[i] }
        }
        linearForward(out: h1, inp: input, weight: arena.value(p.hidden.weight), bias: arena.value(p.hidden.bias!),
                      batch: m, inFeatures: D, outFeatures: width)
        batchNormForward(out: h2, cache: norm1, inp: h1, gamma: arena.value(p.hiddenNorm.gamma),
                         beta: arena.value(p.hiddenNorm.beta), batch: m, channels: width, comm: comm)
        tanhForward(out: h3, inp: h2, count: m * width)
        linearForward(out: logits, inp: h3, weight: arena.value(p.output.weight), bias: arena.value(p.output.bias!),
                      batch: m, inFeatures: width, outFeatures: 2)
        for i in 0..<m {
            let z0 = logits[2 * i], z1 = logits[2 * i + 1]
            let hi = max(z0, z1)
            let e0 = expf(z0 - hi), e1 = expf(z1 - hi)
            probabilities[2 * i] = e0 / (e0 + e1)
            probabilities[2 * i + 1] = e1 / (e0 + e1)
        }
    }

    /// REINFORCE: adds the gradient of Σ_i weight_i · CE(logits_i, action_i) into
    /// `arena` (every rank calls it after `forward`).
    public func backward(actions: UnsafePointer<Int32>, weights: UnsafePointer<Float>,
                         arena: ParameterArena, comm: any Communicator) {
        let m = count, p = parameters
        let F = SizePolicyParameters.frequencyWidth, D = p.inputs
        dlogits.update(repeating: 0, count: 2 * m)
        softmaxCrossEntropyBackward(dlogits: dlogits, probs: probabilities, labels: actions, weights: weights,
                                    scale: 1, batch: m, classes: 2)
        dh3.update(repeating: 0, count: m * width)
        linearBackward(dinp: dh3, dweight: arena.gradient(p.output.weight), dbias: arena.gradient(p.output.bias!),
                       dout: dlogits, inp: h3, weight: arena.value(p.output.weight), batch: m, inFeatures: width, outFeatures: 2)
        dh2.update(repeating: 0, count: m * width)
        tanhBackward(dinp: dh2, dout: dh3, out: h3, count: m * width)
        dh1.update(repeating: 0, count: m * width)
        batchNormBackward(dinp: dh1, dgamma: arena.gradient(p.hiddenNorm.gamma), dbeta: arena.gradient(p.hiddenNorm.beta),
                          dout: dh2, inp: h1, gamma: arena.value(p.hiddenNorm.gamma), cache: norm1,
                          batch: m, channels: width, comm: comm)
        dinput.update(repeating: 0, count: m * D)
        linearBackward(dinp: dinput, dweight: arena.gradient(p.hidden.weight), dbias: arena.gradient(p.hidden.bias!),
                       dout: dh1, inp: input, weight: arena.value(p.hidden.weight), batch: m, inFeatures: D, outFeatures: width)
        for i in 0..<m { (dx1 + i * F).update(from: dinput + i * D, count: F) }
        dx0.update(repeating: 0, count: m * F)
        batchNormBackward(dinp: dx0, dgamma: arena.gradient(p.frequencyNorm.gamma), dbeta: arena.gradient(p.frequencyNorm.beta),
                          dout: dx1, inp: x0, gamma: arena.value(p.frequencyNorm.gamma), cache: norm0,
                          batch: m, channels: F, comm: comm)
        let dtable = arena.gradient(p.frequencyTable)
        for i in 0..<m {
            let dst = dtable + Int(buckets[i]) * F, src = dx0 + i * F
            for j in 0..<F { dst[j] += src[j] }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
