// Writing a checkpoint (collective). Every file is written under a temporary
// name, fsynced and renamed; the manifest goes last, so a checkpoint is
// complete exactly when its manifest exists. Checkpoints are taken after a
// batch whose number every rank knows in advance, so every rank takes the
// same one without a collective to decide it; a failure on any rank is agreed
// on (`Communicator.agree`) so that no rank waits in a collective alone.
import Comm
import Data
import Embeddings
import Foundation
import Kernels

/// What one rank's part of a checkpoint holds.
public struct CheckpointContent {
    /// Batches done (= the global Adam step).
    public var step: Int
    /// Each side's rows, saved as they are (not caught up), under `name.rows.W.…`.
    public var rows: [(name: String, store: RowStore)]
    /// The rank's own totals (metrics), after the rows.
    public var shard: [StateBuffer]
    /// The replicated state (rank 0 writes it).
    public var replicated: [StateBuffer]
    /// Extra metadata of the shard's header (the model's name).
    public var metadata: [String: String]

    public init(step: Int, rows: [(name: String, store: RowStore)], shard: [StateBuffer], replicated: [StateBuffer],
                metadata: [String: String]) {
        self.step = step; self.rows = rows; self.shard = shard; self.replicated = replicated; self.metadata = metadata
    }
}

public enum CheckpointWriter {
    /// Writes `content` of every rank as checkpoint `options.directory`/checkpoint-STEP
    /// with a manifest naming `config` and the stream (collective), then prunes
    /// to the newest `options.keep`. Returns the folder.
    @discardableResult
    public static func write<Config: Codable & Sendable>(_ content: CheckpointContent, config: Config,
                                                         streamChecksum: String, streamRecords: Int,
                                                         options: CheckpointOptions, comm: any Communicator) throws -> String {
        let folder = (options.directory as NSString).appendingPathComponent(CheckpointLayout.folder(step: content.step))
        let P = comm.size
        var mine: (bytes: Int, sha256: String) = (0, "")
        // A folder of this step may exist (a run resumed from an earlier one): its manifest goes
        // first, so that it never vouches for shards being replaced.
        if comm.rank == 0 {
            try? FileManager.default.removeItem(atPath: (folder as NSString).appendingPathComponent(CheckpointLayout.manifest))
        }
        comm.barrier()
        try comm.agree {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let metadata = content.metadata.merging(["step": "\(content.step)", "rank": "\(comm.rank)", "ranks": "\(P)"]) { a, _ in a }
            mine = try writeShard(content, metadata: metadata,
                                  to: (folder as NSString).appendingPathComponent(CheckpointLayout.shard(rank: comm.rank, of: P)))
        }
        // Every shard's size and digest reach rank 0 for the manifest.
        let sizes = comm.allGather(mine.bytes), digests = comm.allGather(string: mine.sha256, maxBytes: 64)
        try comm.agree {
            guard comm.rank == 0 else { return }
            var files = (0..<P).map {
                CheckpointManifest<Config>.File(name: CheckpointLayout.shard(rank: $0, of: P), bytes: sizes[$0], sha256: digests[$0])
            }
            let replicated = try SafeTensors.write(content.replicated.map(\.tensor), metadata: ["step": "\(content.step)"],
                                                   to: (folder as NSString).appendingPathComponent(CheckpointLayout.replicated))
            files.append(.init(name: CheckpointLayout.replicated, bytes: replicated.bytes, sha256: replicated.sha256))
            let manifest = CheckpointManifest(step: content.step, ranks: P, config: config, stream_checksum: streamChecksum,
                                              stream_records: streamRecords, files: files)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            var text = String(decoding: try encoder.encode(manifest), as: UTF8.self) + "\n"
            try text.withUTF8 { bytes in
                try writeAtomically(path: (folder as NSString).appendingPathComponent(CheckpointLayout.manifest)) {
                    try $0(UnsafeRawBufferPointer(bytes))
                }
            }
            CheckpointLayout.prune(options.directory, keep: options.keep)
        }
        return folder
    }

    /// One rank's shard: rows per side and width, then the state buffers.
    private static func writeShard(_ content: CheckpointContent, metadata: [String: String],
                                   to path: String) throws -> (bytes: Int, sha256: String) {
        // The rows are gathered per width into one block (a checkpoint may allocate).
        var blob: [UInt8] = []
        var rowTensors: [(name: String, type: SafeTensorsType, shape: [Int], range: Range<Int>)] = []
        func append<T>(_ name: String, _ type: SafeTensorsType, _ values: [T], shape: [Int]) {
            let start = blob.count
            values.withUnsafeBytes { blob += $0 }
            rowTensors.append((name, type, shape, start..<blob.count))
        }
        for (side, store) in content.rows {
            for (k, w) in store.widths.enumerated() {
                var locals: [Int32] = [], steps: [Int32] = [], stamps: [Int32] = [], values: [Float] = [], m: [Float] = [], v: [Float] = []
                var columns = [[UInt8]](repeating: [], count: store.columns.count)
                store.forEachRow { local, size, rv, rm, rvv, last in
                    guard size == k else { return }
                    locals.append(Int32(local)); steps.append(Int32(last)); stamps.append(Int32(store.stamp(of: local)))
                    values += UnsafeBufferPointer(start: rv, count: w)
                    m += UnsafeBufferPointer(start: rm, count: w)
                    v += UnsafeBufferPointer(start: rvv, count: w)
                    let e = store.entry(of: local)!
                    for (c, column) in store.columns.enumerated() {
                        columns[c] += UnsafeRawBufferPointer(start: column.raw(e), count: column.bytesPerID)
                    }
                }
                let prefix = RowTensorNames(side: side, width: w)
                append(prefix.local, .i32, locals, shape: [locals.count])
                append(prefix.lastStep, .i32, steps, shape: [steps.count])
                append(prefix.lastSeen, .i32, stamps, shape: [stamps.count])
                append(prefix.values, .f32, values, shape: [locals.count, w])
                append(prefix.m, .f32, m, shape: [locals.count, w])
                append(prefix.v, .f32, v, shape: [locals.count, w])
                for (c, column) in store.columns.enumerated() {
                    append(prefix.column(column.name), SafeTensorsType(rawValue: column.element.rawValue)!, columns[c],
                           shape: [locals.count, column.width])
                }
            }
            // The budget's state: recency (least recent first), evicted IDs, accounting, counts.
            let names = StoreTensorNames(side: side)
            append(names.recency, .i32, store.byRecency().map { Int32($0) }, shape: [store.liveIDs])
            let evicted = store.evictedIDs.map { Int32($0) }
            append(names.evicted, .i32, evicted, shape: [evicted.count])
            let accounting = store.accounting.map { Int64($0) }
            append(names.accounting, .i64, accounting, shape: [accounting.count])
            let c = store.counts
            append(names.counts, .f64, [Double(c.evictions), Double(c.refused_enlargements), Double(c.readmissions)], shape: [3])
        }
        return try blob.withUnsafeBytes { raw in
            let rows = rowTensors.map { SafeTensor($0.name, $0.type, shape: $0.shape, data: UnsafeRawBufferPointer(rebasing: raw[$0.range])) }
            return try SafeTensors.write(rows + content.shard.map(\.tensor), metadata: metadata, to: path)
        }
    }
}

/// The tensor names of one side's rows at one width in a shard.
struct RowTensorNames {
    let prefix: String
    init(side: String, width: Int) { prefix = "\(side).rows.\(width)" }
    var local: String { prefix + ".local" }
    var lastStep: String { prefix + ".last_step" }
    var lastSeen: String { prefix + ".last_seen" }
    var values: String { prefix + ".values" }
    var m: String { prefix + ".adam_m" }
    var v: String { prefix + ".adam_v" }
    /// A per-ID state column (ESAPN's loss history, soft selection's logits, DARTS' moments).
    func column(_ name: String) -> String { prefix + "." + name }
}

/// The tensor names of one side's store-wide state in a shard.
struct StoreTensorNames {
    let side: String
    var recency: String { side + ".recency" }
    var evicted: String { side + ".evicted" }
    var accounting: String { side + ".accounting" }
    var counts: String { side + ".budget_counts" }
}

extension StateBuffer {
    /// The buffer as a safetensors tensor (its bytes, not copied).
    var tensor: SafeTensor {
        SafeTensor(name, SafeTensorsType(rawValue: element.rawValue)!, shape: shape, data: UnsafeRawBufferPointer(bytes))
    }

    var safeTensorsType: SafeTensorsType { SafeTensorsType(rawValue: element.rawValue)! }
}
