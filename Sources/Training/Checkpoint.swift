// Checkpoints (`esapn train --checkpoint-dir DIR --checkpoint-every N`) and
// resuming from them (`--resume DIR`). A checkpoint is a folder
// `checkpoint-SSSSSSSS` (S: batches done) holding
//   rank-RRRRR-of-PPPPP.safetensors  each rank's shard: its rows at their
//       widths with both moments and last steps (per width: local IDs, values,
//       m, v), the IDs' extra state, the policy's per-ID state (loss
//       histories; DARTS' α moments), and its metric accumulators;
//   replicated.safetensors  (rank 0) the model's and the policy's dense
//       weights with their Adam moments;
//   manifest.json  (rank 0, written last) the step, the ranks, the
//       configuration, the stream's checksum, and every file with its size
//       and SHA-256, so a checkpoint is complete exactly when its manifest
//       exists and every file matches it.
// Every file is written under a temporary name, fsynced and renamed. The
// newest K complete checkpoints are kept. Checkpoints are taken after a batch
// whose number every rank knows in advance (every N batches), so every rank
// takes the same one without a collective to decide it; a failure on any
// rank is agreed on (one all-gather) so no rank waits in a collective alone.
//
// Resuming with the same number of ranks continues bit for bit: rows are
// saved as they are (not caught up), and every random draw is keyed by the
// batch, not by a generator's position. Resuming on another number of ranks
// (re-sharding the rows) is not implemented yet and is refused with a message.
import Comm
import Data
import Embeddings
import Foundation
import Kernels

public struct CheckpointOptions: Sendable {
    public var directory: String
    /// Take one after every `every` batches (and not after the last).
    public var every: Int
    /// Keep the newest `keep` complete checkpoints.
    public var keep: Int

    public init(directory: String, every: Int, keep: Int) {
        self.directory = directory; self.every = every; self.keep = keep
    }
}

public struct CheckpointManifest: Codable, Sendable {
    public struct File: Codable, Sendable {
        public var name: String
        public var bytes: Int
        public var sha256: String
    }
    public var format = 1
    public var step: Int
    public var ranks: Int
    public var config: TrainConfig
    public var stream_checksum: String
    public var stream_records: Int
    public var files: [File]
}

public struct CheckpointError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

enum CheckpointLayout {
    static let manifest = "manifest.json"
    static let replicated = "replicated.safetensors"
    static func folder(step: Int) -> String { String(format: "checkpoint-%08d", step) }
    static func shard(rank: Int, of ranks: Int) -> String { String(format: "rank-%05d-of-%05d.safetensors", rank, ranks) }

    /// The step of a folder named by `folder(step:)`, or nil.
    static func step(ofFolder name: String) -> Int? {
        guard name.hasPrefix("checkpoint-") else { return nil }
        return Int(name.dropFirst("checkpoint-".count))
    }
}

/// Runs `body` on every rank and agrees on the outcome (one all-gather): if
/// any rank failed, every rank throws, with the first failing rank's message.
func agree(_ comm: any Communicator, _ body: () throws -> Void) throws {
    var message = ""
    do { try body() } catch { message = "\(error)" }
    let width = 1024
    var mine = [UInt8](repeating: 0, count: width)
    let utf8 = Array(message.utf8.prefix(width - 1))
    mine.replaceSubrange(0..<utf8.count, with: utf8)
    var all = [UInt8](repeating: 0, count: width * comm.size)
    mine.withUnsafeBytes { m in all.withUnsafeMutableBytes { a in comm.allGather(m, into: a) } }
    for r in 0..<comm.size where all[r * width] != 0 {
        let bytes = all[(r * width)..<((r + 1) * width)].prefix { $0 != 0 }
        let text = String(decoding: bytes, as: UTF8.self)
        throw CheckpointError(comm.size > 1 ? "rank \(r): \(text)" : text)
    }
}

extension StreamTrainer {
    // MARK: - What a checkpoint holds

    /// This rank's per-ID state (with its side) and metrics, as named buffers restored in place.
    var sidedStateBuffers: [(side: EmbeddingSide?, buffer: StateBuffer)] {
        var buffers: [(EmbeddingSide?, StateBuffer)] = []
        for side in EmbeddingSide.allCases {
            let table = tables[side.index]
            buffers += table.owned.extras.stateBuffers.map { (side, $0.prefixed(side.plural)) }
            buffers += policies[side.index].stateBuffers.map { (side, $0.prefixed(side.plural)) }
        }
        return buffers + metrics.stateBuffers.map { (nil, $0) }
    }

    var shardStateBuffers: [StateBuffer] { sidedStateBuffers.map(\.buffer) }

    var replicatedStateBuffers: [StateBuffer] {
        arena.stateBuffers.map { $0.prefixed("model") } + policyArena.stateBuffers.map { $0.prefixed("policy") }
    }

    // MARK: - Writing

    /// Writes a checkpoint of the state after `step` batches (collective).
    /// Returns its folder.
    @discardableResult
    public func writeCheckpoint(_ options: CheckpointOptions) throws -> String {
        let folder = (options.directory as NSString).appendingPathComponent(CheckpointLayout.folder(step: step))
        let P = comm.size
        var mine: (bytes: Int, sha256: String) = (0, "")
        // A folder of this step may exist (a run resumed from an earlier one): its manifest goes
        // first, so that it never vouches for shards being replaced.
        if comm.rank == 0 {
            try? FileManager.default.removeItem(atPath: (folder as NSString).appendingPathComponent(CheckpointLayout.manifest))
        }
        comm.barrier()
        try agree(comm) {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            mine = try writeShard(to: (folder as NSString).appendingPathComponent(CheckpointLayout.shard(rank: comm.rank, of: P)))
        }
        // Every shard's size and digest reach rank 0 for the manifest.
        var record = [UInt8](repeating: 0, count: 72)
        withUnsafeBytes(of: UInt64(mine.bytes).littleEndian) { record.replaceSubrange(0..<8, with: $0) }
        record.replaceSubrange(8..<72, with: Array(mine.sha256.utf8))
        var all = [UInt8](repeating: 0, count: 72 * P)
        record.withUnsafeBytes { m in all.withUnsafeMutableBytes { a in comm.allGather(m, into: a) } }
        try agree(comm) {
            guard comm.rank == 0 else { return }
            var files: [CheckpointManifest.File] = (0..<P).map { r in
                let bytes = all[(72 * r)..<(72 * r + 8)].withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
                return .init(name: CheckpointLayout.shard(rank: r, of: P), bytes: bytes,
                             sha256: String(decoding: all[(72 * r + 8)..<(72 * r + 72)], as: UTF8.self))
            }
            let replicated = try writeTensors(replicatedStateBuffers, metadata: ["step": "\(step)"],
                                              to: (folder as NSString).appendingPathComponent(CheckpointLayout.replicated))
            files.append(.init(name: CheckpointLayout.replicated, bytes: replicated.bytes, sha256: replicated.sha256))
            let manifest = CheckpointManifest(step: step, ranks: P, config: config,
                                              stream_checksum: String(stream.header.checksum, radix: 16),
                                              stream_records: stream.count, files: files)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            var text = String(decoding: try encoder.encode(manifest), as: UTF8.self) + "\n"
            try text.withUTF8 { bytes in
                try writeAtomically(path: (folder as NSString).appendingPathComponent(CheckpointLayout.manifest)) {
                    try $0(UnsafeRawBufferPointer(bytes))
                }
            }
            Self.prune(options.directory, keep: options.keep)
        }
        return folder
    }

    private func writeTensors(_ buffers: [StateBuffer], metadata: [String: String], to path: String) throws -> (bytes: Int, sha256: String) {
        let tensors = buffers.map {
            SafeTensor($0.name, SafeTensorsType(rawValue: $0.element.rawValue)!, shape: $0.shape, data: UnsafeRawBufferPointer($0.bytes))
        }
        return try SafeTensors.write(tensors, metadata: metadata, to: path)
    }

    /// This rank's shard: rows per side and width, then the state buffers.
    private func writeShard(to path: String) throws -> (bytes: Int, sha256: String) {
        // The rows are gathered per width into one block (a checkpoint may allocate).
        var blob: [UInt8] = []
        var rowTensors: [(name: String, type: SafeTensorsType, shape: [Int], range: Range<Int>)] = []
        func append<T>(_ name: String, _ type: SafeTensorsType, _ values: [T], shape: [Int]) {
            let start = blob.count
            values.withUnsafeBytes { blob += $0 }
            rowTensors.append((name, type, shape, start..<blob.count))
        }
        for side in EmbeddingSide.allCases {
            let store = tables[side.index].store
            for (k, w) in store.widths.enumerated() {
                var locals: [Int32] = [], steps: [Int32] = [], values: [Float] = [], m: [Float] = [], v: [Float] = []
                store.forEachRow { local, size, rv, rm, rvv, last in
                    guard size == k else { return }
                    locals.append(Int32(local)); steps.append(Int32(last))
                    values += UnsafeBufferPointer(start: rv, count: w)
                    m += UnsafeBufferPointer(start: rm, count: w)
                    v += UnsafeBufferPointer(start: rvv, count: w)
                }
                let prefix = "\(side.plural).rows.\(w)"
                append("\(prefix).local", .i32, locals, shape: [locals.count])
                append("\(prefix).last_step", .i32, steps, shape: [steps.count])
                append("\(prefix).values", .f32, values, shape: [locals.count, w])
                append("\(prefix).adam_m", .f32, m, shape: [locals.count, w])
                append("\(prefix).adam_v", .f32, v, shape: [locals.count, w])
            }
        }
        let metadata = ["step": "\(step)", "rank": "\(comm.rank)", "ranks": "\(comm.size)", "model": config.model.rawValue]
        return try blob.withUnsafeBytes { raw in
            let rows = rowTensors.map { SafeTensor($0.name, $0.type, shape: $0.shape, data: UnsafeRawBufferPointer(rebasing: raw[$0.range])) }
            let state = shardStateBuffers.map {
                SafeTensor($0.name, SafeTensorsType(rawValue: $0.element.rawValue)!, shape: $0.shape, data: UnsafeRawBufferPointer($0.bytes))
            }
            return try SafeTensors.write(rows + state, metadata: metadata, to: path)
        }
    }

    /// Removes all but the newest `keep` complete checkpoints, and incomplete ones older than the newest complete one.
    static func prune(_ directory: String, keep: Int) {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: directory) else { return }
        let folders = names.compactMap { n in CheckpointLayout.step(ofFolder: n).map { (name: n, step: $0) } }
            .sorted { $0.step > $1.step }
        let complete = folders.filter { fm.fileExists(atPath: "\(directory)/\($0.name)/\(CheckpointLayout.manifest)") }
        guard let newest = complete.first?.step else { return }
        let kept = Set(complete.prefix(max(1, keep)).map(\.name))
        let completeNames = Set(complete.map(\.name))
        for f in folders where !kept.contains(f.name) && (completeNames.contains(f.name) || f.step < newest) {
            try? fm.removeItem(atPath: "\(directory)/\(f.name)")
        }
    }

    // MARK: - Resuming

    /// The checkpoint folder `path` names: itself when it holds a manifest,
    /// else the newest `checkpoint-*` folder inside it that does.
    public static func checkpointFolder(_ path: String) throws -> String {
        let fm = FileManager.default
        if fm.fileExists(atPath: (path as NSString).appendingPathComponent(CheckpointLayout.manifest)) { return path }
        guard let names = try? fm.contentsOfDirectory(atPath: path) else {
            throw CheckpointError("--resume \(path): no such folder; give a --checkpoint-dir or one checkpoint-* folder in it")
        }
        let complete = names.compactMap { n in CheckpointLayout.step(ofFolder: n).map { (n, $0) } }
            .filter { fm.fileExists(atPath: "\(path)/\($0.0)/\(CheckpointLayout.manifest)") }
            .sorted { $0.1 > $1.1 }
        guard let newest = complete.first else {
            throw CheckpointError("--resume \(path): holds no complete checkpoint (a checkpoint-* folder with a manifest.json)")
        }
        return (path as NSString).appendingPathComponent(newest.0)
    }

    /// Checks `file` of a checkpoint against its manifest entry: present, of its size, of its SHA-256.
    static func verify(_ folder: String, _ entry: CheckpointManifest.File) throws -> String {
        let path = (folder as NSString).appendingPathComponent(entry.name)
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else {
            throw CheckpointError("\(path): missing; the checkpoint is incomplete (choose an older one with --resume FOLDER)")
        }
        let size = (attributes[.size] as? NSNumber)?.intValue ?? -1
        guard size == entry.bytes else {
            throw CheckpointError("\(path): corrupt checkpoint file: \(size) bytes, the manifest says \(entry.bytes) (truncated?); choose an older checkpoint with --resume FOLDER")
        }
        let digest = try SHA256.file(path)
        guard digest == entry.sha256 else {
            throw CheckpointError("\(path): corrupt checkpoint file: its SHA-256 checksum \(digest.prefix(16))… does not match the manifest's \(entry.sha256.prefix(16))…; choose an older checkpoint with --resume FOLDER")
        }
        return path
    }

    /// The settings of two configurations that differ, as "name: a vs b" (the planted fault and the memory limit aside).
    static func differences(_ saved: TrainConfig, _ current: TrainConfig) -> [String] {
        func fields(_ c: TrainConfig) -> [String: String] {
            var c = c
            c.injectedFault = .none
            c.memoryLimit = nil
            let data = (try? JSONEncoder().encode(c)) ?? Data()
            let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
            return object.mapValues { v in
                (try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys, .fragmentsAllowed]))
                    .map { String(decoding: $0, as: UTF8.self) } ?? "\(v)"
            }
        }
        let a = fields(saved), b = fields(current)
        return Set(a.keys).union(b.keys).sorted().compactMap { k in
            a[k] == b[k] ? nil : "\(k): checkpoint \(a[k] ?? "unset"), this run \(b[k] ?? "unset")"
        }
    }

    /// Loads the checkpoint `path` names (collective): refuses one from another
    /// stream, model, task, sizes or number of ranks, and any file that does
    /// not match the manifest; then restores every rank's state. Returns the folder.
    @discardableResult
    public func resume(from path: String) throws -> String {
        precondition(step == 0, "resume before training")
        var folder = ""
        try agree(comm) {
            folder = try Self.checkpointFolder(path)
            let manifestPath = (folder as NSString).appendingPathComponent(CheckpointLayout.manifest)
            let manifest: CheckpointManifest
            do {
                manifest = try JSONDecoder().decode(CheckpointManifest.self, from: Data(contentsOf: URL(fileURLWithPath: manifestPath)))
            } catch {
                throw CheckpointError("\(manifestPath): corrupt manifest (\(error)); choose an older checkpoint with --resume FOLDER")
            }
            guard manifest.stream_checksum == String(stream.header.checksum, radix: 16), manifest.stream_records == stream.count else {
                throw CheckpointError("\(folder) was taken on another stream (checksum \(manifest.stream_checksum), \(manifest.stream_records) records; this one \(String(stream.header.checksum, radix: 16)), \(stream.count) records)")
            }
            let diff = Self.differences(manifest.config, config)
            guard diff.isEmpty else {
                throw CheckpointError("\(folder) was taken with other settings: " + diff.joined(separator: "; "))
            }
            func entry(_ name: String) throws -> CheckpointManifest.File {
                guard let e = manifest.files.first(where: { $0.name == name }) else {
                    throw CheckpointError("\(manifestPath): corrupt manifest: it does not list \(name)")
                }
                return e
            }
            let replicated = try SafeTensors.File(path: try Self.verify(folder, try entry(CheckpointLayout.replicated)))
            if manifest.ranks == comm.size {
                let shardName = CheckpointLayout.shard(rank: comm.rank, of: comm.size)
                try restoreShard(try SafeTensors.File(path: try Self.verify(folder, try entry(shardName))))
            } else {
                // Another number of ranks: every rank reads every old shard and keeps the IDs it now owns.
                let shards = try (0..<manifest.ranks).map { r in
                    try SafeTensors.File(path: try Self.verify(folder, try entry(CheckpointLayout.shard(rank: r, of: manifest.ranks))))
                }
                try restoreResharded(shards, oldRanks: manifest.ranks)
            }
            for buffer in replicatedStateBuffers { try restore(buffer, from: replicated) }
            step = manifest.step
        }
        resumedAt = step
        return folder
    }

    private func restore(_ buffer: StateBuffer, from file: SafeTensors.File) throws {
        let data = try file.tensor(buffer.name, SafeTensorsType(rawValue: buffer.element.rawValue)!)
        guard data.count == buffer.bytes.count else {
            throw CheckpointError("\(file.path): tensor '\(buffer.name)' holds \(data.count) bytes, this run needs \(buffer.bytes.count)")
        }
        buffer.bytes.copyMemory(from: data)
    }

    /// The old rows and per-ID state of `oldRanks` shards, each ID moved to
    /// its new owner and local index; rank 0 takes the sum of the old ranks'
    /// totals (the metric accumulators, which add up), the others start from 0.
    private func restoreResharded(_ shards: [SafeTensors.File], oldRanks: Int) throws {
        let totals = [stream.header.users, stream.header.items]
        for side in EmbeddingSide.allCases {
            let store = tables[side.index].store
            for (r, file) in shards.enumerated() {
                let old = Sharding(rank: r, ranks: oldRanks)
                try forEachSavedRow(file, side: side) { local, k, step, values, m, v in
                    let g = old.global(of: local)
                    guard sharding.owner(of: g) == sharding.rank else { return }
                    store.restore(sharding.local(of: g), size: k, lastStep: step, values: values, m: m, v: v)
                }
            }
        }
        for (side, buffer) in sidedStateBuffers {
            guard let side, let per = buffer.perID else {
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
            let mine = tables[side.index].store.localCount
            for (r, file) in shards.enumerated() {
                let data = try file.tensor(buffer.name, SafeTensorsType(rawValue: buffer.element.rawValue)!)
                let old = Sharding(rank: r, ranks: oldRanks)
                let count = min(old.localCount(of: totals[side.index]), data.count / max(1, stride))
                for local in 0..<count {
                    let g = old.global(of: local)
                    guard sharding.owner(of: g) == sharding.rank, sharding.local(of: g) < mine else { continue }
                    let to = sharding.local(of: g) * stride
                    UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[to..<(to + stride)])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: data[(local * stride)..<((local + 1) * stride)]))
                }
            }
        }
    }

    /// Calls `body` for every row `file` saved for `side`: (old local ID, width index, last step, values, m, v).
    private func forEachSavedRow(_ file: SafeTensors.File, side: EmbeddingSide,
                                 _ body: (Int, Int, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>) throws -> Void) throws {
        let store = tables[side.index].store
        for (k, w) in store.widths.enumerated() {
            let prefix = "\(side.plural).rows.\(w)"
            let locals = try file.tensor("\(prefix).local", .i32)
            let n = locals.count / 4
            let steps = try file.tensor("\(prefix).last_step", .i32, count: n)
            let values = try file.tensor("\(prefix).values", .f32, count: n * w)
            let m = try file.tensor("\(prefix).adam_m", .f32, count: n * w)
            let v = try file.tensor("\(prefix).adam_v", .f32, count: n * w)
            let l = locals.bindMemory(to: Int32.self), s = steps.bindMemory(to: Int32.self)
            let fv = values.bindMemory(to: Float.self), fm = m.bindMemory(to: Float.self), fvv = v.bindMemory(to: Float.self)
            for i in 0..<n {
                guard l[i] >= 0 else { throw CheckpointError("\(file.path): corrupt checkpoint shard: \(prefix).local holds \(l[i])") }
                try body(Int(l[i]), k, Int(s[i]), fv.baseAddress! + i * w, fm.baseAddress! + i * w, fvv.baseAddress! + i * w)
            }
        }
    }

    private func restoreShard(_ file: SafeTensors.File) throws {
        for side in EmbeddingSide.allCases {
            let store = tables[side.index].store
            try forEachSavedRow(file, side: side) { local, k, step, values, m, v in
                guard local < store.localCount, store.sizeIndex(of: local) == nil else {
                    throw CheckpointError("\(file.path): corrupt checkpoint shard: \(side.plural).rows.\(store.widths[k]).local holds \(local), not a free local ID of this rank")
                }
                store.restore(local, size: k, lastStep: step, values: values, m: m, v: v)
            }
        }
        for buffer in shardStateBuffers { try restore(buffer, from: file) }
    }
}
