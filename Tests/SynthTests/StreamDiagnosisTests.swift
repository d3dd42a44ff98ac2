// StreamDiagnosis on streams whose answers are known (ratings that are pure
// biases, pure noise, a low-rank interaction; users in one sitting each;
// ratings that alternate or drift), the generator's sessions and moods seen
// through it, the small preset held to real ml-100k's figures, and
// `esapn inspect --diagnose`.
import Data
import Foundation
import Random
import Synth
import TestSupport
import XCTest

final class StreamDiagnosisTests: XCTestCase {
    /// The diagnosis of records given as (user, item, rating), in stream order.
    func diagnose(_ records: [(Int, Int, Float)]) -> StreamDiagnosis {
        let users = records.map { UInt32($0.0) }, items = records.map { UInt32($0.1) }, ratings = records.map(\.2)
        var seenUsers = [Int: UInt32](), seenItems = [Int: UInt32]()
        var userFrequencies: [UInt32] = [], itemFrequencies: [UInt32] = []
        for (u, i, _) in records {
            seenUsers[u, default: 0] += 1; userFrequencies.append(seenUsers[u]!)
            seenItems[i, default: 0] += 1; itemFrequencies.append(seenItems[i]!)
        }
        return users.withUnsafeBufferPointer { u in
            items.withUnsafeBufferPointer { i in
                ratings.withUnsafeBufferPointer { r in
                    userFrequencies.withUnsafeBufferPointer { uf in
                        itemFrequencies.withUnsafeBufferPointer { itf in
                            StreamDiagnosis(users: u, items: i, ratings: r, userFrequencies: uf, itemFrequencies: itf,
                                            userCount: (users.max().map(Int.init) ?? -1) + 1,
                                            itemCount: (items.max().map(Int.init) ?? -1) + 1)
                        }
                    }
                }
            }
        }
    }

    /// 60,000 records of 300 users and 400 items drawn at random; the rating is `rating(u, i, random)`.
    func randomStream(_ rating: (Int, Int, inout RandomStream) -> Double) -> [(Int, Int, Float)] {
        var random = RandomStream(seed: 5, purpose: .test)
        return (0..<60_000).map { _ in
            let u = random.below(300), i = random.below(400)
            return (u, i, Float(rating(u, i, &random)))
        }
    }

    func testBiasesExplainRatingsThatAreBiases() {
        var random = RandomStream(seed: 1, purpose: .test)
        let bu = (0..<300).map { _ in random.normal() }, bi = (0..<400).map { _ in random.normal() }
        let d = diagnose(randomStream { u, i, _ in 3 + 0.5 * bu[u] + 0.5 * bi[i] })
        XCTAssertGreaterThan(d.explainedByBiases, 0.95)
        XCTAssertEqual(d.explainedByUserBiases, 0.5, accuracy: 0.06)
        XCTAssertEqual(d.explainedByItemBiases, 0.5, accuracy: 0.06)
        XCTAssertLessThan(abs(d.addedByInteraction), 0.03)
        XCTAssertEqual(d.userRatingAutocorrelation, 0, accuracy: 0.03, "items are drawn independently")
    }

    func testNothingExplainsNoise() {
        let d = diagnose(randomStream { _, _, random in 3 + random.normal() })
        XCTAssertEqual(d.heldOutVariance, 1, accuracy: 0.05)
        XCTAssertLessThan(abs(d.explainedByBiases), 0.03)
        XCTAssertLessThan(d.addedByInteraction, 0.01)
        XCTAssertEqual(d.accuracyBiases, d.accuracyMajority, accuracy: 0.03)
    }

    func testTheInteractionFindsALowRankSignal() {
        var random = RandomStream(seed: 2, purpose: .test)
        let p = (0..<300).map { _ in (random.normal(), random.normal()) }
        let q = (0..<400).map { _ in (random.normal(), random.normal()) }
        let d = diagnose(randomStream { u, i, random in
            3 + p[u].0 * q[i].0 + p[u].1 * q[i].1 + 0.3 * random.normal()
        })
        XCTAssertLessThan(d.explainedByBiases, 0.1)
        XCTAssertGreaterThan(d.addedByInteraction, 0.7)
        XCTAssertGreaterThan(d.accuracyInteraction, d.accuracyBiases + 0.2)
    }

    func testSittingsArrivalsAndDrift() {
        // 10 users, each rating 1,000 items in one sitting of two batches, the
        // first five alternating 1 and 5 stars, the last five rising slowly.
        var records: [(Int, Int, Float)] = []
        for u in 0..<10 {
            for k in 0..<1_000 {
                let rating: Float = u < 5 ? (k % 2 == 0 ? 1 : 5) : 1 + 4 * Float(k) / 999
                records.append((u, k, rating))
            }
        }
        let d = diagnose(records)
        XCTAssertEqual(d.userBatchesMedian, 2)
        XCTAssertEqual(d.userBatchesP90, 2)
        XCTAssertEqual(d.userRecordsPerBatch, 500, accuracy: 1e-9)
        XCTAssertEqual(d.itemBatchesMedian, 10)
        XCTAssertEqual(d.itemRecordsPerBatch, 1, accuracy: 1e-9)
        XCTAssertEqual(d.userArrivalsByFifth, [0.2, 0.2, 0.2, 0.2, 0.2])
        XCTAssertEqual(d.itemArrivalsByFifth, [1, 0, 0, 0, 0])
        XCTAssertEqual(d.lastFifthNewUserRecords, 0.01, accuracy: 1e-9, "the first 10 of each of the last two users' 1,000")
        // Alternating users correlate by −1 at lag 1, rising ones by nearly +1.
        XCTAssertEqual(d.userRatingAutocorrelation, 0, accuracy: 0.01)
        XCTAssertGreaterThan(d.userDriftSpread, 1.5, "half the users move by 3.2 stars, half by 0")
    }

    // MARK: - The generator seen through the diagnosis

    func diagnose(_ spec: SyntheticSpec, seed: UInt64) throws -> StreamDiagnosis {
        let raw = SyntheticGenerator(spec: spec, seed: seed).generate()
        let path = try TestPaths.temporaryDirectory(self).appendingPathComponent("s.stream").path
        try StreamBuilder.write(raw, order: .time, seed: 0, source: "test", to: path)
        return StreamDiagnosis(try StreamFile(path: path))
    }

    /// Sessions make users rate in few batches; moods make a user's ratings correlate in time.
    func testSessionsAndMoodsDoWhatTheySay() throws {
        var plain = SyntheticPreset.small.spec
        plain.concurrentSessions = 0
        plain.userDrift = 0
        let without = try diagnose(plain, seed: 3)
        let with = try diagnose(SyntheticPreset.small.spec, seed: 3)
        XCTAssertGreaterThanOrEqual(without.userBatchesMedian, 15)
        XCTAssertLessThanOrEqual(with.userBatchesMedian, 4)
        XCTAssertGreaterThan(with.userRecordsPerBatch, 5 * without.userRecordsPerBatch)
        XCTAssertEqual(without.userRatingAutocorrelation, 0, accuracy: 0.03)
        XCTAssertGreaterThan(with.userRatingAutocorrelation, 0.1)
    }

    /// The stand-in stays calibrated: the small preset's diagnosis (a seed not
    /// used in tuning) is near real ml-100k's on what the generator was tuned on.
    func testSmallPresetIsNearRealML100K() throws {
        let d = try diagnose(SyntheticPreset.small.spec, seed: 17)
        let real = StreamDiagnosis.ml100k
        XCTAssertEqual(d.explainedByBiases, real.explainedByBiases, accuracy: 0.04)
        XCTAssertEqual(d.addedByInteraction, real.addedByInteraction, accuracy: 0.03)
        XCTAssertEqual(d.accuracyBiases, real.accuracyBiases, accuracy: 0.02)
        XCTAssertEqual(d.userPositiveShareSpread, real.userPositiveShareSpread, accuracy: 0.04)
        XCTAssertEqual(d.userNoiseSpread, real.userNoiseSpread, accuracy: 0.04)
        XCTAssertEqual(d.userRatingAutocorrelation, real.userRatingAutocorrelation, accuracy: 0.04)
        XCTAssertLessThanOrEqual(abs(d.userBatchesMedian - real.userBatchesMedian), 1)
        XCTAssertLessThanOrEqual(abs(d.userBatchesP90 - real.userBatchesP90), 2)
        XCTAssertEqual(d.itemArrivalsByFifth[0], real.itemArrivalsByFifth[0], accuracy: 0.05)
        XCTAssertEqual(d.lastFifthNewUserRecords, real.lastFifthNewUserRecords, accuracy: 0.03)
    }

    // MARK: - The command

    func testInspectDiagnosePrintsTheTableBesideRealML100K() throws {
        let dir = try TestPaths.temporaryDirectory(self)
        let stream = dir.appendingPathComponent("small.stream").path
        XCTAssertEqual(try runEsapn(["synth", "--preset", "small", "--records", "20000", "--seed", "1",
                                     "--output", stream]).status, 0)
        var result = try runEsapn(["inspect", stream, "--diagnose"])
        XCTAssertEqual(result.status, 0, result.report)
        XCTAssertTrue(result.stdout.contains("| statistic | small.stream | real ml-100k |"), result.stdout)
        XCTAssertTrue(result.stdout.contains("| R² user + item biases |"), result.stdout)
        XCTAssertTrue(result.stdout.contains("| batches a user is in: median / p90 |"), result.stdout)

        result = try runEsapn(["inspect", stream, "--diagnose", "--beside", stream, "--json"])
        XCTAssertEqual(result.status, 0, result.report)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(Set(json.keys), ["small.stream", "real ml-100k"])

        result = try runEsapn(["inspect", stream, "--beside", stream])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("--beside goes with --diagnose"), result.stderr)
    }
}
