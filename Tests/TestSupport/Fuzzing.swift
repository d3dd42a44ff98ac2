// Hostile input for the loaders' fuzz tests: mutations of a valid file's
// bytes (flipped, cut, duplicated, inserted, replaced by noise). Each case
// must end in a value or a thrown error, never a trap or a hang.
// ESAPN_FUZZ_CASES cases per loader (default 10,000, what CI runs).
import Foundation
import Random

public enum Fuzzing {
    public static var cases: Int { Int(ProcessInfo.processInfo.environment["ESAPN_FUZZ_CASES"] ?? "") ?? 10_000 }

    /// A mutation of `seed`: bytes flipped, cut, duplicated, inserted or replaced by noise.
    public static func mutate(_ seed: [UInt8], _ rng: inout RandomStream) -> [UInt8] {
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
    @discardableResult
    public static func run(_ name: String, seed: [UInt8], path: String, cases: Int = Fuzzing.cases, _ load: (String) throws -> Void) throws -> Int {
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

    static func stableName(_ s: String) -> UInt64 { s.utf8.reduce(UInt64(1469598103934665603)) { ($0 ^ UInt64($1)) &* 1099511628211 } }
}
