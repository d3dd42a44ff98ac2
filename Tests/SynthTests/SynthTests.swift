// The synthetic generator: determinism, the prefix property, exact counts,
// the minimum per user, time order, the rating histogram, heavy tails,
// arrivals over time, signal in the ratings, and the presets.
import Data
import Foundation
import Random
import Synth
import TestSupport
import XCTest

final class SynthTests: XCTestCase {
    /// The full `small` preset (100,000 records), made once for the tests that read it.
    static let small = SyntheticGenerator(spec: SyntheticPreset.small.spec, seed: 7).generate()

    /// An ml-latest-like spec at test scale: half stars, users with one rating allowed.
    static let halfStarSpec = SyntheticSpec(records: 60_000, users: 700, items: 2_000, minimumRatingsPerUser: 1,
                                            ratingScale: .halfStars)

    // MARK: - Determinism and prefixes

    func testSameSeedGivesTheSameStream() {
        let again = SyntheticGenerator(spec: SyntheticPreset.small.spec, seed: 7).generate()
        assertSameRecords(again, Self.small)
    }

    func testDifferentSeedGivesADifferentStream() {
        let other = SyntheticGenerator(spec: SyntheticPreset.small.spec, seed: 8).generate(records: 1_000)
        let first = prefix(Self.small, 1_000)
        XCTAssertNotEqual(other.items, first.items)
        XCTAssertNotEqual(other.ratings, first.ratings)
    }

    func testShortStreamIsAPrefixOfTheFullSmallPreset() {
        let short = SyntheticGenerator(spec: SyntheticPreset.small.spec, seed: 7).generate(records: 1_000)
        XCTAssertEqual(short.count, 1_000)
        assertSameRecords(short, prefix(Self.small, 1_000))
    }

    func testShortStreamIsAPrefixForACustomSpec() {
        let generator = SyntheticGenerator(spec: Self.halfStarSpec, seed: 11)
        let full = generator.generate()
        for n in [0, 1, 12_345, 59_999] {
            assertSameRecords(generator.generate(records: n), prefix(full, n), "records: \(n)")
        }
    }

    // MARK: - Exact counts

    func testSmallPresetHasExactCounts() {
        let spec = SyntheticPreset.small.spec
        XCTAssertEqual(Self.small.count, 100_000)
        XCTAssertEqual(Set(Self.small.users).count, spec.users)
        XCTAssertEqual(Set(Self.small.items).count, spec.items)
        XCTAssertEqual(Self.small.users.min(), 1)
        XCTAssertEqual(Self.small.users.max(), UInt64(spec.users))
        XCTAssertEqual(Self.small.items.max()!, spec.maximumItemID)
    }

    func testCustomSpecHasExactCountsAndScatteredItemIDs() {
        let spec = Self.halfStarSpec
        let raw = SyntheticGenerator(spec: spec, seed: 3).generate()
        XCTAssertEqual(raw.count, spec.records)
        XCTAssertEqual(Set(raw.users).count, spec.users)
        XCTAssertEqual(Set(raw.items).count, spec.items)
        // IDs spread over 1...5 × items, not 1...items.
        XCTAssertGreaterThanOrEqual(raw.items.min()!, 1)
        XCTAssertLessThanOrEqual(raw.items.max()!, spec.maximumItemID)
        XCTAssertGreaterThan(raw.items.max()!, UInt64(spec.items) * 3)
    }

    func testEveryUserHasTheMinimumOnSmall() {
        let counts = countsByID(Self.small.users)
        XCTAssertGreaterThanOrEqual(counts.values.min()!, 20)
    }

    func testEveryUserHasTheMinimumOnACustomSpec() {
        // Budgets nearly all at the minimum: 300 users × 20 = 6,000 of 6,500 records.
        let spec = SyntheticSpec(records: 6_500, users: 300, items: 400, minimumRatingsPerUser: 20,
                                 ratingScale: .wholeStars)
        let raw = SyntheticGenerator(spec: spec, seed: 5).generate()
        let counts = countsByID(raw.users)
        XCTAssertEqual(counts.count, 300)
        XCTAssertGreaterThanOrEqual(counts.values.min()!, 20)
        XCTAssertEqual(Set(raw.items).count, 400)
        // Exactly at the minimum: every user has exactly 20.
        let tight = SyntheticSpec(records: 6_000, users: 300, items: 400, minimumRatingsPerUser: 20,
                                  ratingScale: .wholeStars)
        let tightCounts = countsByID(SyntheticGenerator(spec: tight, seed: 5).generate().users)
        XCTAssertEqual(Set(tightCounts.values), [20])
    }

    // MARK: - Time

    func testTimestampsAreNonDecreasingAndSpanThePreset() {
        let spec = SyntheticPreset.small.spec
        let t = Self.small.timestamps
        XCTAssertTrue(zip(t, t.dropFirst()).allSatisfy { $0 <= $1 }, "timestamps go backwards")
        XCTAssertEqual(t.first, spec.firstTimestamp)
        XCTAssertEqual(t.last, spec.lastTimestamp)
        XCTAssertGreaterThan(Set(t).count, 90_000, "timestamps should spread, not bunch")
    }

    func testUsersAndItemsArriveOverTime() {
        let raw = Self.small
        let tenth = prefix(raw, raw.count / 10)
        XCTAssertLessThan(Set(tenth.users).count, 943 / 4, "most users should join after the first tenth")
        XCTAssertLessThan(Set(tenth.items).count, 1_682 * 9 / 10, "items should keep arriving")
        let half = prefix(raw, raw.count / 2)
        XCTAssertLessThan(Set(half.users).count, 943 * 3 / 4)
        XCTAssertLessThan(Set(half.items).count, 1_682)
    }

    // MARK: - Ratings

    func testRatingHistogramIsNearTheTarget() {
        assertHistogram(Self.small, SyntheticPreset.small.spec, tolerance: 0.015)
        let spec = Self.halfStarSpec
        assertHistogram(SyntheticGenerator(spec: spec, seed: 2).generate(), spec, tolerance: 0.02)
    }

    func testHalfStarsAppearOnlyOnTheHalfStarScale() {
        let half = SyntheticGenerator(spec: Self.halfStarSpec, seed: 4).generate(records: 20_000)
        let halves = half.ratings.filter { $0 != $0.rounded() }.count
        XCTAssertGreaterThan(halves, 20_000 / 10, "ml-latest has about 28% half stars")
        XCTAssertTrue(half.ratings.allSatisfy { RatingScale.halfStars.levels.contains($0) })
        XCTAssertTrue(Self.small.ratings.allSatisfy { $0 == $0.rounded() && $0 >= 1 && $0 <= 5 })
    }

    func testRatingsCarrySignal() {
        // A user's mean rating varies far more across users than it would if
        // ratings were noise: compare with the same ratings shuffled.
        let raw = Self.small
        var shuffled = raw.ratings
        var random = RandomStream(seed: 1, purpose: .test)
        for k in stride(from: shuffled.count - 1, to: 0, by: -1) { shuffled.swapAt(k, random.below(k + 1)) }
        let users = varianceOfMeans(raw.users, raw.ratings)
        let usersIfNoise = varianceOfMeans(raw.users, shuffled)
        XCTAssertGreaterThan(users, 4 * usersIfNoise, "per-user means: \(users) vs \(usersIfNoise) if noise")
        let items = varianceOfMeans(raw.items, raw.ratings)
        let itemsIfNoise = varianceOfMeans(raw.items, shuffled)
        XCTAssertGreaterThan(items, 2 * itemsIfNoise, "per-item means: \(items) vs \(itemsIfNoise) if noise")
    }

    func testUserAndItemEffectsExplainPartOfTheRatings() {
        // Residuals after removing each user's and item's mean: smaller than
        // the ratings' spread (there is structure), but far from zero (there
        // is noise, as in real ratings).
        let raw = Self.small
        let mean = raw.ratings.reduce(0) { $0 + Double($1) } / Double(raw.count)
        let userMeans = meansByID(raw.users, raw.ratings), itemMeans = meansByID(raw.items, raw.ratings)
        var total = 0.0, residual = 0.0
        for k in 0..<raw.count {
            let r = Double(raw.ratings[k])
            total += (r - mean) * (r - mean)
            let e = r - userMeans[raw.users[k]]! - itemMeans[raw.items[k]]! + mean
            residual += e * e
        }
        XCTAssertLessThan(residual, 0.85 * total, "user and item effects should explain part of the ratings")
        XCTAssertGreaterThan(residual, 0.2 * total, "ratings should keep their noise")
    }

    // MARK: - Shape of the stream

    func testPopularityIsHeavyTailed() {
        let itemCounts = countsByID(Self.small.items).values.sorted(by: >)
        let top = itemCounts.prefix(itemCounts.count / 10).reduce(0, +)
        XCTAssertGreaterThan(Double(top) / Double(Self.small.count), 0.40, "top 10% of items")
        let userCounts = countsByID(Self.small.users).values.sorted()
        XCTAssertGreaterThan(userCounts.last!, 6 * userCounts[userCounts.count / 2], "most active user vs median")
    }

    func testUserItemPairsRarelyRepeat() {
        var pairs = Set<UInt64>()
        var repeats = 0
        for k in 0..<Self.small.count where !pairs.insert(Self.small.users[k] << 32 | Self.small.items[k]).inserted {
            repeats += 1
        }
        XCTAssertLessThan(repeats, Self.small.count / 200, "more than 0.5% repeated (user, item) pairs")
    }

    // MARK: - Presets and specs

    func testPresetsMatchThePublishedCounts() throws {
        for preset in SyntheticPreset.allCases {
            let spec = preset.spec, published = preset.published
            try spec.validate()
            XCTAssertEqual(spec.records, published.records, preset.rawValue)
            XCTAssertEqual(spec.users, published.users, preset.rawValue)
            XCTAssertEqual(spec.items, published.items, preset.rawValue)
            XCTAssertEqual(published.ratingCounts.reduce(0, +), published.records, preset.rawValue)
            XCTAssertEqual(published.ratingLevels, spec.ratingScale.levels, preset.rawValue)
            assertClose(spec.ratingFractions.reduce(0, +), 1, rtol: 1e-12)
            XCTAssertEqual(spec.firstTimestamp, published.firstTimestamp)
            XCTAssertEqual(spec.lastTimestamp, published.lastTimestamp)
            XCTAssertEqual(SyntheticPreset(rawValue: preset.rawValue), preset)
        }
        XCTAssertEqual(SyntheticPreset.ml20m.rawValue, "ml-20m")
        XCTAssertEqual(SyntheticPreset.ml20m.spec.minimumRatingsPerUser, 20)
        XCTAssertEqual(SyntheticPreset.mlLatest.spec.minimumRatingsPerUser, 1)
        XCTAssertEqual(SyntheticPreset.small.spec.ratingScale, .wholeStars)
    }

    func testLargePresetPrefixIsCheap() {
        // The set-up is per entity, not per record: a short prefix of the
        // ml-latest preset has the preset's time span and half stars.
        let raw = SyntheticGenerator(spec: SyntheticPreset.mlLatest.spec, seed: 1).generate(records: 5_000)
        XCTAssertEqual(raw.count, 5_000)
        XCTAssertEqual(raw.timestamps.first, SyntheticPreset.mlLatest.spec.firstTimestamp)
        XCTAssertLessThan(raw.timestamps.last!, SyntheticPreset.mlLatest.spec.firstTimestamp + 86_400 * 10)
        XCTAssertTrue(raw.ratings.contains { $0 != $0.rounded() })
    }

    func testInvalidSpecsAreReportedByField() {
        func field(_ spec: SyntheticSpec) -> String? {
            do { try spec.validate(); return nil } catch let error as SyntheticSpecError {
                XCTAssertFalse(error.description.isEmpty)
                return error.field
            } catch { return "unexpected \(error)" }
        }
        XCTAssertNil(field(SyntheticSpec(records: 1_000, users: 10, items: 50)))
        XCTAssertEqual(field(SyntheticSpec(records: 100, users: 10, items: 50, minimumRatingsPerUser: 20)), "records")
        XCTAssertEqual(field(SyntheticSpec(records: 100, users: 10, items: 500)), "items")
        XCTAssertEqual(field(SyntheticSpec(records: 100, users: 10, items: 50, ratingScale: .wholeStars,
                                           ratingHistogram: [1, 2, 3])), "ratingHistogram")
        XCTAssertEqual(field(SyntheticSpec(records: 100, users: 10, items: 50, firstTimestamp: 10, lastTimestamp: 5)),
                       "lastTimestamp")
        XCTAssertEqual(field(SyntheticSpec(records: 100, users: 10, items: 50, maximumItemID: 20)), "maximumItemID")
        XCTAssertEqual(field(SyntheticSpec(records: 100, users: 10, items: 50, userArrivalPace: 1)), "userArrivalPace")
    }

    // MARK: - Helpers

    private func prefix(_ raw: RawRatings, _ n: Int) -> RawRatings {
        var out = RawRatings(capacity: n)
        for k in 0..<n {
            out.append(user: raw.users[k], item: raw.items[k], rating: raw.ratings[k], timestamp: raw.timestamps[k])
        }
        return out
    }

    private func assertSameRecords(_ a: RawRatings, _ b: RawRatings, _ message: String = "",
                                   file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, message, file: file, line: line)
        XCTAssertTrue(a.users == b.users, "users differ \(message)", file: file, line: line)
        XCTAssertTrue(a.items == b.items, "items differ \(message)", file: file, line: line)
        XCTAssertTrue(a.ratings == b.ratings, "ratings differ \(message)", file: file, line: line)
        XCTAssertTrue(a.timestamps == b.timestamps, "timestamps differ \(message)", file: file, line: line)
    }

    private func countsByID(_ ids: [UInt64]) -> [UInt64: Int] {
        var counts: [UInt64: Int] = [:]
        for id in ids { counts[id, default: 0] += 1 }
        return counts
    }

    private func meansByID(_ ids: [UInt64], _ ratings: [Float]) -> [UInt64: Double] {
        var sums: [UInt64: (Double, Int)] = [:]
        for k in ids.indices {
            let s = sums[ids[k], default: (0, 0)]
            sums[ids[k]] = (s.0 + Double(ratings[k]), s.1 + 1)
        }
        return sums.mapValues { $0.0 / Double($0.1) }
    }

    /// Variance across IDs of each ID's mean rating.
    private func varianceOfMeans(_ ids: [UInt64], _ ratings: [Float]) -> Double {
        let means = Array(meansByID(ids, ratings).values)
        let mean = means.reduce(0, +) / Double(means.count)
        return means.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(means.count)
    }

    private func assertHistogram(_ raw: RawRatings, _ spec: SyntheticSpec, tolerance: Double,
                                 file: StaticString = #filePath, line: UInt = #line) {
        let levels = spec.ratingScale.levels
        var counts = [Int](repeating: 0, count: levels.count)
        for r in raw.ratings {
            guard let k = levels.firstIndex(of: r) else {
                XCTFail("rating \(r) is not a level of \(spec.ratingScale)", file: file, line: line)
                return
            }
            counts[k] += 1
        }
        for (k, target) in spec.ratingFractions.enumerated() {
            let share = Double(counts[k]) / Double(raw.count)
            XCTAssertEqual(share, target, accuracy: tolerance, "share of \(levels[k]) stars", file: file, line: line)
        }
    }
}
