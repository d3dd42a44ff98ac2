// The side of a table (users or items), named once, and how a fresh row of
// either side is drawn. Everything that is per side (the two tables, their
// formers and policies, result columns, tensor names) indexes or names it
// through this type, not through "user", "users" or bare 0 and 1.
import Random

/// Which table a row belongs to; its raw value is part of the row's random key.
public enum EmbeddingSide: UInt64, Sendable, Codable, CaseIterable {
    case user = 0
    case item = 1

    /// Position in per-side arrays ([users, items]).
    @inline(__always) public var index: Int { Int(rawValue) }
    /// "users" / "items": result files, report columns, messages.
    public var plural: String { self == .user ? "users" : "items" }
    /// "user" / "item": the prefix of the side's dense tensor names.
    public var singular: String { self == .user ? "user" : "item" }
}

/// Fills a fresh embedding row with N(0, 1) values (PyTorch's nn.Embedding)
/// drawn from `RandomStream(seed:, purpose: .rowInit, id, side)`: the row
/// depends only on (seed, id, side, width), not on the rank that creates it
/// or when. Value j is the j-th draw, so a wider fresh row extends a narrower one.
public func initRow(values: UnsafeMutablePointer<Float>, width: Int, seed: UInt64, id: Int, side: EmbeddingSide) {
    precondition(width >= 0 && id >= 0, "initRow: need width >= 0 and id >= 0, got width=\(width) id=\(id)")
    var stream = RandomStream(seed: seed, purpose: .rowInit, UInt64(id), side.rawValue)
    for j in 0..<width { values[j] = Float(stream.normal()) }
}
