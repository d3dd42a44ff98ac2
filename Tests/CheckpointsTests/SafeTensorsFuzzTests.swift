// Hostile safetensors shards (Fuzzing: mutations of a valid file): every
// case loads or throws, never traps. The manifest's fuzzing, through its
// reader and --resume, is TrainingTests/CheckpointFuzzTests.
import Checkpoints
import Foundation
import TestSupport
import XCTest

final class SafeTensorsFuzzTests: XCTestCase {
    func testMutatedShardsLoadOrThrow() throws {
        let dir = try TestPaths.temporaryDirectory(self)
        let valid = dir.appendingPathComponent("valid.safetensors").path
        let floats = (0..<24).map { Float($0) }, ints: [Int32] = [1, 2, 3]
        _ = try floats.withUnsafeBytes { f in
            try ints.withUnsafeBytes { i in
                try SafeTensors.write([SafeTensor("users.rows.8.values", .f32, shape: [3, 8], data: f),
                                       SafeTensor("users.rows.8.local", .i32, shape: [3], data: i)], metadata: ["step": "3"], to: valid)
            }
        }
        let seed = [UInt8](try Data(contentsOf: URL(fileURLWithPath: valid)))
        let accepted = try Fuzzing.run("safetensors", seed: seed, path: dir.appendingPathComponent("case.safetensors").path) { path in
            let file = try SafeTensors.File(path: path)
            for (name, t) in file.tensors { _ = try file.tensor(name, t.type) }
        }
        XCTAssertLessThan(accepted, Fuzzing.cases, "most mutations are refused")
    }
}
