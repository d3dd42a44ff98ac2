// Hostile input: random bytes and mutations of valid files fed to every
// loader (the four ratings readers, the stream file, safetensors shards and
// the checkpoint manifest). Each case must end in a value or a thrown error,
// never a trap (which would crash this process) or a hang. ESAPN_FUZZ_CASES
// cases per loader (default 10,000, what CI runs; 100,000 were run locally,
// see README "Reliability").
import Data
import Foundation
import Random
import TestSupport
import XCTest

final class FuzzTests: XCTestCase {
    static var cases: Int { Int(ProcessInfo.processInfo.environment["ESAPN_FUZZ_CASES"] ?? "") ?? 10_000 }

    /// A mutation of `seed`: bytes flipped, cut, duplicated, inserted or replaced by noise.
    static func mutate(_ seed: [UInt8], _ rng: inout RandomStream) -> [UInt8] {
        var b = seed
        switch rng.below(7) {
        case 0:  // flip a few bytes
            for _ in 0...rng.below(4) where !b.isEmpty { b[rng.below(b.count)] ^= UInt8(1 + rng.below(255)) }
        case 1:  // truncate
            b = Array(b.prefix(rng.below(b.count + 1)))
        case 2:  // duplicate a slice
            if !b.isEmpty { let i = rng.below(b.count), j = min(b.count, i + rng.below(64)); b.insert(contentsOf: b[i..<j], at: rng.below(b.count)) }
        case 3:  // insert random bytes
            b.insert(contentsOf: (0..<(1 + rng.below(16))).map { _ in UInt8(rng.below(256)) }, at: rng.below(b.count + 1))
        case 4:  // digits and separators that parse as huge or odd numbers
            let junk: [String] = ["99999999999999999999", "-1", "nan", "1e400", "0.0000001", "", ",,,", "::", "\t\t", "\r\n", "\u{FEFF}"]
            let s = Array(junk[rng.below(junk.count)].utf8)
            b.insert(contentsOf: s, at: rng.below(b.count + 1))
        case 5:  // pure noise
            b = (0..<rng.below(512)).map { _ in UInt8(rng.below(256)) }
        default: // overwrite a run of bytes with one value
            if !b.isEmpty { let i = rng.below(b.count); for k in i..<min(b.count, i + rng.below(32)) { b[k] = UInt8(rng.below(256)) } }
        }
        return b
    }

    /// Writes each case to `path` and calls `load`; returns how many loaded without an error.
    func fuzz(_ name: String, seed: [UInt8], path: String, cases: Int = FuzzTests.cases, _ load: (String) throws -> Void) throws -> Int {
        var rng = RandomStream(seed: 2026, purpose: .test, stableName(name))
        var accepted = 0
        for _ in 0..<cases {
            let bytes = Self.mutate(seed, &rng)
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            do { try load(path); accepted += 1 } catch {}
        }
        print("fuzz \(name): \(cases) cases, \(accepted) loaded, the rest refused with an error")
        return accepted
    }

    func stableName(_ s: String) -> UInt64 { s.utf8.reduce(UInt64(1469598103934665603)) { ($0 ^ UInt64($1)) &* 1099511628211 } }

    func testRatingsReaders() throws {
        let dir = try TestPaths.temporaryDirectory(self)
        let samples: [(String, String)] = [
            ("ratings.csv", "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n1,1029,3.0,1260759179\n2,10,4.0,835355493\n"),
            ("ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::914::3::978301968\n"),
            ("u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n"),
            ("ml.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n196\t242\t3\t881250949\n186\t302\t3\t891717742\n"),
        ]
        for (file, text) in samples {
            let path = dir.appendingPathComponent(file).path
            // Each reader's cases are split between the strict and the --skip-invalid modes.
            for skip in [false, true] {
                _ = try fuzz("\(file) skip=\(skip)", seed: Array(text.utf8), path: path, cases: Self.cases / 2) {
                    _ = try RatingsReader.read(path: $0, skipInvalid: skip)
                }
            }
        }
    }

    func testStreamFile() throws {
        let dir = try TestPaths.temporaryDirectory(self)
        var raw = RawRatings()
        for k in 0..<40 { raw.append(user: UInt64(k % 7), item: UInt64(k % 5 + 100), rating: Float(1 + k % 5), timestamp: Int64(1000 + k)) }
        let valid = dir.appendingPathComponent("valid.stream").path
        _ = try StreamBuilder.write(raw, order: .time, seed: 0, source: "fuzz", to: valid)
        let seed = [UInt8](try Data(contentsOf: URL(fileURLWithPath: valid)))
        let accepted = try fuzz("stream file", seed: seed, path: dir.appendingPathComponent("case.stream").path) { _ = try StreamFile(path: $0) }
        XCTAssertLessThan(accepted, Self.cases / 20, "the checksum refuses nearly every mutation")
    }

    func testSafeTensorsAndManifest() throws {
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
        _ = try fuzz("safetensors", seed: seed, path: dir.appendingPathComponent("case.safetensors").path) { path in
            let file = try SafeTensors.File(path: path)
            for (name, t) in file.tensors { _ = try file.tensor(name, t.type) }
        }
        let manifest = Array("""
        {"config":{"model":"esapn","task":"binary","seed":0,"batchSize":500},"files":[{"bytes":1630664,"name":"rank-00000-of-00001.safetensors","sha256":"ab"}],"format":1,"ranks":1,"step":150,"stream_checksum":"9f","stream_records":100000}
        """.utf8)
        _ = try fuzz("checkpoint manifest", seed: manifest, path: dir.appendingPathComponent("manifest.json").path) { path in
            _ = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
        }
    }
}
