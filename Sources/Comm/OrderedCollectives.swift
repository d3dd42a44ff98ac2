// The collectives of logical ranks (LogicalWorld.swift), made by the leader
// for every logical rank its process hosts, with results that depend only on
// the C logical contributions: sums fold in logical rank order, exchanges
// are ordered by logical source rank.
#if canImport(Glibc)
import Glibc
#endif

extension LogicalWorld {
    // MARK: - The collectives, for all hosted ranks at once

    func perform(_ operation: Operation) {
        switch operation {
        case .none: preconditionFailure("a logical rank arrived without a request")
        case .sumFloat: reduce(Float.self) { out, c, n in for j in 0..<n { out[j] += c[j] } }
        case .sumDouble: reduce(Double.self) { out, c, n in for j in 0..<n { out[j] += c[j] } }
        case .maxDouble: reduce(Double.self) { out, c, n in for j in 0..<n { out[j] = Swift.max(out[j], c[j]) } }
        case .allToAll: allToAll()
        case .allToAllV: allToAllV()
        case .broadcast(let root): broadcast(root: root)
        case .allGather: allGather()
        case .barrier: outer.barrier()
        }
    }

    /// The process-level all-to-all-v with the counts and offsets in the scratch arrays.
    func exchange(send: UnsafeRawPointer, sendBytes: Int, receive: UnsafeMutableRawPointer, receiveBytes: Int) {
        let P = outer.size
        outer.allToAllV(send: UnsafeRawBufferPointer(start: send, count: sendBytes),
                        sendCounts: UnsafeBufferPointer(start: sendCounts, count: P),
                        sendOffsets: UnsafeBufferPointer(start: sendOffsets, count: P),
                        receive: UnsafeMutableRawBufferPointer(start: receive, count: receiveBytes),
                        receiveCounts: UnsafeBufferPointer(start: receiveCounts, count: P),
                        receiveOffsets: UnsafeBufferPointer(start: receiveOffsets, count: P))
    }

    /// Every logical rank's `bytes` bytes (the hosted ones' at `source(i)`),
    /// in logical rank order, into `receiveStage` (C·bytes).
    func gatherAll(bytes: Int, source: (Int) -> UnsafeRawPointer?) {
        let P = outer.size, L = hosted.count
        receiveStage.reserve(size * bytes)
        // One hosted rank sends from its own buffer; more are staged side by side.
        let send: UnsafeRawPointer
        if L == 1, let only = source(0) {
            send = only
        } else {
            sendStage.reserve(L * bytes)
            for i in 0..<L where bytes > 0 { (sendStage.base + i * bytes).copyMemory(from: source(i)!, byteCount: bytes) }
            send = UnsafeRawPointer(sendStage.base)
        }
        for q in 0..<P {
            let theirs = Self.hosted(process: q, processes: P, logical: size)
            sendCounts[q] = L * bytes
            sendOffsets[q] = 0
            receiveCounts[q] = theirs.count * bytes
            receiveOffsets[q] = theirs.lowerBound * bytes
        }
        exchange(send: send, sendBytes: L * bytes, receive: receiveStage.base, receiveBytes: size * bytes)
    }

    /// Sums of at most this many bytes of all C contributions gather whole; larger ones are reduced in segments.
    public static let gatherWholeBytes = 64 << 10

    /// c₀ ⊕ c₁ ⊕ … ⊕ c_{C−1}, element by element, left to right, into every hosted rank's buffer.
    /// `fold(out, c, n)` applies the operation element by element, out[j] = out[j] ⊕ c[j]
    /// (a loop over contiguous elements, which the compiler vectorises without reordering any sum).
    /// Small sums gather all C contributions to every process (one collective);
    /// large ones are cut into P segments, process q folds segment q of all C
    /// contributions, and the folded segments are gathered (two collectives, and
    /// each process receives about (C/P + 1)·n values instead of C·n). Every
    /// element is folded in the same order either way, so the bits are the same.
    @inline(__always)
    func reduce<T: BinaryFloatingPoint>(_: T.Type,
                                                _ fold: (UnsafeMutablePointer<T>, UnsafePointer<T>, Int) -> Void) {
        let n = requests[0].count
        for (i, r) in requests.enumerated() where r.count != n {
            outer.abort("logical rank \(hosted.lowerBound + i) reduces \(r.count) values, logical rank "
                        + "\(hosted.lowerBound) \(n)", code: 1)
        }
        guard n > 0 else { outer.barrier(); return }
        let e = MemoryLayout<T>.stride
        let out = requests[0].buffer!.assumingMemoryBound(to: T.self)
        defer { for r in requests.dropFirst() { r.buffer!.copyMemory(from: out, byteCount: n * e) } }
        let P = outer.size, L = hosted.count
        guard P > 1, size * n * e > Self.gatherWholeBytes else {
            gatherAll(bytes: n * e) { UnsafeRawPointer(self.requests[$0].buffer) }
            let all = receiveStage.base.assumingMemoryBound(to: T.self)
            out.update(from: all, count: n)
            for v in 1..<size { fold(out, all + v * n, n) }
            return
        }
        func segment(_ q: Int) -> Range<Int> { (q * n / P)..<((q + 1) * n / P) }
        // 1. Segment q of every hosted contribution to process q ([q][hosted rank][segment q] when staged).
        if L > 1 { sendStage.reserve(L * n * e) }
        var at = 0
        for q in 0..<P {
            let part = segment(q)
            if L > 1 {
                sendOffsets[q] = at
                for r in requests where !part.isEmpty {
                    (sendStage.base + at).copyMemory(from: r.buffer! + part.lowerBound * e, byteCount: part.count * e)
                    at += part.count * e
                }
            } else {
                sendOffsets[q] = part.lowerBound * e
            }
            sendCounts[q] = L * part.count * e
        }
        let mine = segment(outer.rank), m = mine.count
        for q in 0..<P {
            let theirs = Self.hosted(process: q, processes: P, logical: size)
            receiveCounts[q] = theirs.count * m * e
            receiveOffsets[q] = theirs.lowerBound * m * e
        }
        receiveStage.reserve(size * m * e)
        exchange(send: L > 1 ? UnsafeRawPointer(sendStage.base) : UnsafeRawPointer(out), sendBytes: L * n * e,
                 receive: receiveStage.base, receiveBytes: size * m * e)
        // 2. This process's segment folded in logical rank order (into the first contribution's place).
        let all = receiveStage.base.assumingMemoryBound(to: T.self)
        for v in 1..<size where m > 0 { fold(all, all + v * m, m) }
        // 3. Every process's folded segment, into the leader's buffer.
        for q in 0..<P {
            let part = segment(q)
            sendCounts[q] = m * e
            sendOffsets[q] = 0
            receiveCounts[q] = part.count * e
            receiveOffsets[q] = part.lowerBound * e
        }
        exchange(send: receiveStage.base, sendBytes: m * e, receive: UnsafeMutableRawPointer(out), receiveBytes: n * e)
    }

    /// Each logical rank's C counts: the whole C × C matrix gathered, each rank reads its column.
    func allToAll() {
        let stride = size * MemoryLayout<Int>.stride
        gatherAll(bytes: stride) { self.requests[$0].send }
        let matrix = receiveStage.base.assumingMemoryBound(to: Int.self)
        for (i, r) in requests.enumerated() {
            let d = hosted.lowerBound + i, out = r.buffer!.assumingMemoryBound(to: Int.self)
            for s in 0..<size { out[s] = matrix[s * size + d] }
        }
    }

    /// Bytes from every hosted source to every logical destination, packed per
    /// destination process as (destination, source) in logical order, in one
    /// process-level all-to-all-v, then unpacked the same way.
    func allToAllV() {
        let P = outer.size, L = hosted.count
        var sendTotal = 0, receiveTotal = 0
        for q in 0..<P {
            let theirs = Self.hosted(process: q, processes: P, logical: size)
            var out = 0, into = 0
            for d in theirs { for i in 0..<L { out += requests[i].sendCounts![d] } }
            for i in 0..<L { for s in theirs { into += requests[i].receiveCounts![s] } }
            sendCounts[q] = out; sendOffsets[q] = sendTotal; sendTotal += out
            receiveCounts[q] = into; receiveOffsets[q] = receiveTotal; receiveTotal += into
        }
        sendStage.reserve(sendTotal)
        receiveStage.reserve(receiveTotal)
        var at = 0
        for q in 0..<P {
            for d in Self.hosted(process: q, processes: P, logical: size) {
                for r in requests {
                    let n = r.sendCounts![d]
                    if n > 0 { (sendStage.base + at).copyMemory(from: r.send! + r.sendOffsets![d], byteCount: n) }
                    at += n
                }
            }
        }
        exchange(send: sendStage.base, sendBytes: sendTotal, receive: receiveStage.base, receiveBytes: receiveTotal)
        at = 0
        for q in 0..<P {
            for r in requests {
                for s in Self.hosted(process: q, processes: P, logical: size) {
                    let n = r.receiveCounts![s]
                    if n > 0 { (r.buffer! + r.receiveOffsets![s]).copyMemory(from: receiveStage.base + at, byteCount: n) }
                    at += n
                }
            }
        }
    }

    func broadcast(root: Int) {
        let n = requests[0].count
        sendStage.reserve(n)
        if hosted.contains(root), n > 0 {
            sendStage.base.copyMemory(from: requests[root - hosted.lowerBound].buffer!, byteCount: n)
        }
        outer.broadcast(UnsafeMutableRawBufferPointer(start: sendStage.base, count: n), root: process(of: root))
        for r in requests where n > 0 { r.buffer!.copyMemory(from: sendStage.base, byteCount: n) }
    }

    func allGather() {
        let n = requests[0].count
        gatherAll(bytes: n) { self.requests[$0].send }
        for r in requests where n > 0 { r.buffer!.copyMemory(from: receiveStage.base, byteCount: size * n) }
    }
}

/// A growable byte buffer that keeps its largest size.
struct Stage {
    var base = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)
    var capacity = 64
    mutating func reserve(_ bytes: Int) {
        guard bytes > capacity else { return }
        base.deallocate()
        capacity = max(bytes, 2 * capacity)
        base = .allocate(byteCount: capacity, alignment: 64)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: capacity)
    }
}

