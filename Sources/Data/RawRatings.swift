// Ratings as read from a file or made by the generator, before preparation:
// original IDs, in input order. `StreamBuilder` turns them into a stream file.

/// Columns of (user, item, rating, timestamp) with the IDs of the source.
public struct RawRatings: Sendable {
    public var users: [UInt64] = []
    public var items: [UInt64] = []
    public var ratings: [Float] = []
    public var timestamps: [Int64] = []

    public init() {}

    public init(capacity: Int) {
        users.reserveCapacity(capacity)
        items.reserveCapacity(capacity)
        ratings.reserveCapacity(capacity)
        timestamps.reserveCapacity(capacity)
    }

    public var count: Int { users.count }

    @inlinable
    public mutating func append(user: UInt64, item: UInt64, rating: Float, timestamp: Int64) {
        users.append(user)
        items.append(item)
        ratings.append(rating)
        timestamps.append(timestamp)
    }

    public mutating func append(contentsOf other: RawRatings) {
        users += other.users
        items += other.items
        ratings += other.ratings
        timestamps += other.timestamps
    }
}
