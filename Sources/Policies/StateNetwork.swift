// The small network on an ID's state shared by ESAPN's policy and AutoEmb's
// controller (ARCHITECTURE §2, paper §2.3):
//   [BN(32)(FreqEmb(f)), extra] → Linear(·,H) → BN(H) → tanh → Linear(H, outputs)
// FreqEmb has exact rows for f ≤ 1024 and logarithmic buckets above, so its
// gradient stays small enough to all-reduce every batch. `extra` is what the
// caller adds to the state: ESAPN the one-hot of the current size (and the
// last loss), AutoEmb the current weights.
import Comm
import Kernels

/// What ESAPN's policy sees of an ID besides its frequency.
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
        let b = Int((log2(Double(f) / Double(exact)) * Double(perOctave)).rounded(.down))
        return min(count - 1, exact + b)
    }
}

public struct StateNetworkParameters: Sendable {
    public static let frequencyWidth = 32
    public let frequencyTable: ParameterView         // (buckets, 32)
    public let frequencyNorm: BatchNormParameters    // (32)
    public let hidden: LinearParameters              // (32 + extra, H)
    public let hiddenNorm: BatchNormParameters       // (H)
    public let output: LinearParameters              // (H, outputs)
    public let extra: Int
    public var inputs: Int { Self.frequencyWidth + extra }

    public init(name: String, extra: Int, hidden width: Int, outputs: Int, layout: inout ParameterLayout) {
        self.extra = extra
        frequencyTable = layout.add("\(name).frequency", shape: [FrequencyBuckets.count, Self.frequencyWidth],
                                    initialiser: .normal(standardDeviation: 1))
        frequencyNorm = layout.addBatchNorm("\(name).norm0", channels: Self.frequencyWidth)
        hidden = layout.addLinear("\(name).fc1", inFeatures: Self.frequencyWidth + extra, outFeatures: width)
        hiddenNorm = layout.addBatchNorm("\(name).norm1", channels: width)
        output = layout.addLinear("\(name).fc2", inFeatures: width, outFeatures: outputs)
    }
}

/// Forward and backward over a batch of states; buffers sized once.
public final class StateNetwork {
    public let parameters: StateNetworkParameters
    let width: Int
    public let outputs: Int
    let capacity: Int
    /// Per state: the frequency bucket and the extra inputs (capacity × extra); callers fill them.
    public let buckets: UnsafeMutablePointer<Int32>
    public let extra: UnsafeMutablePointer<Float>
    let x0, x1, input, h1, h2, h3: UnsafeMutablePointer<Float>
    let dx0, dx1, dinput, dh1, dh2, dh3: UnsafeMutablePointer<Float>
    /// (m, outputs).
    public let logits: UnsafeMutablePointer<Float>
    let norm0, norm1: BatchNormCache
    public private(set) var count = 0

    public init(parameters: StateNetworkParameters, capacity: Int) {
        self.parameters = parameters
        width = parameters.hidden.outFeatures
        outputs = parameters.output.outFeatures
        self.capacity = capacity
        let n = max(1, capacity)
        func floats(_ c: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: n * max(1, c))
            p.initialize(repeating: 0, count: n * max(1, c))
            return p
        }
        buckets = .allocate(capacity: n); buckets.initialize(repeating: 0, count: n)
        extra = floats(parameters.extra)
        let F = StateNetworkParameters.frequencyWidth
        x0 = floats(F); x1 = floats(F); input = floats(parameters.inputs)
        h1 = floats(width); h2 = floats(width); h3 = floats(width)
        dx0 = floats(F); dx1 = floats(F); dinput = floats(parameters.inputs)
        dh1 = floats(width); dh2 = floats(width); dh3 = floats(width)
        logits = floats(outputs)
        norm0 = BatchNormCache(channels: F)
        norm1 = BatchNormCache(channels: width)
    }

    deinit {
        buckets.deallocate()
        for p in [extra, x0, x1, input, h1, h2, h3, dx0, dx1, dinput, dh1, dh2, dh3, logits] { p.deallocate() }
    }

    /// Logits for `m` states (every rank calls it: BatchNorm is synchronised).
    public func forward(states m: Int, arena: ParameterArena, comm: any Communicator) {
        precondition(m <= capacity, "state batch \(m) exceeds its capacity \(capacity)")
        count = m
        let p = parameters
        let F = StateNetworkParameters.frequencyWidth, D = p.inputs, E = p.extra
        let table = arena.value(p.frequencyTable)
        for i in 0..<m { (x0 + i * F).update(from: table + Int(buckets[i]) * F, count: F) }
        batchNormForward(out: x1, cache: norm0, inp: x0, gamma: arena.value(p.frequencyNorm.gamma),
                         beta: arena.value(p.frequencyNorm.beta), batch: m, channels: F, comm: comm)
        for i in 0..<m {
            (input + i * D).update(from: x1 + i * F, count: F)
            if E > 0 { (input + i * D + F).update(from: extra + i * E, count: E) }
        }
        linearForward(out: h1, inp: input, weight: arena.value(p.hidden.weight), bias: arena.value(p.hidden.bias!),
                      batch: m, inFeatures: D, outFeatures: width)
        batchNormForward(out: h2, cache: norm1, inp: h1, gamma: arena.value(p.hiddenNorm.gamma),
                         beta: arena.value(p.hiddenNorm.beta), batch: m, channels: width, comm: comm)
        tanhForward(out: h3, inp: h2, count: m * width)
        linearForward(out: logits, inp: h3, weight: arena.value(p.output.weight), bias: arena.value(p.output.bias!),
                      batch: m, inFeatures: width, outFeatures: outputs)
    }

    /// Adds the gradient for d(logits) = `dlogits` (m, outputs) into `arena`
    /// (every rank calls it after `forward`).
    public func backward(dlogits: UnsafePointer<Float>, arena: ParameterArena, comm: any Communicator) {
        let m = count, p = parameters
        let F = StateNetworkParameters.frequencyWidth, D = p.inputs
        dh3.update(repeating: 0, count: m * width)
        linearBackward(dinp: dh3, dweight: arena.gradient(p.output.weight), dbias: arena.gradient(p.output.bias!),
                       dout: dlogits, inp: h3, weight: arena.value(p.output.weight), batch: m, inFeatures: width, outFeatures: outputs)
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
