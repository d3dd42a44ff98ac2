// Reading a checkpoint back into a rank (collective): the manifest is read
// and checked first (CheckpointFiles.swift), every file it names is checked
// against its size and SHA-256 before anything is loaded, then each rank
// restores its rows and state in place. With the number of ranks it was taken
// on, each rank reads its own shard; on another number of ranks every rank
// reads every old shard and keeps the IDs it now owns (id mod P'), and rank 0
// takes the sum of the old ranks' totals (the metric accumulators, which add
// up) while the others start them from zero. Rows are restored as they were
// saved (not caught up), so a resume continues bit for bit.
import Comm
import Data
import Embeddings
import Foundation
import Kernels

/// Where a rank's checkpointed state goes.
public struct RestoreTarget {
    /// Each side's rows with their per-ID state (as saved by `CheckpointContent.rows`), with the side's total IDs.
    public var rows: [(name: String, store: RowStore, totalIDs: Int)]
    /// The rank's own totals (metrics), which add up across ranks.
    public var shard: [StateBuffer]
    public var replicated: [StateBuffer]
    public var sharding: Sharding

    public init(rows: [(name: String, store: RowStore, totalIDs: Int)], shard: [StateBuffer],
                replicated: [StateBuffer], sharding: Sharding) {
        self.rows = rows; self.shard = shard; self.replicated = replicated; self.sharding = sharding
    }
}

public enum CheckpointRestore {
    /// Restores `target` from the checkpoint `folder` described by `manifest`
    /// (every rank calls it; errors are this rank's, to agree on).
    public static func restore<C>(_ target: RestoreTarget, from folder: String, manifest: CheckpointManifest<C>) throws {
        let replicated = try SafeTensors.File(path: try CheckpointLayout.verify(folder, try manifest.entry(CheckpointLayout.replicated)))
        let sharding = target.sharding
        if manifest.ranks == sharding.ranks {
            let name = CheckpointLayout.shard(rank: sharding.rank, of: sharding.ranks)
            try restoreShard(target, from: try SafeTensors.File(path: try CheckpointLayout.verify(folder, try manifest.entry(name))))
        } else {
            let shards = try (0..<manifest.ranks).map { r in
                try SafeTensors.File(path: try CheckpointLayout.verify(folder, try manifest.entry(CheckpointLayout.shard(rank: r, of: manifest.ranks))))
            }
            try restoreResharded(target, from: shards, oldRanks: manifest.ranks)
        }
        for buffer in target.replicated { try restore(buffer, from: replicated) }
    }

    private static func restore(_ buffer: StateBuffer, from file: SafeTensors.File) throws {
        let data = try file.tensor(buffer.name, buffer.safeTensorsType)
        guard data.count == buffer.bytes.count else {
            throw CheckpointError("\(file.path): tensor '\(buffer.name)' holds \(data.count) bytes, this run needs \(buffer.bytes.count)")
        }
        buffer.bytes.copyMemory(from: data)
    }

    private static func ints(_ file: SafeTensors.File, _ name: String) throws -> [Int] {
        let data = try file.tensor(name, .i32)
        return data.bindMemory(to: Int32.self).map { Int($0) }
    }

    private static func counts(_ file: SafeTensors.File, side name: String) throws -> EvictionCounts {
        let d = try file.tensor(StoreTensorNames(side: name).counts, .f64, count: 3).bindMemory(to: Double.self)
        var c = EvictionCounts()
        c.evictions = Int(d[0]); c.refused_enlargements = Int(d[1]); c.readmissions = Int(d[2])
        return c
    }

    /// The same shard back: rows, per-ID state, recency, evicted IDs and accounting as they were, so the run goes on bit for bit.
    private static func restoreShard(_ target: RestoreTarget, from file: SafeTensors.File) throws {
        for (name, store, _) in target.rows {
            try forEachSavedRow(file, side: name, store: store) { local, row in
                guard local < store.localCount, store.entry(of: local) == nil else {
                    throw CheckpointError("\(file.path): corrupt checkpoint shard: \(RowTensorNames(side: name, width: store.widths[row.size]).local) holds \(local), not a free local ID of this rank")
                }
                row.restore(into: store, local: local)
            }
            let names = StoreTensorNames(side: name)
            let order = try ints(file, names.recency)
            guard order.count == store.liveIDs, order.allSatisfy({ $0 >= 0 && $0 < store.localCount && store.entry(of: $0) != nil }),
                  Set(order).count == order.count else {
                throw CheckpointError("\(file.path): corrupt checkpoint shard: \(names.recency) does not list the saved rows once each")
            }
            store.setRecency(order)
            for local in try ints(file, names.evicted) {
                guard local >= 0, local < store.localCount, store.entry(of: local) == nil else {
                    throw CheckpointError("\(file.path): corrupt checkpoint shard: \(names.evicted) holds \(local)")
                }
                store.markEvicted(local)
            }
            let accounting = try file.tensor(names.accounting, .i64).bindMemory(to: Int64.self).map { Int($0) }
            store.restoreAccounting(accounting)
            store.counts = try counts(file, side: name)
        }
        for buffer in target.shard { try restore(buffer, from: file) }
    }

    /// Every ID of `oldRanks` shards moved to its new owner and local index,
    /// with its per-ID state; recency by (last seen, global ID); rank 0 takes
    /// the sum of the old ranks' totals. A budget is re-applied by the caller.
    private static func restoreResharded(_ target: RestoreTarget, from shards: [SafeTensors.File], oldRanks: Int) throws {
        let sharding = target.sharding
        for (name, store, _) in target.rows {
            var seen: [(stamp: Int, global: Int, local: Int)] = []
            var total = EvictionCounts()
            for (r, file) in shards.enumerated() {
                let old = Sharding(rank: r, ranks: oldRanks)
                try forEachSavedRow(file, side: name, store: store) { local, row in
                    let g = old.global(of: local)
                    guard sharding.owner(of: g) == sharding.rank else { return }
                    row.restore(into: store, local: sharding.local(of: g))
                    seen.append((row.stamp, g, sharding.local(of: g)))
                }
                for local in try ints(file, StoreTensorNames(side: name).evicted) {
                    let g = old.global(of: local)
                    guard sharding.owner(of: g) == sharding.rank, store.entry(of: sharding.local(of: g)) == nil else { continue }
                    store.markEvicted(sharding.local(of: g))
                }
                total = total + (try counts(file, side: name))
            }
            seen.sort { ($0.stamp, $0.global) < ($1.stamp, $1.global) }
            store.setRecency(seen.map(\.local))
            if sharding.rank == 0 { store.counts = total }
        }
        for buffer in target.shard {
            // Rank totals: rank 0 takes their sum, the others start from zero. A table laid out per
            // old rank (the residents per batch) cannot be re-laid: it starts from zero too.
            buffer.bytes.initializeMemory(as: UInt8.self, repeating: 0)
            guard sharding.rank == 0 else { continue }
            for file in shards {
                let data = try file.tensor(buffer.name, .f64)
                guard data.count == buffer.bytes.count else { continue }
                let into = buffer.bytes.bindMemory(to: Double.self), from = data.bindMemory(to: Double.self)
                for i in 0..<into.count { into[i] += from[i] }
            }
        }
    }

    /// One saved row: width index, last step and stamp, values, moments, per-ID state.
    struct SavedRow {
        let size: Int, lastStep: Int, stamp: Int
        let values, m, v: UnsafePointer<Float>
        let columns: [UnsafeRawPointer]

        func restore(into store: RowStore, local: Int) {
            store.restore(local, size: size, lastStep: lastStep, stamp: stamp, values: values, m: m, v: v)
            let e = store.entry(of: local)!
            for (c, column) in store.columns.enumerated() { column.raw(e).copyMemory(from: columns[c], byteCount: column.bytesPerID) }
        }
    }

    /// Calls `body` for every row `file` saved for side `name`: (old local ID, the row).
    private static func forEachSavedRow(_ file: SafeTensors.File, side name: String, store: RowStore,
                                        _ body: (Int, SavedRow) throws -> Void) throws {
        for (k, w) in store.widths.enumerated() {
            let names = RowTensorNames(side: name, width: w)
            let locals = try file.tensor(names.local, .i32)
            let n = locals.count / 4
            let steps = try file.tensor(names.lastStep, .i32, count: n)
            let stamps = try file.tensor(names.lastSeen, .i32, count: n)
            let values = try file.tensor(names.values, .f32, count: n * w)
            let m = try file.tensor(names.m, .f32, count: n * w)
            let v = try file.tensor(names.v, .f32, count: n * w)
            let columns = try store.columns.map { c in
                try file.tensor(names.column(c.name), SafeTensorsType(rawValue: c.element.rawValue)!, count: n * c.width)
            }
            let l = locals.bindMemory(to: Int32.self), s = steps.bindMemory(to: Int32.self), t = stamps.bindMemory(to: Int32.self)
            let fv = values.bindMemory(to: Float.self), fm = m.bindMemory(to: Float.self), fvv = v.bindMemory(to: Float.self)
            for i in 0..<n {
                guard l[i] >= 0 else { throw CheckpointError("\(file.path): corrupt checkpoint shard: \(names.local) holds \(l[i])") }
                let row = SavedRow(size: k, lastStep: Int(s[i]), stamp: Int(t[i]), values: fv.baseAddress! + i * w,
                                   m: fm.baseAddress! + i * w, v: fvv.baseAddress! + i * w,
                                   columns: zip(store.columns, columns).map { c, d in UnsafeRawPointer(d.baseAddress!) + i * c.bytesPerID })
                try body(Int(l[i]), row)
            }
        }
    }
}
