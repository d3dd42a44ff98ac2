// The block both the recommender's inference head and the policy/controller
// networks end with: Linear(in, H) → BatchNorm(H) (synchronised) → tanh →
// Linear(H, out). Its weights are `PREFIX.fc1`, `PREFIX.norm1`, `PREFIX.fc2`.
import Comm

public struct HiddenBlockParameters: Sendable {
    public let hidden: LinearParameters        // in → H, weight (H, in)
    public let hiddenNorm: BatchNormParameters // (H)
    public let output: LinearParameters        // H → out, weight (out, H)

    public init(_ prefix: String, inputs: Int, hidden width: Int, outputs: Int, layout: inout ParameterLayout) {
        hidden = layout.addLinear("\(prefix).fc1", inFeatures: inputs, outFeatures: width)
        hiddenNorm = layout.addBatchNorm("\(prefix).norm1", channels: width)
        output = layout.addLinear("\(prefix).fc2", inFeatures: width, outFeatures: outputs)
    }
}

/// Activations of the block over up to `capacity` rows; buffers sized once.
public final class HiddenBlock {
    public let parameters: HiddenBlockParameters
    let inputs, width, outputs, capacity: Int
    let h1, h2, h3, d1, d2, d3: UnsafeMutablePointer<Float>   // fc1 out, BN out, tanh out, and their gradients
    let norm: BatchNormCache
    /// (rows, outputs): the block's output after `forward`.
    public let out: UnsafeMutablePointer<Float>
    var rows = 0

    public init(parameters: HiddenBlockParameters, capacity: Int) {
        self.parameters = parameters
        inputs = parameters.hidden.inFeatures
        width = parameters.hidden.outFeatures
        outputs = parameters.output.outFeatures
        self.capacity = capacity
        let n = max(1, capacity)
        func buffer(_ c: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: n * c)
            p.initialize(repeating: 0, count: n * c)
            return p
        }
        h1 = buffer(width); h2 = buffer(width); h3 = buffer(width)
        d1 = buffer(width); d2 = buffer(width); d3 = buffer(width)
        out = buffer(outputs)
        norm = BatchNormCache(channels: width)
    }

    deinit { for p in [h1, h2, h3, d1, d2, d3, out] { p.deallocate() } }

    /// `out` = block(`inp`) for `n` rows (collective: the BatchNorm is synchronised).
    public func forward(_ inp: UnsafePointer<Float>, rows n: Int, arena: ParameterArena, comm: any Communicator) {
        precondition(n <= capacity, "hidden block: \(n) rows exceed its capacity \(capacity)")
        rows = n
        let p = parameters
        linearForward(out: h1, inp: inp, weight: arena.value(p.hidden.weight), bias: arena.value(p.hidden.bias!),
                      batch: n, inFeatures: inputs, outFeatures: width)
        batchNormForward(out: h2, cache: norm, inp: h1, gamma: arena.value(p.hiddenNorm.gamma),
                         beta: arena.value(p.hiddenNorm.beta), batch: n, channels: width, comm: comm)
        tanhForward(out: h3, inp: h2, count: n * width)
        linearForward(out: out, inp: h3, weight: arena.value(p.output.weight), bias: arena.value(p.output.bias!),
                      batch: n, inFeatures: width, outFeatures: outputs)
    }

    /// From d(out), adds the block's weight gradients into `arena` and writes
    /// d(inp) into `dinp` (overwritten), given the `inp` of `forward` (collective).
    public func backward(dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, dinp: UnsafeMutablePointer<Float>,
                         arena: ParameterArena, comm: any Communicator) {
        let n = rows, p = parameters
        d3.update(repeating: 0, count: n * width)
        linearBackward(dinp: d3, dweight: arena.gradient(p.output.weight), dbias: arena.gradient(p.output.bias!),
                       dout: dout, inp: h3, weight: arena.value(p.output.weight), batch: n, inFeatures: width, outFeatures: outputs)
        d2.update(repeating: 0, count: n * width)
        tanhBackward(dinp: d2, dout: d3, out: h3, count: n * width)
        d1.update(repeating: 0, count: n * width)
        batchNormBackward(dinp: d1, dgamma: arena.gradient(p.hiddenNorm.gamma), dbeta: arena.gradient(p.hiddenNorm.beta),
                          dout: d2, inp: h1, gamma: arena.value(p.hiddenNorm.gamma), cache: norm,
                          batch: n, channels: width, comm: comm)
        dinp.update(repeating: 0, count: n * inputs)
        linearBackward(dinp: dinp, dweight: arena.gradient(p.hidden.weight), dbias: arena.gradient(p.hidden.bias!),
                       dout: d1, inp: inp, weight: arena.value(p.hidden.weight), batch: n, inFeatures: inputs, outFeatures: width)
    }
}
