// What the real MovieLens releases are like: the stars a rating can take,
// and the counts GroupLens publishes for each release, which `inspect`
// prints beside a synthetic stream and the generator's presets imitate.

// MARK: - Rating scale

/// The stars a rating can take.
public enum RatingScale: String, Codable, Sendable, CaseIterable {
    /// 0.5, 1.0, …, 5.0 (ml-20m, ml-latest).
    case halfStars = "half-stars"
    /// 1, 2, 3, 4, 5 (ml-100k, ml-1m).
    case wholeStars = "whole-stars"

    /// Every rating value, lowest first.
    public var levels: [Float] {
        switch self {
        case .halfStars: return (1...10).map { Float($0) * 0.5 }
        case .wholeStars: return (1...5).map { Float($0) }
        }
    }
}

// MARK: - Published statistics

/// Counts of a real MovieLens ratings file, as GroupLens distributes it.
public struct PublishedStatistics: Codable, Sendable, Equatable {
    public var dataset: String
    public var records: Int
    public var users: Int
    public var items: Int
    /// The rating values, lowest first, and how many ratings have each.
    public var ratingLevels: [Float]
    public var ratingCounts: [Int]
    public var firstTimestamp: Int64
    public var lastTimestamp: Int64

    /// Share of each rating level.
    public var ratingFractions: [Double] {
        let total = Double(ratingCounts.reduce(0, +))
        return ratingCounts.map { Double($0) / total }
    }

    /// ml-100k `u.data`: 1997-09-20 … 1998-04-22.
    public static let ml100k = PublishedStatistics(
        dataset: "ml-100k", records: 100_000, users: 943, items: 1_682,
        ratingLevels: RatingScale.wholeStars.levels,
        ratingCounts: [6_110, 11_370, 27_145, 34_174, 21_201],
        firstTimestamp: 874_724_710, lastTimestamp: 893_286_638)

    /// ml-20m `ratings.csv`: 1995-01-09 … 2015-03-31.
    public static let ml20m = PublishedStatistics(
        dataset: "ml-20m", records: 20_000_263, users: 138_493, items: 26_744,
        ratingLevels: RatingScale.halfStars.levels,
        ratingCounts: [239_125, 680_732, 279_252, 1_430_997, 883_398,
                       4_291_193, 2_200_156, 5_561_926, 1_534_824, 2_898_660],
        firstTimestamp: 789_652_004, lastTimestamp: 1_427_784_002)

    /// ml-latest `ratings.csv` (September 2018 release): 1995-01-09 … 2018-09-26.
    public static let mlLatest = PublishedStatistics(
        dataset: "ml-latest", records: 27_753_444, users: 283_228, items: 53_889,
        ratingLevels: RatingScale.halfStars.levels,
        ratingCounts: [442_388, 886_233, 441_354, 1_850_627, 1_373_419,
                       5_515_668, 3_404_360, 7_394_710, 2_373_550, 4_071_135],
        firstTimestamp: 789_652_004, lastTimestamp: 1_537_945_149)
}
