// The sharding plan as pure functions (ARCHITECTURE §4), for every world
// size from 1 to 7 (not only powers of two), with no processes.
import Embeddings
import XCTest

final class ShardingTests: XCTestCase {
    static let worldSizes = Array(1...7)
    static let batchSizes = Array(0...64) + [99, 100, 101, 255, 256, 257, 499, 500, 501, 997, 1000, 12345]

    func testSlicesAreContiguousCoverTheBatchAndDifferByAtMostOne() {
        for P in Self.worldSizes {
            for count in Self.batchSizes {
                for start in [0, 1, 500, 99_500] {
                    let slices = (0..<P).map { Sharding(rank: $0, ranks: P).slice(start: start, count: count) }
                    let context = "P=\(P) count=\(count) start=\(start): \(slices)"
                    XCTAssertEqual(slices.first!.lowerBound, start, context)
                    XCTAssertEqual(slices.last!.upperBound, start + count, context)
                    for r in 0..<(P - 1) {
                        XCTAssertEqual(slices[r].upperBound, slices[r + 1].lowerBound, "contiguous: \(context)")
                    }
                    let sizes = slices.map(\.count)
                    XCTAssertEqual(sizes.reduce(0, +), count, context)
                    XCTAssertLessThanOrEqual(sizes.max()! - sizes.min()!, 1, "balanced: \(context)")
                    XCTAssertEqual(Sharding.maxSlice(batch: count, ranks: P), sizes.max()!, context)
                }
            }
        }
    }

    func testOwnerLocalAndGlobalRoundTrip() {
        for P in Self.worldSizes {
            let plans = (0..<P).map { Sharding(rank: $0, ranks: P) }
            for id in 0..<500 {
                let owner = plans[0].owner(of: id)
                XCTAssert((0..<P).contains(owner), "P=\(P) id=\(id): owner \(owner)")
                // Every rank computes the same owner and local index.
                for plan in plans {
                    XCTAssertEqual(plan.owner(of: id), owner)
                    XCTAssertEqual(plan.local(of: id), plans[0].local(of: id))
                }
                XCTAssertEqual(plans[owner].global(of: plans[owner].local(of: id)), id, "P=\(P) id=\(id)")
            }
            for plan in plans {
                for local in 0..<100 {
                    let id = plan.global(of: local)
                    XCTAssertEqual(plan.owner(of: id), plan.rank, "P=\(P) rank=\(plan.rank) local=\(local)")
                    XCTAssertEqual(plan.local(of: id), local)
                }
            }
        }
    }

    func testLocalCountsSumToTheTotalAndMatchOwnership() {
        for P in Self.worldSizes {
            for total in Array(0...50) + [943, 1682, 138_493] {
                let plans = (0..<P).map { Sharding(rank: $0, ranks: P) }
                let counts = plans.map { $0.localCount(of: total) }
                XCTAssertEqual(counts.reduce(0, +), total, "P=\(P) total=\(total): \(counts)")
                if total <= 2000 {
                    for plan in plans {
                        let owned = (0..<total).filter { plan.owner(of: $0) == plan.rank }
                        XCTAssertEqual(plan.localCount(of: total), owned.count, "P=\(P) rank=\(plan.rank) total=\(total)")
                        // Local indices of owned IDs are exactly 0..<localCount.
                        XCTAssertEqual(owned.map { plan.local(of: $0) }, Array(0..<owned.count))
                    }
                }
            }
        }
    }
}
