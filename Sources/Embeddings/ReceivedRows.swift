// The requester's side of one table for one batch (ARCHITECTURE §4): the
// distinct IDs of this rank's slice, the rows their owners sent back at their
// own widths, and the slots where the formers write those rows' gradients.
// This is all a former sees of a table: for each distinct ID its width, its
// row and its gradient slot (and the extra floats beside them), and for each
// record the index of its distinct ID. The exchange fills it; nothing outside
// Embeddings can change it, except the gradient slots.

public final class ReceivedRows {
    public let widths: [Int]
    /// Extra floats beside each row (soft selection's weight logits), 0 if none.
    public let extraWidth: Int
    public let capacity: Int
    let pool = BufferPool()
    /// Global ID → index among this batch's distinct IDs, or -1 (reset after each batch).
    let distinctOf: UnsafeMutablePointer<Int32>
    let totalIDs: Int
    let ids: UnsafeMutablePointer<Int32>
    let frequencies: UnsafeMutablePointer<UInt32>
    let recordDistinct: UnsafeMutablePointer<Int32>
    let sizes: UnsafeMutablePointer<Int32>
    let rows: UnsafeMutablePointer<UnsafeMutablePointer<Float>>
    let gradients: UnsafeMutablePointer<UnsafeMutablePointer<Float>>
    /// Where the rows arrive, and where their gradients are written, in the
    /// exchange's entry layout (WireFormat's row entries), one per distinct ID.
    let rowBuffer, gradientBuffer: UnsafeMutableRawPointer
    let bufferBytes: Int

    public private(set) var records = 0
    public private(set) var distinctCount = 0

    public init(widths: [Int], extraWidth: Int, totalIDs: Int, capacity: Int) {
        self.widths = widths
        self.extraWidth = extraWidth
        self.totalIDs = totalIDs
        self.capacity = capacity
        distinctOf = pool.make(totalIDs, Int32(-1))
        ids = pool.make(capacity, Int32(0))
        frequencies = pool.make(capacity, UInt32(0))
        recordDistinct = pool.make(capacity, Int32(0))
        sizes = pool.make(capacity, Int32(0))
        rows = pool.make(capacity, UnsafeMutablePointer<Float>(bitPattern: 64)!)
        gradients = pool.make(capacity, UnsafeMutablePointer<Float>(bitPattern: 64)!)
        bufferBytes = capacity * WireFormat.rowEntryBytes(width: widths.max()!, extra: extraWidth)
        rowBuffer = pool.raw(bufferBytes)
        gradientBuffer = pool.raw(bufferBytes)
    }

    /// Bytes this side of the exchange allocated.
    public var bytes: Int { pool.bytes }

    // MARK: - What a former reads

    /// The index of record `k`'s ID among the distinct IDs.
    @inline(__always) public func distinct(ofRecord k: Int) -> Int { Int(recordDistinct[k]) }
    /// Width index of distinct ID `d`'s row as received.
    @inline(__always) public func sizeIndex(_ d: Int) -> Int { Int(sizes[d]) }
    @inline(__always) public func width(_ d: Int) -> Int { widths[Int(sizes[d])] }
    /// The width record `k`'s row was read at.
    @inline(__always) public func width(ofRecord k: Int) -> Int { width(distinct(ofRecord: k)) }
    @inline(__always) public func row(_ d: Int) -> UnsafePointer<Float> { UnsafePointer(rows[d]) }
    /// Where d's row gradient goes (zero at first; formers write or add into it).
    @inline(__always) public func gradient(_ d: Int) -> UnsafeMutablePointer<Float> { gradients[d] }
    /// The extra floats beside d's row, and their gradient slot.
    @inline(__always) public func extra(_ d: Int) -> UnsafePointer<Float> { UnsafePointer(rows[d] + width(d)) }
    @inline(__always) public func extraGradient(_ d: Int) -> UnsafeMutablePointer<Float> { gradients[d] + width(d) }
    /// d's global ID and its largest frequency in the slice.
    @inline(__always) public func globalID(_ d: Int) -> Int { Int(ids[d]) }
    @inline(__always) public func frequency(_ d: Int) -> UInt32 { frequencies[d] }

    // MARK: - Filled by the exchange

    /// Deduplicates the slice's IDs (first-appearance order, largest frequency per ID).
    func collect(ids recordIDs: UnsafePointer<UInt32>, frequencies recordFrequencies: UnsafePointer<UInt32>, count n: Int) {
        precondition(n <= capacity, "slice of \(n) records exceeds the \(capacity) the table was sized for")
        records = n
        distinctCount = 0
        for k in 0..<n {
            let id = Int(recordIDs[k])
            var d = Int(distinctOf[id])
            if d < 0 {
                d = distinctCount
                distinctCount += 1
                distinctOf[id] = Int32(d)
                ids[d] = Int32(id)
                frequencies[d] = recordFrequencies[k]
            } else if recordFrequencies[k] > frequencies[d] {
                frequencies[d] = recordFrequencies[k]
            }
            recordDistinct[k] = Int32(d)
        }
    }

    /// Reads the row entry of distinct ID `d` at `byte` of the row buffer (its
    /// gradient entry lies at the same offset); returns the entry's bytes.
    @inline(__always)
    func place(_ d: Int, at byte: Int) -> Int {
        let size = WireFormat.readRowHeader(rowBuffer + byte)
        sizes[d] = Int32(size)
        rows[d] = WireFormat.rowFloats(rowBuffer + byte)
        gradients[d] = WireFormat.rowFloats(gradientBuffer + byte)
        return WireFormat.rowEntryBytes(width: widths[size], extra: extraWidth)
    }

    /// Zeroes the gradient entries of this batch (`bytes` of them).
    func clearGradients(bytes: Int) {
        gradientBuffer.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
    }

    /// Clears the markers (O(distinct), not O(IDs)).
    func finish() {
        for d in 0..<distinctCount { distinctOf[Int(ids[d])] = -1 }
        distinctCount = 0
        records = 0
    }

    // MARK: - Without an exchange

    /// Lays out rows as the exchange would deliver them, with no exchange: the
    /// records' IDs, and for each distinct ID its size index, row and extra
    /// floats. For tests of the formers, and tools that run on one process.
    public func receive(recordIDs: [Int], row: (_ id: Int) -> (sizeIndex: Int, values: [Float], extra: [Float])) {
        finish()
        let u = recordIDs.map { UInt32($0) }
        let f = [UInt32](repeating: 1, count: u.count)
        collect(ids: u, frequencies: f, count: u.count)
        var byte = 0
        for d in 0..<distinctCount {
            let (size, values, extra) = row(globalID(d))
            precondition(values.count == widths[size] && extra.count == extraWidth,
                         "row of \(globalID(d)): \(values.count) values and \(extra.count) extra floats for width \(widths[size]) and \(extraWidth)")
            WireFormat.writeRowHeader(rowBuffer + byte, sizeIndex: size)
            let out = WireFormat.rowFloats(rowBuffer + byte)
            out.update(from: values, count: values.count)
            (out + values.count).update(from: extra, count: extra.count)
            byte += place(d, at: byte)
        }
        clearGradients(bytes: byte)
    }

    /// The gradient written for d's row and for its extra floats.
    public func gradientValues(_ d: Int) -> (row: [Float], extra: [Float]) {
        (Array(UnsafeBufferPointer(start: gradient(d), count: width(d))),
         Array(UnsafeBufferPointer(start: extraGradient(d), count: extraWidth)))
    }
}
