// The synthetic MovieLens-like stream: a sequential process over rating
// budgets, with ratings from a hidden latent-factor model.
//
// Exact counts. Every user gets a heavy-tailed rating budget of at least the
// minimum and every item one of at least 1, each side summing exactly to
// `records` (`budgets`). Each record spends one unit of an arrived user's
// budget and one of an arrived item's, never of an exhausted one; after
// `records` records every unit is spent, so each user and each item appears
// exactly its budget's number of times, whatever rule picks among them.
//
// Arrivals. Users and items arrive over time in an order correlated with
// their size (the most rated movies are old ones; the last users to join rate
// the least). Users arrive in step with the budget they bring; items at an
// even pace after an initial catalogue. Either way entity j arrives no later
// than record ⌊0.95 · C_j⌋, C_j the budgets of the entities before it: if j
// is the first not yet arrived at record t, the arrived budget C_j exceeds t,
// the units spent, so there is always someone to draw.
//
// Drawing. A record goes to one of the open sessions at random (a session
// that has run its length, or whose user has spent the budget, first makes
// way for a user drawn in proportion to remaining budget), then draws an item
// in proportion to its remaining budget; so users rate in sittings of dozens
// of records, and entities fade as their budgets run down, popular items over
// the whole stream. An item the user has probably
// rated (a per-user Bloom filter) is drawn again, first by budget, then
// uniformly among the items with budget left, so (user, item) pairs rarely
// repeat (under 0.1% in the presets, nearly all in the last 1% of the stream).
//
// Prefix property. The budgets, the arrival schedule, the hidden model, the
// rating thresholds and the pair filter's layout depend on the spec and the
// seed only; record k is the k-th step of one sequential process drawing from
// one random stream. `generate(records: n)` stops that process after n steps,
// so it is exactly the first n records of `generate()`.
//
// Ratings. score = b_u + b_i + ⟨p_u, q_i⟩ + noise·ε, the user's and item's
// terms drawn from `RandomStream(seed, .synthLatent, side, index)`. Stars come
// from thresholds at the target histogram's cumulative shares, placed at the
// empirical quantiles of the score under the stream's own mixture of users and
// items (weighted by budget), so the histogram comes out at the target however
// far the mixture is from a normal distribution.
import Data
import Foundation
import Random

public struct SyntheticGenerator: Sendable {
    public let spec: SyntheticSpec
    public let seed: UInt64

    // Per entity, indexed by arrival rank.
    let userBudgets: [Int32]
    let itemBudgets: [Int32]
    /// Original item IDs, scattered over 1...maximumItemID.
    let itemIDs: [UInt64]
    /// The hidden model, one row per entity: bias, then the vector.
    let userRows: [Float]       // (users, 1 + latentDimension)
    let itemRows: [Float]       // (items, 1 + latentDimension)
    /// Each user's noise: spec.noise times a lognormal multiplier of mean 1.
    let userNoise: [Float]
    /// Score cut points between consecutive rating levels, ascending.
    let thresholds: [Float]
    let levels: [Float]

    /// Draws the budgets and the hidden model of `spec` (which must be valid:
    /// call `spec.validate()` first to report a bad spec as an error).
    public init(spec: SyntheticSpec, seed: UInt64) {
        do { try spec.validate() } catch { preconditionFailure("\(error)") }
        self.spec = spec
        self.seed = seed
        levels = spec.ratingScale.levels

        var userRandom = RandomStream(seed: seed, purpose: .synthUsers)
        var users = Self.budgets(count: spec.users, total: spec.records, minimum: spec.minimumRatingsPerUser,
                                 cap: Int(spec.maximumUserCoverage * Double(spec.items)),
                                 spread: spec.userActivitySpread, random: &userRandom)
        var itemRandom = RandomStream(seed: seed, purpose: .synthItems)
        var items = Self.budgets(count: spec.items, total: spec.records, minimum: 1,
                                 cap: Int(spec.maximumItemCoverage * Double(spec.users)),
                                 spread: spec.itemPopularitySpread, random: &itemRandom)
        var userOrderRandom = RandomStream(seed: seed, purpose: .synthUsers, 2)
        users = Self.arrivalOrder(users, correlation: spec.activeUsersArriveEarly, random: &userOrderRandom)
        var itemOrderRandom = RandomStream(seed: seed, purpose: .synthItems, 2)
        items = Self.arrivalOrder(items, correlation: spec.popularItemsArriveEarly, random: &itemOrderRandom)
        userBudgets = users.budgets
        itemBudgets = items.budgets
        itemIDs = Self.scatteredIDs(count: spec.items, maximum: spec.maximumItemID, seed: seed)

        let model = Self.hiddenModel(spec: spec, seed: seed, itemPopularity: items.z)
        userRows = model.users
        itemRows = model.items
        userNoise = model.noise
        thresholds = Self.calibratedThresholds(
            fractions: spec.ratingFractions, userBudgets: userBudgets, itemBudgets: itemBudgets,
            noise: model.noise.map { ($0 * $0 + Float(spec.userDrift * spec.userDrift)).squareRoot() }, seed: seed,
            signal: { u, i in
                Self.signal(u, i, model.users, model.items, spec.latentDimension)
            })
    }

    // MARK: - The stream

    /// The first `records` records of the stream (all of them by default), in
    /// time order with non-decreasing timestamps. The same (spec, seed) always
    /// gives the same records, and a shorter request is a prefix of a longer one.
    public func generate(records requested: Int? = nil) -> RawRatings {
        let count = requested ?? spec.records
        precondition(count >= 0 && count <= spec.records,
                     "generate(records:) asks for \(count) records; the spec has \(spec.records) (use 0...\(spec.records))")
        var out = RawRatings(capacity: count)
        var userPool = ActivePool(count: spec.users)
        var itemPool = ActivePool(count: spec.items)
        var userArrivals = Arrivals(budgets: userBudgets, initial: spec.initialUsers,
                                    schedule: .inStepWithBudget(pace: spec.userArrivalPace))
        var itemArrivals = Arrivals(budgets: itemBudgets, initial: spec.initialItems,
                                    schedule: .evenlyUntil(record: Int(spec.itemArrivalEnd * Double(spec.records))))
        var seen = spec.maximumItemRedraws > 0 ? PairFilter(userBudgets: userBudgets, seed: seed) : nil
        var clock = LinearClock(first: spec.firstTimestamp, last: spec.lastTimestamp, records: spec.records)
        var random = RandomStream(seed: seed, purpose: .synthRecords)
        let redraws = spec.maximumItemRedraws
        let proportionalRedraws = (redraws + 1) / 2
        let d = spec.latentDimension
        // Open sessions: their users and how many ratings each has left.
        let sessions = spec.concurrentSessions
        var sessionUser = [Int](repeating: -1, count: sessions)
        var sessionLeft = [Int](repeating: 0, count: sessions)
        let sigma = 1.0
        // Each user's mood (NaN until the first rating), an AR(1) over their ratings.
        var mood = [Float](repeating: .nan, count: spec.userDrift > 0 ? spec.users : 0)
        let persistence = Float(spec.userDriftPersistence), drift = Float(spec.userDrift)
        let innovation = drift * (1 - persistence * persistence).squareRoot()

        for t in 0..<count {
            userArrivals.admit(upTo: t, into: &userPool)
            itemArrivals.admit(upTo: t, into: &itemPool)
            let u: Int
            if sessions > 0 {
                let s = random.below(sessions)
                if sessionLeft[s] == 0 || userPool.left(sessionUser[s]) == 0 {
                    sessionUser[s] = userPool.drawByBudget(&random)
                    let length = spec.sessionLength * exp(sigma * random.normal() - sigma * sigma / 2)
                    sessionLeft[s] = max(1, Int(length.rounded()))
                }
                sessionLeft[s] -= 1
                u = sessionUser[s]
            } else {
                u = userPool.drawByBudget(&random)
            }
            var i = itemPool.drawByBudget(&random)
            if seen != nil {
                // A (probably) repeated pair: draw again, by budget for the
                // first half of the redraws, then uniformly among the items
                // with budget left, which finds one the user has not rated
                // even when the user has rated all the popular ones.
                var attempts = 0
                while attempts < redraws, seen!.contains(u, i) {
                    attempts += 1
                    i = attempts <= proportionalRedraws ? itemPool.drawByBudget(&random) : itemPool.drawUniformly(&random)
                }
                seen!.insert(u, i)
            }
            userPool.spend(u)
            itemPool.spend(i)

            var score = Self.signal(u, i, userRows, itemRows, d)
                + userNoise[u] * Float(random.normal())
            if drift > 0 {
                mood[u] = mood[u].isNaN ? drift * Float(random.normal())
                                        : persistence * mood[u] + innovation * Float(random.normal())
                score += mood[u]
            }
            out.append(user: UInt64(u + 1), item: itemIDs[i], rating: level(of: score), timestamp: clock.tick())
        }
        return out
    }

    @inline(__always)
    func level(of score: Float) -> Float {
        var k = 0
        while k < thresholds.count, score >= thresholds[k] { k += 1 }
        return levels[k]
    }

    /// b_u + b_i + ⟨p_u, q_i⟩, without the noise.
    @inline(__always)
    static func signal(_ u: Int, _ i: Int, _ userRows: [Float], _ itemRows: [Float], _ d: Int) -> Float {
        userRows.withUnsafeBufferPointer { p in
            itemRows.withUnsafeBufferPointer { q in
                let pu = p.baseAddress! + u * (d + 1), qi = q.baseAddress! + i * (d + 1)
                var score = pu[0] + qi[0]
                for k in 1...d { score += pu[k] * qi[k] }
                return score
            }
        }
    }

    // MARK: - Arrivals

    /// Admits entities into their pool as the stream reaches their arrival
    /// record. Every schedule keeps entity j's arrival at or before
    /// ⌊0.95 · C_j⌋ (C_j the budgets of the entities before it), so the arrived
    /// budget always exceeds the records made: the pool is never empty.
    struct Arrivals {
        enum Schedule {
            /// Entity j ≥ initial at ⌊pace · (C_j − C_initial)⌋.
            case inStepWithBudget(pace: Double)
            /// Entity j ≥ initial at record·(j − initial + 1)/(count − initial),
            /// or earlier if the budget requires it.
            case evenlyUntil(record: Int)
        }

        let budgets: [Int32]
        let initial: Int
        let schedule: Schedule
        private var next = 0
        private var nextAt = 0
        /// Budgets of the arrived entities, all and beyond the initial ones.
        private var arrived = 0
        private var later = 0
        private static let margin = 0.95

        init(budgets: [Int32], initial: Int, schedule: Schedule) {
            self.budgets = budgets
            self.initial = initial
            self.schedule = schedule
        }

        @inline(__always)
        mutating func admit(upTo t: Int, into pool: inout ActivePool) {
            while next < budgets.count, nextAt <= t {
                pool.admit(next, budget: budgets[next])
                arrived += Int(budgets[next])
                if next >= initial { later += Int(budgets[next]) }
                next += 1
                nextAt = next <= initial ? 0 : arrivalRecord(of: next)
            }
        }

        private func arrivalRecord(of j: Int) -> Int {
            let bound = Int((Self.margin * Double(arrived)).rounded(.down))
            switch schedule {
            case .inStepWithBudget(let pace):
                return min(bound, Int((pace * Double(later)).rounded(.down)))
            case .evenlyUntil(let record):
                let even = Int((Double(record) * Double(j - initial + 1) / Double(budgets.count - initial)).rounded(.down))
                return min(bound, even)
            }
        }
    }

    // MARK: - Set-up

    /// Entities reordered by a key correlated (by `correlation`) with their z:
    /// the order in which they arrive.
    static func arrivalOrder(_ drawn: (budgets: [Int32], z: [Float]), correlation c: Double,
                             random: inout RandomStream) -> (budgets: [Int32], z: [Float]) {
        let rest = (1 - c * c).squareRoot()
        let keys = drawn.z.map { c * Double($0) + rest * random.normal() }
        let order = keys.indices.sorted { keys[$0] > keys[$1] || (keys[$0] == keys[$1] && $0 < $1) }
        return (order.map { drawn.budgets[$0] }, order.map { drawn.z[$0] })
    }

    /// `count` distinct IDs drawn from 1...maximum, by a sparse Fisher–Yates
    /// shuffle (memory in proportion to `count`, not `maximum`).
    static func scatteredIDs(count: Int, maximum: UInt64, seed: UInt64) -> [UInt64] {
        var random = RandomStream(seed: seed, purpose: .synthItems, 1)
        var moved: [Int: Int] = [:]
        moved.reserveCapacity(count)
        let range = Int(maximum)
        var ids = [UInt64](repeating: 0, count: count)
        for j in 0..<count {
            let k = j + random.below(range - j)
            let drawn = moved[k] ?? k
            moved[k] = moved[j] ?? j
            ids[j] = UInt64(drawn) + 1
        }
        return ids
    }

    struct HiddenModel {
        var users: [Float]   // (users, 1 + d): bias, vector
        var items: [Float]   // (items, 1 + d)
        var noise: [Float]   // (users): the standard deviation of each user's noise
    }

    /// Biases and vectors of every user and item, each from its own keyed
    /// random stream. Vector entries have standard deviation
    /// √interactionScale / d^¼, so ⟨p_u, q_i⟩ has standard deviation interactionScale.
    static func hiddenModel(spec: SyntheticSpec, seed: UInt64, itemPopularity: [Float]) -> HiddenModel {
        let d = spec.latentDimension
        let entry = spec.interactionScale.squareRoot() / Double(d).squareRoot().squareRoot()
        let rho = spec.popularityRatingCorrelation
        let rest = (1 - rho * rho).squareRoot()
        var model = HiddenModel(users: [Float](repeating: 0, count: spec.users * (d + 1)),
                                items: [Float](repeating: 0, count: spec.items * (d + 1)),
                                noise: [Float](repeating: Float(spec.noise), count: spec.users))
        let sigma = spec.userNoiseSpread
        if sigma > 0 {
            for u in 0..<spec.users {
                var random = RandomStream(seed: seed, purpose: .synthLatent, 3, UInt64(u))
                model.noise[u] = Float(spec.noise * exp(sigma * random.normal() - sigma * sigma / 2))
            }
        }
        for u in 0..<spec.users {
            var random = RandomStream(seed: seed, purpose: .synthLatent, 0, UInt64(u))
            model.users[u * (d + 1)] = Float(spec.userBiasScale * random.normal())
            for k in 1...d { model.users[u * (d + 1) + k] = Float(entry * random.normal()) }
        }
        for i in 0..<spec.items {
            var random = RandomStream(seed: seed, purpose: .synthLatent, 1, UInt64(i))
            let own = random.normal()
            model.items[i * (d + 1)] = Float(spec.itemBiasScale * (rho * Double(itemPopularity[i]) + rest * own))
            for k in 1...d { model.items[i * (d + 1) + k] = Float(entry * random.normal()) }
        }
        return model
    }

    /// Cut points at the target cumulative shares, taken from 2^18 scores
    /// drawn as the stream draws them: user and item in proportion to budget,
    /// plus noise.
    static func calibratedThresholds(fractions: [Double], userBudgets: [Int32], itemBudgets: [Int32],
                                     noise: [Float], seed: UInt64,
                                     signal: (Int, Int) -> Float) -> [Float] {
        func runningSums(_ budgets: [Int32]) -> [Int] {
            var sums = [Int](repeating: 0, count: budgets.count)
            var s = 0
            for j in budgets.indices { s += Int(budgets[j]); sums[j] = s }
            return sums
        }
        /// The first index whose running sum exceeds `unit`.
        func entity(_ unit: Int, _ sums: [Int]) -> Int {
            var low = 0, high = sums.count - 1
            while low < high {
                let mid = (low + high) / 2
                if sums[mid] > unit { high = mid } else { low = mid + 1 }
            }
            return low
        }
        let userSums = runningSums(userBudgets), itemSums = runningSums(itemBudgets)
        let total = userSums.last!
        var random = RandomStream(seed: seed, purpose: .synthLatent, 2)
        let samples = 1 << 18
        var scores = [Float](repeating: 0, count: samples)
        for s in 0..<samples {
            let u = entity(random.below(total), userSums)
            let i = entity(random.below(total), itemSums)
            scores[s] = signal(u, i) + noise[u] * Float(random.normal())
        }
        scores.sort()

        var cuts: [Float] = []
        var cumulative = 0.0
        for f in fractions.dropLast() {
            cumulative += f
            let position = cumulative * Double(samples)
            if position <= 0 {
                cuts.append(-.infinity)
            } else if position >= Double(samples) {
                cuts.append(.infinity)
            } else {
                let k = max(1, Int(position.rounded()))
                cuts.append(k >= samples ? .infinity : (scores[k - 1] + scores[k]) / 2)
            }
        }
        return cuts
    }
}
