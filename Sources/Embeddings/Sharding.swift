// The sharding plan (ARCHITECTURE §4) as pure functions, so tests can call
// them with any world size and no processes: who owns an ID, its local index,
// how many IDs a rank owns, and which records of a global batch a rank reads.

public struct Sharding: Equatable, Sendable {
    public let rank: Int
    public let ranks: Int

    public init(rank: Int, ranks: Int) {
        precondition(ranks > 0 && rank >= 0 && rank < ranks, "rank \(rank) of \(ranks) does not exist")
        self.rank = rank
        self.ranks = ranks
    }

    /// The rank that holds ID `id`'s row, width, optimizer state and loss history.
    @inline(__always) public func owner(of id: Int) -> Int { id % ranks }
    /// The index of `id` among its owner's IDs.
    @inline(__always) public func local(of id: Int) -> Int { id / ranks }
    /// The global ID of this rank's local index `local`.
    @inline(__always) public func global(of local: Int) -> Int { local * ranks + rank }
    /// How many of `total` IDs (0..<total) this rank owns.
    public func localCount(of total: Int) -> Int { total > rank ? (total - rank + ranks - 1) / ranks : 0 }

    /// This rank's contiguous part of a global batch of `count` records
    /// starting at `start`: slices differ in size by at most one.
    public func slice(start: Int, count: Int) -> Range<Int> {
        let base = count / ranks, extra = count % ranks
        let lo = start + rank * base + min(rank, extra)
        return lo..<(lo + base + (rank < extra ? 1 : 0))
    }

    /// The largest slice any rank gets of a batch of `count` records.
    public static func maxSlice(batch count: Int, ranks: Int) -> Int { (count + ranks - 1) / ranks }
}
