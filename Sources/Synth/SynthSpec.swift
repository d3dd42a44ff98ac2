// What a synthetic MovieLens-like stream looks like: its scale, its rating
// scale and histogram, its time span, the hidden model behind the ratings and
// the shape of popularity and arrivals. Presets at the scale of ml-100k,
// ml-20m and ml-latest, each imitating a real dataset (Data/MovieLensReleases.swift).
import Data

// MARK: - Spec

/// Everything that shapes a synthetic stream. The generator is a pure
/// function of (spec, seed).
public struct SyntheticSpec: Codable, Sendable, Equatable {
    // Scale: the full stream has exactly these counts.
    /// Records (ratings) in the full stream.
    public var records: Int
    /// Distinct users in the full stream.
    public var users: Int
    /// Distinct items in the full stream.
    public var items: Int
    /// Every user rates at least this many items (20 in ml-20m, 1 in ml-latest).
    public var minimumRatingsPerUser: Int

    // Ratings.
    public var ratingScale: RatingScale
    /// Target share of each level of `ratingScale`, lowest first; relative
    /// weights (counts or fractions), normalised by the generator.
    public var ratingHistogram: [Double]

    // Time: timestamps run linearly in record index from first to last.
    public var firstTimestamp: Int64
    public var lastTimestamp: Int64

    // The hidden model: score = userBias + itemBias + ⟨p_u, q_i⟩ + noise·ε,
    // each term's standard deviation given here (in score units). The
    // defaults are calibrated on real ml-100k by `esapn inspect --diagnose`
    // (docs/stand-in.md): biases explain about 31% of the held-out variance
    // and a rank-8 interaction adds 1–2%, users' noise differs by ~22%, and a
    // user's consecutive ratings correlate by ~0.16 around the user's mean.
    /// Width of the hidden user and item vectors p_u, q_i.
    public var latentDimension: Int
    public var userBiasScale: Double
    public var itemBiasScale: Double
    /// Standard deviation of ⟨p_u, q_i⟩.
    public var interactionScale: Double
    /// Standard deviation of the per-record noise ε (for a typical user).
    public var noise: Double
    /// Lognormal σ of a per-user multiplier of the noise (mean 1): some users
    /// rate consistently, others erratically. 0: the same noise for everyone.
    public var userNoiseSpread: Double
    /// A user's mood: a part of the user's bias that drifts from one of their
    /// ratings to the next (AR(1) with this standard deviation, and
    /// `userDriftPersistence` the correlation of consecutive values), so a
    /// user's ratings are correlated in time and their mean moves (real
    /// ml-100k: consecutive ratings of a user correlate by 0.16 around the
    /// user's mean). 0: no drift.
    public var userDrift: Double
    public var userDriftPersistence: Double
    /// Correlation of an item's bias with its (log) popularity; positive means
    /// popular items are rated higher, as in MovieLens.
    public var popularityRatingCorrelation: Double

    // Popularity and arrivals.
    /// Lognormal σ of a user's rating budget beyond the minimum (z clipped
    /// to ±3, the largest bent under `maximumUserCoverage`).
    public var userActivitySpread: Double
    /// Lognormal σ of an item's rating budget beyond one (likewise, under
    /// `maximumItemCoverage`).
    public var itemPopularitySpread: Double
    /// The largest budget of a user, as a share of all items (real data:
    /// 0.35–0.45), and of an item, as a share of all users (real data:
    /// 0.35–0.6; above ~0.4 the most popular items run out of users who have
    /// not rated them before their budget is spent, and pairs repeat).
    public var maximumUserCoverage: Double
    public var maximumItemCoverage: Double
    /// Correlation between an item's popularity and how early it arrives
    /// (the most rated movies are mostly old ones); 0 is a random order.
    public var popularItemsArriveEarly: Double
    /// The same for users and their activity (the last users to join have
    /// had the least time to rate).
    public var activeUsersArriveEarly: Double
    /// Users present when the stream starts; the rest arrive over time.
    public var initialUsers: Int
    /// Items present when the stream starts; the rest arrive over time.
    public var initialItems: Int
    /// α in (0, 1): user j (after the initial ones) arrives at record
    /// ⌊α · (budget of the users before it beyond the initial ones)⌋, so users
    /// arrive in step with the ratings they bring. Nearer 1: later arrivals
    /// and shorter, burstier user lifetimes.
    public var userArrivalPace: Double
    /// Items (after the initial catalogue) arrive at an even pace in number,
    /// the last one at this fraction of the stream (as long as the arrived
    /// items' budget stays ahead of the stream).
    public var itemArrivalEnd: Double
    /// Item IDs are scattered over 1...maximumItemID (≥ items), as MovieLens'
    /// movie IDs are, so that remapping is exercised. User IDs are 1...users in
    /// order of arrival.
    public var maximumItemID: UInt64
    /// Users rate in sessions: this many sessions are open at a time, each
    /// record goes to one of them at random, and a session ends after its
    /// length or when its user's budget is spent; a new one then opens with a
    /// user drawn by remaining budget. Real MovieLens users rate dozens of
    /// movies in one sitting (ml-100k: a median user appears in 2 batches of
    /// 500 records, with 52 ratings in each). 0: no sessions, every record
    /// draws its user by remaining budget.
    public var concurrentSessions: Int
    /// Mean ratings in a session (lognormal, σ = 1).
    public var sessionLength: Double
    /// When a drawn item is one the user has (probably) rated already, draw
    /// again, up to this many times: the first half by remaining budget, the
    /// rest uniformly among items with budget left. 0 allows repeated
    /// (user, item) pairs freely.
    public var maximumItemRedraws: Int

    public init(records: Int, users: Int, items: Int, minimumRatingsPerUser: Int = 1,
                ratingScale: RatingScale = .halfStars, ratingHistogram: [Double]? = nil,
                firstTimestamp: Int64 = 789_652_004, lastTimestamp: Int64 = 1_537_945_149,
                latentDimension: Int = 4, userBiasScale: Double = 0.48, itemBiasScale: Double = 0.66,
                interactionScale: Double = 0.47, noise: Double = 0.78, userNoiseSpread: Double = 0.4,
                userDrift: Double = 0.8, userDriftPersistence: Double = 0.95,
                popularityRatingCorrelation: Double = 0.3,
                userActivitySpread: Double = 1.3, itemPopularitySpread: Double = 2.0,
                maximumUserCoverage: Double = 0.4, maximumItemCoverage: Double = 0.35,
                popularItemsArriveEarly: Double = 0.9, activeUsersArriveEarly: Double = 0.6,
                initialUsers: Int? = nil, initialItems: Int? = nil,
                userArrivalPace: Double = 0.9, itemArrivalEnd: Double = 0.9,
                maximumItemID: UInt64? = nil, maximumItemRedraws: Int = 15,
                concurrentSessions: Int = 3, sessionLength: Double = 60) {
        self.records = records
        self.users = users
        self.items = items
        self.minimumRatingsPerUser = minimumRatingsPerUser
        self.ratingScale = ratingScale
        self.ratingHistogram = ratingHistogram ?? (ratingScale == .halfStars
            ? PublishedStatistics.mlLatest.ratingCounts.map(Double.init)
            : PublishedStatistics.ml100k.ratingCounts.map(Double.init))
        self.firstTimestamp = firstTimestamp
        self.lastTimestamp = lastTimestamp
        self.latentDimension = latentDimension
        self.userBiasScale = userBiasScale
        self.itemBiasScale = itemBiasScale
        self.interactionScale = interactionScale
        self.noise = noise
        self.userNoiseSpread = userNoiseSpread
        self.userDrift = userDrift
        self.userDriftPersistence = userDriftPersistence
        self.popularityRatingCorrelation = popularityRatingCorrelation
        self.userActivitySpread = userActivitySpread
        self.itemPopularitySpread = itemPopularitySpread
        self.maximumUserCoverage = maximumUserCoverage
        self.maximumItemCoverage = maximumItemCoverage
        self.popularItemsArriveEarly = popularItemsArriveEarly
        self.activeUsersArriveEarly = activeUsersArriveEarly
        self.initialUsers = initialUsers ?? max(1, min(users, users / 100))
        self.initialItems = initialItems ?? max(1, min(items, items / 5))
        self.userArrivalPace = userArrivalPace
        self.itemArrivalEnd = itemArrivalEnd
        self.maximumItemID = maximumItemID ?? UInt64(max(0, items)) * 5
        self.maximumItemRedraws = maximumItemRedraws
        self.concurrentSessions = concurrentSessions
        self.sessionLength = sessionLength
    }

    /// `ratingHistogram` as fractions summing to 1.
    public var ratingFractions: [Double] {
        let total = ratingHistogram.reduce(0, +)
        return ratingHistogram.map { $0 / total }
    }
}

// MARK: - Validation

/// A spec that cannot be generated, saying which field and how to fix it.
public struct SyntheticSpecError: Error, CustomStringConvertible, Equatable {
    public var field: String
    public var problem: String
    public var description: String { "synthetic spec: \(field): \(problem)" }
}

extension SyntheticSpec {
    /// Checks every field once; the generator relies on this.
    public func validate() throws {
        func fail(_ field: String, _ problem: String) -> SyntheticSpecError {
            SyntheticSpecError(field: field, problem: problem)
        }
        guard records >= 1, records <= Int(Int32.max) else {
            throw fail("records", "\(records) must be in 1...\(Int32.max)")
        }
        guard users >= 1 else { throw fail("users", "\(users) must be at least 1") }
        guard items >= 1 else { throw fail("items", "\(items) must be at least 1") }
        guard minimumRatingsPerUser >= 1 else {
            throw fail("minimumRatingsPerUser", "\(minimumRatingsPerUser) must be at least 1 (every user appears)")
        }
        guard users.multipliedReportingOverflow(by: minimumRatingsPerUser).partialValue <= records,
              !users.multipliedReportingOverflow(by: minimumRatingsPerUser).overflow else {
            throw fail("records", "\(records) cannot give \(users) users \(minimumRatingsPerUser) ratings each; "
                + "raise records to at least \(users) × \(minimumRatingsPerUser) or lower users or the minimum")
        }
        guard items <= records else {
            throw fail("items", "\(items) items need at least as many records (have \(records)); lower items or raise records")
        }
        guard UInt64(items) <= maximumItemID else {
            throw fail("maximumItemID", "\(maximumItemID) leaves no room for \(items) distinct item IDs; set it to at least \(items)")
        }
        guard maximumItemID <= UInt64(UInt32.max) else {
            throw fail("maximumItemID", "\(maximumItemID) must be at most \(UInt32.max)")
        }
        let levels = ratingScale.levels.count
        guard ratingHistogram.count == levels else {
            throw fail("ratingHistogram", "has \(ratingHistogram.count) entries, \(ratingScale.rawValue) needs \(levels) (lowest star first)")
        }
        guard ratingHistogram.allSatisfy({ $0.isFinite && $0 >= 0 }), ratingHistogram.reduce(0, +) > 0 else {
            throw fail("ratingHistogram", "\(ratingHistogram) must be non-negative weights with a positive sum")
        }
        guard lastTimestamp >= firstTimestamp,
              !lastTimestamp.subtractingReportingOverflow(firstTimestamp).overflow else {
            throw fail("lastTimestamp", "\(lastTimestamp) must not precede firstTimestamp \(firstTimestamp)")
        }
        guard latentDimension >= 1, latentDimension <= 1024 else {
            throw fail("latentDimension", "\(latentDimension) must be in 1...1024")
        }
        for (name, value) in [("userBiasScale", userBiasScale), ("itemBiasScale", itemBiasScale),
                              ("interactionScale", interactionScale), ("noise", noise),
                              ("userNoiseSpread", userNoiseSpread), ("userDrift", userDrift),
                              ("userActivitySpread", userActivitySpread), ("itemPopularitySpread", itemPopularitySpread)] {
            guard value.isFinite, value >= 0 else { throw fail(name, "\(value) must be a finite number ≥ 0") }
        }
        guard userBiasScale + itemBiasScale + interactionScale + noise > 0 else {
            throw fail("noise", "every term of the hidden model is 0; give at least one a positive scale")
        }
        for (name, value) in [("popularityRatingCorrelation", popularityRatingCorrelation),
                              ("popularItemsArriveEarly", popularItemsArriveEarly),
                              ("activeUsersArriveEarly", activeUsersArriveEarly)] {
            guard value >= -1, value <= 1 else { throw fail(name, "\(value) must be in -1...1") }
        }
        for (name, value) in [("maximumUserCoverage", maximumUserCoverage), ("maximumItemCoverage", maximumItemCoverage)] {
            guard value > 0, value <= 1 else { throw fail(name, "\(value) must be in (0, 1]") }
        }
        guard initialUsers >= 1, initialUsers <= users else {
            throw fail("initialUsers", "\(initialUsers) must be in 1...\(users)")
        }
        guard initialItems >= 1, initialItems <= items else {
            throw fail("initialItems", "\(initialItems) must be in 1...\(items)")
        }
        guard userArrivalPace > 0, userArrivalPace < 1 else {
            throw fail("userArrivalPace", "\(userArrivalPace) must be strictly between 0 and 1 (0.9 is a good start)")
        }
        guard itemArrivalEnd >= 0, itemArrivalEnd <= 1 else {
            throw fail("itemArrivalEnd", "\(itemArrivalEnd) must be in 0...1 (a share of the stream)")
        }
        guard userDriftPersistence >= 0, userDriftPersistence < 1 else {
            throw fail("userDriftPersistence", "\(userDriftPersistence) must be in [0, 1)")
        }
        guard concurrentSessions >= 0, concurrentSessions <= 1_000_000 else {
            throw fail("concurrentSessions", "\(concurrentSessions) must be in 0...1000000 (0: no sessions)")
        }
        guard sessionLength.isFinite, sessionLength >= 1 else {
            throw fail("sessionLength", "\(sessionLength) must be a finite number ≥ 1")
        }
        guard maximumItemRedraws >= 0, maximumItemRedraws <= 1000 else {
            throw fail("maximumItemRedraws", "\(maximumItemRedraws) must be in 0...1000")
        }
    }
}

// MARK: - Presets

/// Synthetic streams at the scale of real MovieLens datasets.
public enum SyntheticPreset: String, CaseIterable, Codable, Sendable {
    /// ml-100k-like: 100,000 whole-star ratings, 943 users, 1,682 items.
    case small
    /// ml-20m-like: 20,000,263 half-star ratings, 138,493 users, 26,744 items.
    case ml20m = "ml-20m"
    /// ml-latest-like (2018): 27,753,444 half-star ratings, 283,228 users, 53,889 items.
    case mlLatest = "ml-latest"

    /// The preset a synthetic stream was made from, read from its header's
    /// source ("synth --preset NAME …"), or nil.
    public static func of(source: String) -> SyntheticPreset? {
        let words = source.split(separator: " ")
        guard words.first == "synth", let i = words.firstIndex(of: "--preset"), i + 1 < words.count else { return nil }
        return SyntheticPreset(rawValue: String(words[i + 1]))
    }

    /// The real dataset this preset imitates.
    public var published: PublishedStatistics {
        switch self {
        case .small: return .ml100k
        case .ml20m: return .ml20m
        case .mlLatest: return .mlLatest
        }
    }

    /// Counts, histogram and time span of `published`; popularity shapes
    /// chosen to resemble the real medians and maxima.
    public var spec: SyntheticSpec {
        let p = published
        switch self {
        case .small:
            return SyntheticSpec(
                records: p.records, users: p.users, items: p.items, minimumRatingsPerUser: 20,
                ratingScale: .wholeStars, ratingHistogram: p.ratingCounts.map(Double.init),
                firstTimestamp: p.firstTimestamp, lastTimestamp: p.lastTimestamp,
                userActivitySpread: 1.3, itemPopularitySpread: 1.45, maximumItemCoverage: 0.5,
                activeUsersArriveEarly: 0.3, initialUsers: 10, initialItems: 1_250, userArrivalPace: 0.85,
                maximumItemID: UInt64(p.items))
        case .ml20m:
            return SyntheticSpec(
                records: p.records, users: p.users, items: p.items, minimumRatingsPerUser: 20,
                ratingScale: .halfStars, ratingHistogram: p.ratingCounts.map(Double.init),
                firstTimestamp: p.firstTimestamp, lastTimestamp: p.lastTimestamp,
                userActivitySpread: 1.35, itemPopularitySpread: 2.6,
                initialUsers: 50, initialItems: 5_000, maximumItemID: 131_262)
        case .mlLatest:
            return SyntheticSpec(
                records: p.records, users: p.users, items: p.items, minimumRatingsPerUser: 1,
                ratingScale: .halfStars, ratingHistogram: p.ratingCounts.map(Double.init),
                firstTimestamp: p.firstTimestamp, lastTimestamp: p.lastTimestamp,
                userActivitySpread: 1.6, itemPopularitySpread: 2.8,
                initialUsers: 50, initialItems: 10_000, maximumItemID: 193_886)
        }
    }
}
