// A hard cap on the resident embedding bytes of one shard (`--shard-budget`,
// docs/budget.md): both sides' stores of a rank, rows, moments, entries with
// their per-ID state, and the index, as RowMemory counts them. Decisions use
// only this owner's state, so they are the same for every number of ranks
// with --deterministic (the budget is per logical rank).
//   - admission: a new ID makes room by evicting the least recently seen rows
//     of either side, never one seen in the current lookup;
//   - enlargement: granted only if it fits without evicting and leaves room
//     for the IDs the shard has not seen yet: their fair share of the budget
//     each when that holds the smallest width, else the smallest width up to
//     half the budget (the policy asks `fits` in its own order: ESAPN by
//     margin per float), so a budget that holds every ID at the smallest
//     width never evicts;
//   - end of a batch: if the batch's own rows outgrew the budget (wide rows of
//     a batch that cannot all fit), the least recently seen rows go, this
//     batch's included, until it holds again.

public final class ShardBudget {
    /// Bytes this shard may hold.
    public let limit: Int
    public let stores: [RowStore]

    public init(limit: Int, stores: [RowStore]) {
        self.limit = limit
        self.stores = stores
    }

    private func trim() { for s in stores { s.trim() } }

    /// The shard's resident bytes now.
    public var resident: Int { stores.reduce(0) { $0 + $1.residentBytes } }

    /// Whether `extra` more bytes of a wider row fit without evicting, with room kept for unseen IDs.
    /// Freed slots of other widths are trimmed first when that makes it fit.
    public func fits(_ extra: Int) -> Bool {
        let room = limit - extra - reserve
        if resident <= room { return true }
        guard stores.contains(where: { $0.trimmableBytes > 0 }) else { return false }
        trim()
        return resident <= room
    }

    /// Room kept for the IDs no row of this shard has held yet: each keeps its
    /// fair share of the budget (the budget over every ID the shard owns) when
    /// that holds a row at the smallest width; else the smallest width, up to
    /// half the budget. So early IDs cannot take the room later ones need.
    public var reserve: Int {
        let owned = stores.reduce(0) { $0 + $1.localCount }
        let fair = limit / max(1, owned)
        let fits = stores.allSatisfy { fair >= $0.creationCostAtSmallest + 4 }
        let room = stores.reduce(0) { total, s in
            total + (s.localCount - s.seenIDs) * (fits ? fair - 4 : s.creationCostAtSmallest) + s.unindexedBytes
        }
        return fits ? min(limit, room) : min(limit / 2, room)
    }

    /// The least recently seen live row of any side seen before `stamp` (ties: the lower side).
    private func coldest(before stamp: Int) -> (store: Int, local: Int)? {
        var best: (store: Int, local: Int, stamp: Int)?
        for (i, s) in stores.enumerated() {
            guard let c = s.coldestRow, c.stamp < stamp else { continue }
            if best == nil || c.stamp < best!.stamp { best = (i, c.local, c.stamp) }
        }
        return best.map { ($0.store, $0.local) }
    }

    /// Evicts the least recently seen rows not seen at `stamp` until `cost()`
    /// more bytes fit; false when every remaining row was seen at `stamp`.
    /// Freed slots are trimmed before any row is evicted; an evicted row's slab
    /// is trimmed only if its slot alone did not make room (as for a row of
    /// the same width, taken again at no cost).
    @discardableResult
    public func makeRoom(protecting stamp: Int, _ cost: () -> Int) -> Bool {
        guard resident + cost() > limit else { return true }
        trim()
        while resident + cost() > limit {
            guard let victim = coldest(before: stamp) else { return false }
            let size = stores[victim.store].evict(victim.local)
            if resident + cost() > limit { stores[victim.store].trim(size: size) }
        }
        return true
    }

    /// Evicts the least recently seen rows, any of them, until the shard is within its budget; returns how many went.
    @discardableResult
    public func enforce() -> Int {
        guard resident > limit else { return 0 }
        trim()
        var evicted = 0
        while resident > limit, let victim = coldest(before: .max) {
            let size = stores[victim.store].evict(victim.local)
            stores[victim.store].trim(size: size)
            evicted += 1
        }
        return evicted
    }
}
