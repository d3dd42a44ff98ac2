// How a hard-selection model forms a record's 128-wide embedding from the row
// its owner sent (ARCHITECTURE §2, Eq. 1): a row of width d_j goes through
// the transform chain W_{j→j+1} … W_{n-1→n} to d_n, then BatchNorm (synchronised
// over the global batch) and tanh. FIXED is the case of one width (no chain);
// ESAPN uses the six candidate widths.
//
// The chain runs as a cascade over the slice's distinct IDs sorted by width:
// level L holds every distinct ID of width ≤ d_L, already carried to d_L, so
// each transform is one sgemm over all the rows that need it.
import Comm
import Embeddings
import Kernels

/// The dense parameters of one side's chain and its BatchNorm.
public struct HardSelectionParameters: Sendable {
    public let widths: [Int]
    /// chain[L] maps d_L → d_{L+1}.
    public let chain: [LinearParameters]
    public let norm: BatchNormParameters

    public init(side: EmbeddingSide, widths: [Int], layout: inout ParameterLayout) {
        self.widths = widths
        var links: [LinearParameters] = []
        for L in 0..<(widths.count - 1) {
            links.append(layout.addLinear("\(side.singular).transform.\(widths[L])to\(widths[L + 1])",
                                          inFeatures: widths[L], outFeatures: widths[L + 1]))
        }
        chain = links
        norm = layout.addBatchNorm("\(side.singular).norm", channels: widths.last!)
    }
}

/// Forward and backward of one side's embeddings over a slice; buffers sized once.
public final class HardSelectionEmbedding {
    public let parameters: HardSelectionParameters
    let widths: [Int]
    let top: Int
    let maxSlice: Int
    /// levels[L]: (maxSlice, d_L) rows of width ≤ d_L carried to d_L, in width order.
    let levels: [UnsafeMutablePointer<Float>]
    let dlevels: [UnsafeMutablePointer<Float>]
    /// How many distinct IDs have width ≤ d_L.
    var levelCount: [Int]
    /// Distinct index at each sorted position, and the position of each distinct index.
    let sortedDistinct: UnsafeMutablePointer<Int32>
    let positionOf: UnsafeMutablePointer<Int32>
    /// Per record: embedding before BN (n, top), after BN, after tanh.
    public let gathered, normalised, activated: UnsafeMutablePointer<Float>
    let dgathered, dnormalised: UnsafeMutablePointer<Float>
    /// (records, top): d(activated), written by the caller before `backward`.
    public let dactivated: UnsafeMutablePointer<Float>
    public let normCache: BatchNormCache
    var records = 0
    var distinct = 0

    public init(parameters: HardSelectionParameters, maxSlice: Int) {
        self.parameters = parameters
        widths = parameters.widths
        top = widths.last!
        self.maxSlice = maxSlice
        let n = max(1, maxSlice)
        // Zero-filled now, so the whole buffer is resident from the start and a
        // later batch with more distinct IDs does not grow the process.
        func buffer<T: Numeric>(_ count: Int) -> UnsafeMutablePointer<T> {
            let p = UnsafeMutablePointer<T>.allocate(capacity: count)
            p.initialize(repeating: 0, count: count)
            return p
        }
        levels = widths.map { buffer(n * $0) }
        dlevels = widths.map { buffer(n * $0) }
        levelCount = [Int](repeating: 0, count: widths.count)
        sortedDistinct = buffer(n)
        positionOf = buffer(n)
        gathered = buffer(n * top)
        normalised = buffer(n * top)
        activated = buffer(n * top)
        dgathered = buffer(n * top)
        dnormalised = buffer(n * top)
        dactivated = buffer(n * top)
        normCache = BatchNormCache(channels: top)
    }

    deinit {
        for p in levels + dlevels { p.deallocate() }
        sortedDistinct.deallocate(); positionOf.deallocate()
        for p in [gathered, normalised, activated, dgathered, dnormalised, dactivated] { p.deallocate() }
    }

    /// Forms `activated` (records, top) from the rows received.
    public func forward(rows: ReceivedRows, arena: ParameterArena, comm: any Communicator) {
        let n = rows.records
        records = n
        distinct = rows.distinctCount
        // Sort distinct IDs by width (counting sort, stable).
        var pos = 0
        for L in 0..<widths.count {
            for d in 0..<distinct where rows.sizeIndex(d) == L {
                sortedDistinct[pos] = Int32(d)
                positionOf[d] = Int32(pos)
                pos += 1
            }
            levelCount[L] = pos
        }
        // Cascade: level L = chain(level L-1) stacked over the raw rows of width L.
        for L in 0..<widths.count {
            let w = widths[L]
            let carried = L == 0 ? 0 : levelCount[L - 1]
            if carried > 0 {
                let link = parameters.chain[L - 1]
                linearForward(out: levels[L], inp: levels[L - 1], weight: arena.value(link.weight),
                              bias: arena.value(link.bias!), batch: carried, inFeatures: widths[L - 1], outFeatures: w)
            }
            for p in carried..<levelCount[L] {
                (levels[L] + p * w).update(from: rows.row(Int(sortedDistinct[p])), count: w)
            }
        }
        // Per record: gather, BatchNorm over the global batch, tanh.
        let final = levels[widths.count - 1]
        for k in 0..<n {
            let p = Int(positionOf[rows.distinct(ofRecord: k)])
            (gathered + k * top).update(from: final + p * top, count: top)
        }
        batchNormForward(out: normalised, cache: normCache, inp: gathered,
                         gamma: arena.value(parameters.norm.gamma), beta: arena.value(parameters.norm.beta),
                         batch: n, channels: top, comm: comm)
        tanhForward(out: activated, inp: normalised, count: n * top)
    }

    /// From d(activated) (records, top), adds dense gradients into `arena` and
    /// writes each distinct row's gradient into its slot in `rows`.
    public func backward(rows: ReceivedRows, arena: ParameterArena, comm: any Communicator) {
        let n = records
        dnormalised.update(repeating: 0, count: n * top)
        tanhBackward(dinp: dnormalised, dout: dactivated, out: activated, count: n * top)
        dgathered.update(repeating: 0, count: n * top)
        batchNormBackward(dinp: dgathered, dgamma: arena.gradient(parameters.norm.gamma),
                          dbeta: arena.gradient(parameters.norm.beta), dout: dnormalised, inp: gathered,
                          gamma: arena.value(parameters.norm.gamma), cache: normCache,
                          batch: n, channels: top, comm: comm)
        let S = widths.count
        dlevels[S - 1].update(repeating: 0, count: distinct * top)
        for k in 0..<n {
            let p = Int(positionOf[rows.distinct(ofRecord: k)])
            let dst = dlevels[S - 1] + p * top, src = dgathered + k * top
            for j in 0..<top { dst[j] += src[j] }
        }
        for L in stride(from: S - 1, through: 0, by: -1) {
            let w = widths[L]
            let carried = L == 0 ? 0 : levelCount[L - 1]
            for p in carried..<levelCount[L] {
                rows.gradient(Int(sortedDistinct[p])).update(from: dlevels[L] + p * w, count: w)
            }
            if carried > 0 {
                let link = parameters.chain[L - 1]
                dlevels[L - 1].update(repeating: 0, count: carried * widths[L - 1])
                linearBackward(dinp: dlevels[L - 1], dweight: arena.gradient(link.weight), dbias: arena.gradient(link.bias!),
                               dout: dlevels[L], inp: levels[L - 1], weight: arena.value(link.weight),
                               batch: carried, inFeatures: widths[L - 1], outFeatures: w)
            }
        }
    }
}
