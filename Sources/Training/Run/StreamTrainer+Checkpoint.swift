// What of a trainer a checkpoint holds (the files themselves: the Checkpoints
// target), and resuming from one: the same stream, model and settings on any
// number of ranks (rows re-owned by id mod P'; with --deterministic, any
// P ≤ C gives the same bits as the run that was stopped).
import Checkpoints
import Comm
import Embeddings
import Foundation
import Kernels

public typealias TrainingManifest = CheckpointManifest<TrainConfig>

extension StreamTrainer {
    /// This rank's totals (metrics), as named buffers restored in place (per-ID state is saved with the rows).
    var shardStateBuffers: [StateBuffer] { metrics.stateBuffers }

    var replicatedStateBuffers: [StateBuffer] {
        arena.stateBuffers.map { $0.prefixed("model") } + policyArena.stateBuffers.map { $0.prefixed("policy") }
    }

    /// Writes a checkpoint of the state after `step` batches (collective). Returns its folder.
    @discardableResult
    public func writeCheckpoint(_ options: CheckpointOptions) throws -> String {
        let content = CheckpointContent(step: step, rows: tables.map { ($0.side.plural, $0.store) },
                                        shard: shardStateBuffers, replicated: replicatedStateBuffers,
                                        metadata: ["model": config.model.rawValue])
        return try CheckpointWriter.write(content, config: config, streamChecksum: String(stream.header.checksum, radix: 16),
                                          streamRecords: stream.count, options: options, comm: comm)
    }

    /// The settings of two configurations that differ (the memory limit aside: it is the host's, not the run's).
    static func differences(_ saved: TrainConfig, _ current: TrainConfig) -> [String] {
        var saved = saved, current = current
        saved.memoryLimit = nil
        current.memoryLimit = nil
        return CheckpointLayout.differences(saved, current)
    }

    /// Loads the checkpoint `path` names (collective): refuses one from another
    /// stream, model, task or settings, and any file that does not match the
    /// manifest; then restores every rank's state, on any number of ranks.
    /// Returns the folder.
    @discardableResult
    public func resume(from path: String) throws -> String {
        precondition(step == 0, "resume before training")
        var folder = "", resumed = 0
        try comm.agree {
            folder = try CheckpointLayout.resolve(path)
            let manifest = try TrainingManifest.read(folder: folder)
            guard manifest.stream_checksum == String(stream.header.checksum, radix: 16), manifest.stream_records == stream.count else {
                throw CheckpointError("\(folder) was taken on another stream (checksum \(manifest.stream_checksum), \(manifest.stream_records) records; this one \(String(stream.header.checksum, radix: 16)), \(stream.count) records)")
            }
            let diff = Self.differences(manifest.config, config)
            guard diff.isEmpty else {
                throw CheckpointError("\(folder) was taken with other settings: " + diff.joined(separator: "; "))
            }
            let target = RestoreTarget(rows: tables.map { ($0.side.plural, $0.store, $0.totalIDs) }, shard: shardStateBuffers,
                                       replicated: replicatedStateBuffers, sharding: sharding)
            try CheckpointRestore.restore(target, from: folder, manifest: manifest)
            resumed = manifest.step
            // On another number of ranks a shard may now hold more than its budget: the least recently seen rows go.
            // (Counted apart from the stream's evictions.)
            if manifest.ranks != comm.size, let budget {
                let before = tables.map(\.store.counts.evictions)
                evictedAtResume = budget.enforce()
                for (table, count) in zip(tables, before) { table.store.counts.evictions = count }
            }
        }
        step = resumed
        resumedAt = step
        return folder
    }
}
