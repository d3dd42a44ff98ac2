// Soft selection (DARTS, AutoEmb; ARCHITECTURE §1): every ID stores all six
// candidate embeddings in one row (2+4+…+128 = 222 floats) and six weight
// logits beside it (the ID's extra state, which travels with the row). A record's embedding is
//   Σ_j softmax(logits)_j · tanh(BN_j(Linear_j(e_j))),   Linear_j: d_j → 128,
// each BatchNorm synchronised over the global batch.
import Comm
import Embeddings
import Kernels

public struct SoftSelectionParameters: Sendable {
    public let widths: [Int]
    public let candidates: [LinearParameters]
    public let norms: [BatchNormParameters]
    public let top: Int
    /// Floats of a stored row: all candidates side by side.
    public var rowWidth: Int { widths.reduce(0, +) }

    public init(side: EmbeddingSide, widths: [Int], layout: inout ParameterLayout) {
        self.widths = widths
        top = widths.last!
        candidates = widths.map { layout.addLinear("\(side.singular).candidate.\($0)", inFeatures: $0, outFeatures: widths.last!) }
        norms = widths.map { layout.addBatchNorm("\(side.singular).candidate.\($0).norm", channels: widths.last!) }
    }
}

public final class SoftSelectionEmbedding: EmbeddingFormer {
    public let parameters: SoftSelectionParameters
    let widths: [Int]
    let offsets: [Int]
    let top: Int
    let K: Int
    /// Per candidate j: distinct rows' segment j (maxSlice, d_j), its Linear
    /// output (maxSlice, top); per record: gathered, normalised, activated (n, top).
    let segments, linear, gathered, normalised, candidateOut: [UnsafeMutablePointer<Float>]
    let dsegments, dlinear, dgathered, dnormalised, dcandidate: [UnsafeMutablePointer<Float>]
    let caches: [BatchNormCache]
    /// Per record: softmax weights (n, K), their gradient.
    let weights, dweights: UnsafeMutablePointer<Float>
    public let activated: UnsafeMutablePointer<Float>
    public let dactivated: UnsafeMutablePointer<Float>
    var records = 0
    var distinct = 0

    public init(parameters: SoftSelectionParameters, maxSlice: Int) {
        self.parameters = parameters
        widths = parameters.widths
        top = parameters.top
        K = widths.count
        var running = 0
        offsets = widths.map { w in defer { running += w }; return running }
        let n = max(1, maxSlice)
        func buffers(_ width: (Int) -> Int) -> [UnsafeMutablePointer<Float>] {
            parameters.widths.map { w in
                let p = UnsafeMutablePointer<Float>.allocate(capacity: n * width(w))
                p.initialize(repeating: 0, count: n * width(w))
                return p
            }
        }
        let t = parameters.top
        segments = buffers { $0 }; dsegments = buffers { $0 }
        linear = buffers { _ in t }; dlinear = buffers { _ in t }
        gathered = buffers { _ in t }; dgathered = buffers { _ in t }
        normalised = buffers { _ in t }; dnormalised = buffers { _ in t }
        candidateOut = buffers { _ in t }; dcandidate = buffers { _ in t }
        caches = widths.map { _ in BatchNormCache(channels: t) }
        weights = .allocate(capacity: n * widths.count); weights.initialize(repeating: 0, count: n * widths.count)
        dweights = .allocate(capacity: n * widths.count); dweights.initialize(repeating: 0, count: n * widths.count)
        activated = .allocate(capacity: n * t); activated.initialize(repeating: 0, count: n * t)
        dactivated = .allocate(capacity: n * t); dactivated.initialize(repeating: 0, count: n * t)
    }

    deinit {
        for list in [segments, dsegments, linear, dlinear, gathered, dgathered, normalised, dnormalised, candidateOut, dcandidate] {
            for p in list { p.deallocate() }
        }
        weights.deallocate(); dweights.deallocate(); activated.deallocate(); dactivated.deallocate()
    }

    public func forward(rows: ReceivedRows, arena: ParameterArena, comm: any Communicator) {
        precondition(rows.extraWidth == K, "soft selection needs \(K) weight logits per ID, the table carries \(rows.extraWidth)")
        let n = rows.records
        records = n
        distinct = rows.distinctCount
        // Per record: softmax of its ID's logits.
        for k in 0..<n {
            softmax(out: weights + k * K, inp: rows.extra(rows.distinct(ofRecord: k)), count: K)
        }
        activated.update(repeating: 0, count: n * top)
        for j in 0..<K {
            let w = widths[j]
            for d in 0..<distinct { (segments[j] + d * w).update(from: rows.row(d) + offsets[j], count: w) }
            let link = parameters.candidates[j]
            linearForward(out: linear[j], inp: segments[j], weight: arena.value(link.weight), bias: arena.value(link.bias!),
                          batch: distinct, inFeatures: w, outFeatures: top)
            for k in 0..<n {
                (gathered[j] + k * top).update(from: linear[j] + rows.distinct(ofRecord: k) * top, count: top)
            }
            let norm = parameters.norms[j]
            batchNormForward(out: normalised[j], cache: caches[j], inp: gathered[j], gamma: arena.value(norm.gamma),
                             beta: arena.value(norm.beta), batch: n, channels: top, comm: comm)
            tanhForward(out: candidateOut[j], inp: normalised[j], count: n * top)
            for k in 0..<n {
                let wk = weights[k * K + j], src = candidateOut[j] + k * top, dst = activated + k * top
                for c in 0..<top { dst[c] += wk * src[c] }
            }
        }
    }

    public func backward(rows: ReceivedRows, arena: ParameterArena, comm: any Communicator) {
        let n = records
        // d(weight_kj) = <dE_k, out_kj>; through the softmax to the logits.
        for k in 0..<n {
            let dE = dactivated + k * top
            for j in 0..<K {
                let o = candidateOut[j] + k * top
                var s: Float = 0
                for c in 0..<top { s += dE[c] * o[c] }
                dweights[k * K + j] = s
            }
            let w = weights + k * K, dw = dweights + k * K
            var dot: Float = 0
            for j in 0..<K { dot += w[j] * dw[j] }
            let da = rows.extraGradient(rows.distinct(ofRecord: k))
            for j in 0..<K { da[j] += w[j] * (dw[j] - dot) }
        }
        for j in 0..<K {
            let w = widths[j]
            for k in 0..<n {
                let wk = weights[k * K + j], src = dactivated + k * top, dst = dcandidate[j] + k * top
                for c in 0..<top { dst[c] = wk * src[c] }
            }
            dnormalised[j].update(repeating: 0, count: n * top)
            tanhBackward(dinp: dnormalised[j], dout: dcandidate[j], out: candidateOut[j], count: n * top)
            dgathered[j].update(repeating: 0, count: n * top)
            let norm = parameters.norms[j]
            batchNormBackward(dinp: dgathered[j], dgamma: arena.gradient(norm.gamma), dbeta: arena.gradient(norm.beta),
                              dout: dnormalised[j], inp: gathered[j], gamma: arena.value(norm.gamma), cache: caches[j],
                              batch: n, channels: top, comm: comm)
            dlinear[j].update(repeating: 0, count: distinct * top)
            for k in 0..<n {
                let dst = dlinear[j] + rows.distinct(ofRecord: k) * top, src = dgathered[j] + k * top
                for c in 0..<top { dst[c] += src[c] }
            }
            dsegments[j].update(repeating: 0, count: distinct * w)
            let link = parameters.candidates[j]
            linearBackward(dinp: dsegments[j], dweight: arena.gradient(link.weight), dbias: arena.gradient(link.bias!),
                           dout: dlinear[j], inp: segments[j], weight: arena.value(link.weight),
                           batch: distinct, inFeatures: w, outFeatures: top)
            for d in 0..<distinct { (rows.gradient(d) + offsets[j]).update(from: dsegments[j] + d * w, count: w) }
        }
    }
}

