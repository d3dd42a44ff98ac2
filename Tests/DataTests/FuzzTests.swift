// Hostile input: random bytes and mutations of valid files fed to every
// loader of Data: the four ratings readers and the stream file (the
// checkpoint files': CheckpointsTests/SafeTensorsFuzzTests and
// TrainingTests/CheckpointFuzzTests). Each case must end in a value or a
// thrown error, never a trap (which would crash this process) or a hang. ESAPN_FUZZ_CASES
// cases per loader (default 10,000, what CI runs; 100,000 were run locally,
// see README "Reliability").
import Data
import Foundation
import Random
import TestSupport
import XCTest

final class FuzzTests: XCTestCase {
    func fuzz(_ name: String, seed: [UInt8], path: String, cases: Int = Fuzzing.cases,
              _ load: (String) throws -> Void) throws -> Int {
        try Fuzzing.run(name, seed: seed, path: path, cases: cases, load)
    }

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
                _ = try fuzz("\(file) skip=\(skip)", seed: Array(text.utf8), path: path, cases: Fuzzing.cases / 2) {
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
        XCTAssertLessThan(accepted, Fuzzing.cases / 20, "the checksum refuses nearly every mutation")
    }

}
