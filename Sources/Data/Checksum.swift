// A fast 64-bit checksum over a byte range: four independent multiply-rotate
// lanes over 8-byte words (several GB/s), folded with SplitMix64. It detects
// truncation, flipped bits and reordering; it is not cryptographic.
import Random

public struct Checksum64 {
    private var lanes: (UInt64, UInt64, UInt64, UInt64) =
        (0x243F_6A88_85A3_08D3, 0x1319_8A2E_0370_7344, 0xA409_3822_299F_31D0, 0x082E_FA98_EC4E_6C89)
    private var length: UInt64 = 0
    private static let prime: UInt64 = 0x9E37_79B1_85EB_CA87

    public init() {}

    @inline(__always)
    private static func mix(_ lane: UInt64, _ word: UInt64) -> UInt64 {
        let x = (lane ^ word) &* prime
        return (x << 31) | (x >> 33)
    }

    /// Adds bytes. Chunks may have any length; the result depends only on
    /// the concatenation when every chunk but the last is a multiple of 32 bytes.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        let n = bytes.count
        var i = 0
        var l = lanes
        while i + 32 <= n {
            l.0 = Self.mix(l.0, base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            l.1 = Self.mix(l.1, base.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self))
            l.2 = Self.mix(l.2, base.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self))
            l.3 = Self.mix(l.3, base.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self))
            i += 32
        }
        while i < n {
            l.0 = Self.mix(l.0, UInt64(base.load(fromByteOffset: i, as: UInt8.self)) | 0x100)
            i += 1
        }
        lanes = l
        length &+= UInt64(n)
    }

    public var value: UInt64 {
        var h = splitMix64(lanes.0 ^ length)
        h = splitMix64(h ^ lanes.1)
        h = splitMix64(h ^ lanes.2)
        return splitMix64(h ^ lanes.3)
    }

    public static func of(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var c = Checksum64()
        c.update(bytes)
        return c.value
    }
}
