// Hostile checkpoint manifests, seeded with a real one: the manifest reader
// (TrainingManifest.read) and a resume through the trainer either accept a
// case or throw an error that names the manifest, never trap; and `esapn
// train --resume` refuses damaged ones with exit status 1, naming the file,
// and writes nothing.
import Checkpoints
import Comm
import Data
import Foundation
import TestSupport
import Training
import XCTest

final class CheckpointFuzzTests: XCTestCase {
    /// A stream and a checkpoint of a FIXED run on it (after batch 4 of 6).
    func checkpoint(in dir: URL) throws -> (stream: String, folder: String, config: TrainConfig) {
        let stream = dir.appendingPathComponent("s.stream").path
        try SyntheticStream.write(to: stream)
        var options = RunOptions(data: stream, output: dir.appendingPathComponent("run").path)
        options.progress = .off
        options.checkpointDirectory = dir.appendingPathComponent("checkpoints").path
        options.checkpointEvery = 4
        let config = TrainConfig()
        _ = try TrainingRun(config: config, options: options, comm: LocalCommunicator()).run()
        let folder = options.checkpointDirectory! + "/checkpoint-00000004"
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/manifest.json"))
        return (stream, folder, config)
    }

    /// A copy of `folder` whose manifest the cases overwrite.
    func copy(_ folder: String, to path: String) throws -> String {
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.copyItem(atPath: folder, toPath: path)
        return path
    }

    func testMutatedManifestsAreReadOrRefusedByTheReaderAndByResume() throws {
        let dir = try TestPaths.temporaryDirectory(self)
        let (stream, folder, config) = try checkpoint(in: dir)
        let seed = [UInt8](try Data(contentsOf: URL(fileURLWithPath: folder + "/manifest.json")))
        let target = try copy(folder, to: dir.appendingPathComponent("case").path)
        let manifest = target + "/manifest.json"
        let read = try Fuzzing.run("checkpoint manifest (reader)", seed: seed, path: manifest) { _ in
            do { _ = try TrainingManifest.read(folder: target) } catch let error as CheckpointError {
                XCTAssertTrue(error.description.contains(manifest), "names the manifest: \(error)")
                throw error
            }
        }
        XCTAssertLessThan(read, Fuzzing.cases, "most mutations are refused")
        // Through a resume: fewer cases (each opens a trainer); any accepted case restores the step.
        let cases = max(50, Fuzzing.cases / 40)
        let resumed = try Fuzzing.run("checkpoint manifest (resume)", seed: seed, path: manifest, cases: cases) { _ in
            let trainer = try StreamTrainer(config: config, stream: StreamFile(path: stream), comm: LocalCommunicator())
            do {
                _ = try trainer.resume(from: target)
                XCTAssertEqual(trainer.step, 4, "an accepted manifest resumes after batch 4")
            } catch {
                XCTAssertTrue("\(error)".contains(target), "names the checkpoint: \(error)")
                XCTAssertEqual(trainer.step, 0, "a refused resume leaves the trainer at the start")
                throw error
            }
        }
        XCTAssertLessThan(resumed, cases)
    }

    func testResumeFromADamagedManifestExitsWithAnErrorAndWritesNothing() throws {
        let dir = try TestPaths.temporaryDirectory(self)
        let (stream, folder, _) = try checkpoint(in: dir)
        let seed = try String(contentsOfFile: folder + "/manifest.json", encoding: .utf8)
        let damages: [(name: String, text: String, says: String)] = [
            ("truncated", String(seed.prefix(seed.count / 2)), "corrupt manifest"),
            ("not JSON", "\u{0}\u{1}garbage", "corrupt manifest"),
            ("a newer format", seed.replacingOccurrences(of: "\"format\" : \(TrainingManifest.currentFormat)", with: "\"format\" : 7"), "checkpoint format 7"),
            ("an older format (before the shard budget)",
             seed.replacingOccurrences(of: "\"format\" : \(TrainingManifest.currentFormat)", with: "\"format\" : 1"),
             "per-ID state with the rows and the shard budget's eviction state): resume it with the esapn that wrote it"),
            ("a shard unlisted", seed.replacingOccurrences(of: "rank-00000-of-00001", with: "rank-00009-of-00001"),
             "does not list rank-00000-of-00001.safetensors"),
        ]
        for damage in damages {
            let target = try copy(folder, to: dir.appendingPathComponent("damaged").path)
            try damage.text.write(toFile: target + "/manifest.json", atomically: true, encoding: .utf8)
            let shardBefore = try Data(contentsOf: URL(fileURLWithPath: target + "/rank-00000-of-00001.safetensors"))
            let output = dir.appendingPathComponent("out-\(damage.name)").path
            let r = try runEsapn(["train", "--data", stream, "--quiet", "--output", output, "--resume", target])
            XCTAssertEqual(r.status, 1, "\(damage.name): \(r.report)")
            XCTAssertTrue(r.stderr.contains("esapn: error: ") && r.stderr.contains(target + "/manifest.json")
                          && r.stderr.contains(damage.says), "\(damage.name): \(r.report)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: output + "/results.json"), "\(damage.name): no results")
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: target + "/rank-00000-of-00001.safetensors")), shardBefore,
                           "\(damage.name): the checkpoint is left as it was")
        }
    }
}
