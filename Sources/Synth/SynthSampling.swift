// The pieces of the generator's sequential process: rating budgets that sum
// exactly, a Fenwick tree and the pool of entities with budget left that draw
// in proportion to remaining budget, a filter of the (user, item) pairs
// already drawn, and a clock linear in the record index.
import Data
import Foundation
import Random

extension SyntheticGenerator {
    // MARK: - Budgets

    /// `count` budgets, each at least `minimum` and below about `cap`,
    /// summing exactly to `total`. The excess over the minimum is shared in
    /// proportion to lognormal weights w = exp(spread · z), z standard normal
    /// clipped to ±3, bent smoothly under the cap:
    /// share = room · (1 − exp(−λw / room)), λ chosen so that the shares sum
    /// to the excess. Small shares stay proportional to w; the largest
    /// approach the cap without piling up at it. Cumulative rounding then
    /// makes the sum exact.
    /// Returns the budgets and the z of each entity, in draw order.
    static func budgets(count: Int, total: Int, minimum: Int, cap: Int, spread: Double,
                        random: inout RandomStream) -> (budgets: [Int32], z: [Float]) {
        var z = [Float](repeating: 0, count: count)
        var weights = [Double](repeating: 0, count: count)
        var weightSum = 0.0
        for j in 0..<count {
            let draw = min(3, max(-3, random.normal()))
            z[j] = Float(draw)
            weights[j] = exp(spread * draw)
            weightSum += weights[j]
        }
        let excess = Double(total - count * minimum)
        // Room for at least twice an equal share, so that the bent shares can reach the excess.
        let room = Double(max(cap - minimum, 2 * ((total - count * minimum) / count + 1)))
        func shares(_ lambda: Double) -> (sum: Double, slope: Double) {
            var sum = 0.0, slope = 0.0
            for w in weights {
                let e = exp(-lambda * w / room)
                sum += room * (1 - e)
                slope += w * e
            }
            return (sum, slope)
        }
        // Newton's method from the left: the sum is concave and increasing in λ,
        // so every step stays at or below the root and the iterates rise to it.
        var lambda = excess / weightSum
        for _ in 0..<200 {
            let (sum, slope) = shares(lambda)
            if excess - sum <= 1e-9 * excess || slope <= 0 { break }
            lambda += (excess - sum) / slope
        }
        var shareSum = 0.0
        for j in 0..<count {
            weights[j] = room * (1 - exp(-lambda * weights[j] / room))
            shareSum += weights[j]
        }
        let excessCount = total - count * minimum
        var budgets = [Int32](repeating: 0, count: count)
        var cumulative = 0.0
        var given = 0
        for j in 0..<count {
            cumulative += weights[j]
            let upTo = j == count - 1 ? excessCount
                : min(excessCount, Int((Double(excessCount) * cumulative / max(shareSum, .leastNormalMagnitude)).rounded(.down)))
            let share = max(0, upTo - given)
            budgets[j] = Int32(minimum + share)
            given += share
        }
        return (budgets, z)
    }

    // MARK: - Drawing by remaining budget

    /// A Fenwick tree over entities in arrival order holding each one's
    /// remaining budget: add and draw in O(log n). Its size is a power of two
    /// (entities past `count` hold 0), so the draw is a fixed, branch-free
    /// descent.
    struct BudgetTree {
        private var tree: [Int32]   // 1-based; tree[k] sums the block of length k & -k ending at k
        private let size: Int
        private(set) var total = 0

        init(count: Int) {
            var size = 1
            while size < count { size *= 2 }
            self.size = size
            tree = [Int32](repeating: 0, count: size + 1)
        }

        /// Adds `delta` to entity `index` (0-based).
        @inline(__always)
        mutating func add(_ index: Int, _ delta: Int32) {
            total += Int(delta)
            let size = self.size
            tree.withUnsafeMutableBufferPointer { t in
                var k = index + 1
                while k <= size {
                    t[k] &+= delta
                    k += k & -k
                }
            }
        }

        /// The entity holding budget unit `unit` (0 ≤ unit < total): the
        /// smallest index whose running sum exceeds `unit`. Entities at
        /// `occupied` and beyond must hold nothing: the descent starts at the
        /// block that covers the occupied ones.
        @inline(__always)
        func find(_ unit: Int, occupied: Int) -> Int {
            tree.withUnsafeBufferPointer { t in
                var position = 0
                var rest = Int32(truncatingIfNeeded: unit)
                var step = 1
                while step < occupied { step &<<= 1 }
                while step > 0 {
                    let value = t[position &+ step]   // position + step ≤ size always
                    // All ones when value ≤ rest (take the block), else zero:
                    // arithmetic, not a branch the predictor would miss half the time.
                    let take = ~((rest &- value) >> 31)
                    position &+= step & Int(take)
                    rest &-= value & take
                    step >>= 1
                }
                return position
            }
        }

        /// Draws an entity with probability proportional to its remaining budget.
        @inline(__always)
        func draw(_ random: inout RandomStream, occupied: Int) -> Int {
            find(random.below(total), occupied: occupied)
        }
    }

    /// The entities with budget left, kept in the first `active` slots of a
    /// `BudgetTree` (an exhausted entity's slot takes the last active one), so
    /// draws touch a small, cache-resident part of the tree however many
    /// entities have come and gone.
    struct ActivePool {
        private struct Place {
            var slot: Int32
            var left: Int32   // remaining budget
        }
        private var tree: BudgetTree
        private var entityAt: [Int32]   // slot → entity
        private var places: [Place]     // entity → slot and remaining budget
        private(set) var active = 0

        init(count: Int) {
            tree = BudgetTree(count: count)
            entityAt = [Int32](repeating: 0, count: count)
            places = [Place](repeating: Place(slot: 0, left: 0), count: count)
        }

        /// Adds an arriving entity with its whole budget (> 0).
        @inline(__always)
        mutating func admit(_ entity: Int, budget: Int32) {
            entityAt[active] = Int32(entity)
            places[entity] = Place(slot: Int32(active), left: budget)
            tree.add(active, budget)
            active += 1
        }

        /// An entity drawn in proportion to its remaining budget.
        @inline(__always)
        func drawByBudget(_ random: inout RandomStream) -> Int {
            Int(entityAt[tree.draw(&random, occupied: active)])
        }

        /// An entity drawn uniformly among those with budget left.
        @inline(__always)
        func drawUniformly(_ random: inout RandomStream) -> Int {
            Int(entityAt[random.below(active)])
        }

        /// `entity`'s remaining budget (0 when exhausted or not yet arrived).
        @inline(__always)
        func left(_ entity: Int) -> Int32 { places[entity].left }

        /// Spends one unit of `entity`'s budget.
        @inline(__always)
        mutating func spend(_ entity: Int) {
            let slot = Int(places[entity].slot)
            tree.add(slot, -1)
            places[entity].left -= 1
            if places[entity].left == 0 {
                active -= 1
                if slot != active {
                    let moved = Int(entityAt[active])
                    let left = places[moved].left
                    tree.add(active, -left)
                    tree.add(slot, left)
                    entityAt[slot] = Int32(moved)
                    places[moved].slot = Int32(slot)
                }
            }
        }
    }

    // MARK: - Pairs already drawn

    /// The (user, item) pairs drawn so far, as one blocked Bloom filter per
    /// user: about ten bits per unit of the user's budget, laid out side by
    /// side in user order; a pair sets three bits of one 64-bit word. About 2%
    /// false positives, each of which only costs a redraw; a test is one
    /// memory access, in a region that stays in cache while the user is
    /// active. Laid out from the full budgets, so its answers, and hence every
    /// record, never depend on how many records are asked for.
    struct PairFilter {
        private var words: [UInt64]
        /// The first word of each user's filter, and one past the last user's.
        private let start: [UInt32]
        private let salt: UInt64

        init(userBudgets: [Int32], seed: UInt64) {
            var start = [UInt32](repeating: 0, count: userBudgets.count + 1)
            var next = 0
            for u in userBudgets.indices {
                next += (Int(userBudgets[u]) * 10 + 63) / 64
                start[u + 1] = UInt32(next)
            }
            self.start = start
            words = [UInt64](repeating: 0, count: next)
            salt = splitMix64(seed ^ 0x5041_4952_5346_494C)
        }

        /// The word of (user, item) and its three bits.
        @inline(__always)
        private func slot(_ user: Int, _ item: Int) -> (word: Int, mask: UInt64) {
            let base = Int(start[user])
            let width = UInt64(Int(start[user + 1]) - base)
            let h = splitMix64(UInt64(item) ^ salt ^ (UInt64(user) << 32))
            let mask = (1 as UInt64) << (h & 63) | (1 as UInt64) << ((h >> 6) & 63) | (1 as UInt64) << ((h >> 12) & 63)
            return (base + Int(h.multipliedFullWidth(by: width).high), mask)
        }

        @inline(__always)
        func contains(_ user: Int, _ item: Int) -> Bool {
            let (word, mask) = slot(user, item)
            return words[word] & mask == mask
        }

        @inline(__always)
        mutating func insert(_ user: Int, _ item: Int) {
            let (word, mask) = slot(user, item)
            words[word] |= mask
        }
    }

    // MARK: - Time

    /// first + ⌊span · k / (records − 1)⌋ for k = 0, 1, …, advanced one record
    /// at a time in integer arithmetic (no overflow, no rounding drift).
    struct LinearClock {
        private var now: Int64
        private let step: Int64
        private let remainder: Int64
        private let divisor: Int64
        private var carry: Int64 = 0

        init(first: Int64, last: Int64, records: Int) {
            now = first
            divisor = Int64(max(1, records - 1))
            step = records > 1 ? (last - first) / divisor : 0
            remainder = records > 1 ? (last - first) % divisor : 0
        }

        /// The current record's time; then moves to the next record.
        @inline(__always)
        mutating func tick() -> Int64 {
            let t = now
            now += step
            carry += remainder
            if carry >= divisor {
                carry -= divisor
                now += 1
            }
            return t
        }
    }
}
