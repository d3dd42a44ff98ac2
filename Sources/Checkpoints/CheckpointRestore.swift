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
    /// Each side's rows (as saved by `CheckpointContent.rows`), with the side's total IDs.
    public var rows: [(name: String, store: RowStore, totalIDs: Int)]
    /// The rank's state buffers; `side`: the index into `rows` of per-ID buffers' side (nil: rank totals).
    public var shard: [(side: Int?, buffer: StateBuffer)]
    public var replicated: [StateBuffer]
    public var sharding: Sharding

    public init(rows: [(name: String, store: RowStore, totalIDs: Int)], shard: [(side: Int?, buffer: StateBuffer)],
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

    private static func restoreShard(_ target: RestoreTarget, from file: SafeTensors.File) throws {
        for (name, store, _) in target.rows {
            try forEachSavedRow(file, side: name, store: store) { local, k, step, values, m, v in
                guard local < store.localCount, store.sizeIndex(of: local) == nil else {
                    throw CheckpointError("\(file.path): corrupt checkpoint shard: \(RowTensorNames(side: name, width: store.widths[k]).local) holds \(local), not a free local ID of this rank")
                }
                store.restore(local, size: k, lastStep: step, values: values, m: m, v: v)
            }
        }
        for (_, buffer) in target.shard { try restore(buffer, from: file) }
    }

    /// Every ID of `oldRanks` shards moved to its new owner and local index.
    private static func restoreResharded(_ target: RestoreTarget, from shards: [SafeTensors.File], oldRanks: Int) throws {
        let sharding = target.sharding
        for (name, store, _) in target.rows {
            for (r, file) in shards.enumerated() {
                let old = Sharding(rank: r, ranks: oldRanks)
                try forEachSavedRow(file, side: name, store: store) { local, k, step, values, m, v in
                    let g = old.global(of: local)
                    guard sharding.owner(of: g) == sharding.rank else { return }
                    store.restore(sharding.local(of: g), size: k, lastStep: step, values: values, m: m, v: v)
                }
            }
        }
        for (side, buffer) in target.shard {
            guard let side, let per = buffer.perID else {
                // Rank totals: rank 0 takes their sum, the others start from zero.
                buffer.bytes.initializeMemory(as: UInt8.self, repeating: 0)
                guard sharding.rank == 0 else { continue }
                for file in shards {
                    let data = try file.tensor(buffer.name, .f64, count: buffer.bytes.count / 8)
                    let into = buffer.bytes.bindMemory(to: Double.self), from = data.bindMemory(to: Double.self)
                    for i in 0..<into.count { into[i] += from[i] }
                }
                continue
            }
            let stride = per * buffer.elementBytes
            let (_, store, totalIDs) = target.rows[side]
            for (r, file) in shards.enumerated() {
                let data = try file.tensor(buffer.name, buffer.safeTensorsType)
                let old = Sharding(rank: r, ranks: oldRanks)
                let count = min(old.localCount(of: totalIDs), data.count / max(1, stride))
                for local in 0..<count {
                    let g = old.global(of: local)
                    guard sharding.owner(of: g) == sharding.rank, sharding.local(of: g) < store.localCount else { continue }
                    let to = sharding.local(of: g) * stride
                    UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[to..<(to + stride)])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: data[(local * stride)..<((local + 1) * stride)]))
                }
            }
        }
    }

    /// Calls `body` for every row `file` saved for side `name`: (old local ID, width index, last step, values, m, v).
    private static func forEachSavedRow(_ file: SafeTensors.File, side name: String, store: RowStore,
                                        _ body: (Int, Int, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>) throws -> Void) throws {
        for (k, w) in store.widths.enumerated() {
            let names = RowTensorNames(side: name, width: w)
            let locals = try file.tensor(names.local, .i32)
            let n = locals.count / 4
            let steps = try file.tensor(names.lastStep, .i32, count: n)
            let values = try file.tensor(names.values, .f32, count: n * w)
            let m = try file.tensor(names.m, .f32, count: n * w)
            let v = try file.tensor(names.v, .f32, count: n * w)
            let l = locals.bindMemory(to: Int32.self), s = steps.bindMemory(to: Int32.self)
            let fv = values.bindMemory(to: Float.self), fm = m.bindMemory(to: Float.self), fvv = v.bindMemory(to: Float.self)
            for i in 0..<n {
                guard l[i] >= 0 else { throw CheckpointError("\(file.path): corrupt checkpoint shard: \(names.local) holds \(l[i])") }
                try body(Int(l[i]), k, Int(s[i]), fv.baseAddress! + i * w, fm.baseAddress! + i * w, fvv.baseAddress! + i * w)
            }
        }
    }
}
