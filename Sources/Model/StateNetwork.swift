// The small network on an ID's state shared by ESAPN's policy and AutoEmb's
// controller (ARCHITECTURE §2, paper §2.3):
//   [BN(32)(FreqEmb(f)), extra] → Linear(·,H) → BN(H) → tanh → Linear(H, outputs)
// FreqEmb has exact rows for f ≤ 1024 and logarithmic buckets above, so its
// gradient stays small enough to all-reduce every batch. `extra` is what the
// caller adds to the state: ESAPN the one-hot of the current size (and the
// last loss), AutoEmb the current weights.
import Comm
import Kernels
#if canImport(Glibc)
import Glibc
#endif

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
    /// fc1 (32 + extra → H) → BN(H) → tanh → fc2 (H → outputs).
    public let block: HiddenBlockParameters
    public let extra: Int
    public var inputs: Int { Self.frequencyWidth + extra }

    public init(name: String, extra: Int, hidden width: Int, outputs: Int, layout: inout ParameterLayout) {
        self.extra = extra
        frequencyTable = layout.add("\(name).frequency", shape: [FrequencyBuckets.count, Self.frequencyWidth],
                                    initialiser: .normal(standardDeviation: 1))
        frequencyNorm = layout.addBatchNorm("\(name).norm0", channels: Self.frequencyWidth)
        block = HiddenBlockParameters(name, inputs: Self.frequencyWidth + extra, hidden: width, outputs: outputs,
                                      layout: &layout)
    }
}

/// Forward and backward over a batch of states; buffers sized once.
public final class StateNetwork {
    public let parameters: StateNetworkParameters
    public let outputs: Int
    let capacity: Int
    /// Per state: the frequency bucket and the extra inputs (capacity × extra); callers fill them.
    public let buckets: UnsafeMutablePointer<Int32>
    public let extra: UnsafeMutablePointer<Float>
    let x0, x1, input, dx0, dx1, dinput: UnsafeMutablePointer<Float>
    let block: HiddenBlock
    /// (m, outputs).
    public var logits: UnsafeMutablePointer<Float> { block.out }
    let norm0: BatchNormCache
    public private(set) var count = 0

    public init(parameters: StateNetworkParameters, capacity: Int) {
        self.parameters = parameters
        outputs = parameters.block.output.outFeatures
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
        dx0 = floats(F); dx1 = floats(F); dinput = floats(parameters.inputs)
        block = HiddenBlock(parameters: parameters.block, capacity: n)
        norm0 = BatchNormCache(channels: F)
    }

    deinit {
        buckets.deallocate()
        for p in [extra, x0, x1, input, dx0, dx1, dinput] { p.deallocate() }
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
        block.forward(input, rows: m, arena: arena, comm: comm)
    }

    /// Adds the gradient for d(logits) = `dlogits` (m, outputs) into `arena`
    /// (every rank calls it after `forward`).
    public func backward(dlogits: UnsafePointer<Float>, arena: ParameterArena, comm: any Communicator) {
        let m = count, p = parameters
        let F = StateNetworkParameters.frequencyWidth, D = p.inputs
        block.backward(dout: dlogits, inp: input, dinp: dinput, arena: arena, comm: comm)
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
