// What a checkpoint is on disk (`esapn train --checkpoint-dir DIR`): a folder
// `checkpoint-SSSSSSSS` (S: batches done) holding
//   rank-RRRRR-of-PPPPP.safetensors  each rank's shard: its rows at their
//       widths with both moments and last steps (per width: local IDs, values,
//       m, v), then the rank's named state buffers (per-ID extra and policy
//       state, metric accumulators);
//   replicated.safetensors  (rank 0) the dense weights with their Adam moments;
//   manifest.json  (rank 0, written last) the step, the ranks, the run's
//       configuration, the stream's checksum, and every file with its size
//       and SHA-256, so a checkpoint is complete exactly when its manifest
//       exists and every file matches it.
// This file holds the layout, the manifest and its reader, the checks of a
// file against the manifest, and pruning; CheckpointWriter.swift writes one,
// CheckpointRestore.swift reads rows back, on the same or another number of
// ranks (re-owning each ID to id mod P').
import Data
import Foundation

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

public struct CheckpointError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// manifest.json. `Config` is the run's configuration (Training's TrainConfig).
public struct CheckpointManifest<Config: Codable & Sendable>: Codable, Sendable {
    public struct File: Codable, Sendable {
        public var name: String
        public var bytes: Int
        public var sha256: String
        public init(name: String, bytes: Int, sha256: String) { self.name = name; self.bytes = bytes; self.sha256 = sha256 }
    }
    /// The version of what a checkpoint holds; a reader refuses another.
    /// 2: per-ID state saved with each row, and the budget's eviction state
    /// (recency, evicted IDs, accounting, counts); 1: per-ID state indexed by local ID.
    public static var currentFormat: Int { 2 }
    public var format = Self.currentFormat
    public var step: Int
    public var ranks: Int
    public var config: Config
    public var stream_checksum: String
    public var stream_records: Int
    public var files: [File]

    public init(step: Int, ranks: Int, config: Config, stream_checksum: String, stream_records: Int, files: [File]) {
        self.step = step; self.ranks = ranks; self.config = config
        self.stream_checksum = stream_checksum; self.stream_records = stream_records; self.files = files
    }

    /// Reads and checks `folder`/manifest.json: JSON of this shape, this
    /// format, a step ≥ 0, ranks ≥ 1, every shard and the replicated file
    /// listed once with a size ≥ 0 and a 64-digit SHA-256. Every failure
    /// names the file and says how to go on.
    public static func read(folder: String) throws -> Self {
        let path = (folder as NSString).appendingPathComponent(CheckpointLayout.manifest)
        func corrupt(_ why: String) -> CheckpointError {
            CheckpointError("\(path): corrupt manifest (\(why)); choose an older checkpoint with --resume FOLDER")
        }
        let manifest: Self
        do {
            manifest = try JSONDecoder().decode(Self.self, from: Foundation.Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw corrupt("\(error)")
        }
        guard manifest.format == currentFormat else {
            throw CheckpointError("\(path): checkpoint format \(manifest.format); this esapn reads format \(currentFormat) only"
                                  + (manifest.format < currentFormat ? " (format 2 keeps per-ID state with the rows and the shard budget's eviction state)" : "")
                                  + ": resume it with the esapn that wrote it, or start the run again")
        }
        guard manifest.step >= 0 else { throw corrupt("step \(manifest.step)") }
        guard manifest.ranks >= 1 && manifest.ranks <= 1 << 20 else { throw corrupt("ranks \(manifest.ranks)") }
        var seen = Set<String>()
        for f in manifest.files {
            guard seen.insert(f.name).inserted else { throw corrupt("\(f.name) listed twice") }
            guard f.bytes >= 0 else { throw corrupt("\(f.name) of \(f.bytes) bytes") }
            guard f.sha256.count == 64, f.sha256.allSatisfy({ $0.isHexDigit }) else { throw corrupt("\(f.name)'s SHA-256 '\(f.sha256)'") }
        }
        let needed = [CheckpointLayout.replicated] + (0..<manifest.ranks).map { CheckpointLayout.shard(rank: $0, of: manifest.ranks) }
        if let missing = needed.first(where: { !seen.contains($0) }) { throw corrupt("it does not list \(missing)") }
        return manifest
    }

    /// The entry of `name`.
    public func entry(_ name: String) throws -> File {
        guard let e = files.first(where: { $0.name == name }) else {
            throw CheckpointError("manifest.json: corrupt manifest: it does not list \(name)")
        }
        return e
    }
}

public enum CheckpointLayout {
    public static let manifest = "manifest.json"
    public static let replicated = "replicated.safetensors"
    public static func folder(step: Int) -> String { String(format: "checkpoint-%08d", step) }
    public static func shard(rank: Int, of ranks: Int) -> String { String(format: "rank-%05d-of-%05d.safetensors", rank, ranks) }

    /// The step of a folder named by `folder(step:)`, or nil.
    public static func step(ofFolder name: String) -> Int? {
        guard name.hasPrefix("checkpoint-") else { return nil }
        return Int(name.dropFirst("checkpoint-".count))
    }

    /// The checkpoint folder `path` names: itself when it holds a manifest,
    /// else the newest `checkpoint-*` folder inside it that does.
    public static func resolve(_ path: String) throws -> String {
        let fm = FileManager.default
        if fm.fileExists(atPath: (path as NSString).appendingPathComponent(manifest)) { return path }
        guard let names = try? fm.contentsOfDirectory(atPath: path) else {
            throw CheckpointError("--resume \(path): no such folder; give a --checkpoint-dir or one checkpoint-* folder in it")
        }
        let complete = names.compactMap { n in step(ofFolder: n).map { (n, $0) } }
            .filter { fm.fileExists(atPath: "\(path)/\($0.0)/\(manifest)") }
            .sorted { $0.1 > $1.1 }
        guard let newest = complete.first else {
            throw CheckpointError("--resume \(path): holds no complete checkpoint (a checkpoint-* folder with a manifest.json)")
        }
        return (path as NSString).appendingPathComponent(newest.0)
    }

    /// Checks a file of `folder` against its manifest entry: present, of its
    /// size, of its SHA-256. Returns its path.
    public static func verify<C>(_ folder: String, _ entry: CheckpointManifest<C>.File) throws -> String {
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

    /// Removes all but the newest `keep` complete checkpoints, and incomplete ones older than the newest complete one.
    public static func prune(_ directory: String, keep: Int) {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: directory) else { return }
        let folders = names.compactMap { n in step(ofFolder: n).map { (name: n, step: $0) } }
            .sorted { $0.step > $1.step }
        let complete = folders.filter { fm.fileExists(atPath: "\(directory)/\($0.name)/\(manifest)") }
        guard let newest = complete.first?.step else { return }
        let kept = Set(complete.prefix(max(1, keep)).map(\.name))
        let completeNames = Set(complete.map(\.name))
        for f in folders where !kept.contains(f.name) && (completeNames.contains(f.name) || f.step < newest) {
            try? fm.removeItem(atPath: "\(directory)/\(f.name)")
        }
    }

    /// The fields of two configurations that differ, as "name: checkpoint a, this run b".
    public static func differences<C: Encodable>(_ saved: C, _ current: C) -> [String] {
        func fields(_ c: C) -> [String: String] {
            let data = (try? JSONEncoder().encode(c)) ?? Foundation.Data()
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
}
