// The streaming trainer in-process, on one rank (LocalCommunicator), on a
// small synthetic stream (3000 records, 60 users, 90 items, 6 batches of 500):
// prequential scoring (each batch scored before its update), metrics that add
// up, the test part, the frequency breakdown, and learning.
import Comm
import Data
import Embeddings
import Foundation
import Kernels
import Model
import TestSupport
import Training
import XCTest

final class TrainerTests: XCTestCase {
    func streamPath() throws -> String {
        let path = try TestPaths.temporaryDirectory(self).appendingPathComponent("synthetic.stream").path
        try SyntheticStream.write(to: path)
        return path
    }

    func trainer(_ path: String, _ configure: (inout TrainConfig) -> Void = { _ in }) throws -> StreamTrainer {
        var config = TrainConfig()
        config.seed = 7
        configure(&config)
        return try StreamTrainer(config: config, stream: StreamFile(path: path), comm: LocalCommunicator())
    }

    static func mean(_ x: [Float]) -> Double { x.reduce(0.0) { $0 + Double($1) } / Double(x.count) }

    /// Batch 0's recorded loss is the forward with the initial parameters, and
    /// batch 1's is the forward with the parameters after exactly one update:
    /// the loss is recorded before the update. The same batch after its update
    /// scores lower, so recording after the update would be caught.
    func testEachBatchIsScoredBeforeItsUpdate() throws {
        let path = try streamPath()
        for task in Task.allCases {
            let fresh = try trainer(path) { $0.task = task }
            let initial = fresh.forwardLosses(batch: 0, readStep: 0)
            // The loss definition, checked on that forward (ARCHITECTURE §1).
            for k in 0..<500 {
                let rating = fresh.stream.ratings[k]
                let expected: Double
                switch task {
                case .binary:
                    let p = 1 / (1 + exp(-Double(fresh.head.logits[k])))
                    expected = (p - Double(Task.binaryLabel(rating))) * (p - Double(Task.binaryLabel(rating)))
                case .multiclass:
                    let z = (0..<5).map { Double(fresh.head.logits[k * 5 + $0]) }
                    let top = z.max()!
                    expected = log(z.reduce(0) { $0 + exp($1 - top) }) + top - z[Int(Task.classLabel(rating))]
                }
                XCTAssertEqual(Double(initial[k]), expected, accuracy: 1e-5, "\(task) record \(k)")
            }
            let initialCorrect = (0..<500).filter { fresh.head.correct[$0] }.count

            let twoBatches = try trainer(path) { $0.task = task; $0.limit = 1000 }
            try twoBatches.run()
            XCTAssertEqual(twoBatches.batches, 2)
            let recorded0 = twoBatches.metrics.batch(0), recorded1 = twoBatches.metrics.batch(1)
            XCTAssertEqual(recorded0.records, 500)
            XCTAssertEqual(recorded0.loss, Self.mean(initial), accuracy: 1e-12, "\(task): batch 0 scored with the initial parameters")
            XCTAssertEqual(recorded0.accuracy, Double(initialCorrect) / 500, accuracy: 1e-12)

            let oneBatch = try trainer(path) { $0.task = task; $0.limit = 500 }
            try oneBatch.run()
            let afterUpdate0 = Self.mean(oneBatch.forwardLosses(batch: 0, readStep: 1))
            let afterUpdate1 = Self.mean(oneBatch.forwardLosses(batch: 1, readStep: 1))
            XCTAssertEqual(recorded1.loss, afterUpdate1, accuracy: 1e-12, "\(task): batch 1 scored after exactly one update")
            XCTAssertLessThan(afterUpdate0, Self.mean(initial) - 1e-3,
                              "\(task): training on batch 0 lowers its loss, so scoring after the update would differ")
        }
    }

    func testPerBatchMetricsAddUpToOverallAndTheTestPartIsTheLastRecords() throws {
        let path = try streamPath()
        let t = try trainer(path) { $0.testLast = 1000 }
        try t.run()
        XCTAssertEqual(t.batches, 6)
        let m = t.metrics
        let perBatch = (0..<6).map { m.batch($0) }
        XCTAssertEqual(perBatch.map(\.records), [500, 500, 500, 500, 500, 500])
        XCTAssertEqual(m.overall.records, 3000)
        assertClose(perBatch.reduce(0) { $0 + $1.loss * Double($1.records) }, m.overall.loss * 3000, rtol: 1e-12)
        assertClose(perBatch.reduce(0) { $0 + $1.accuracy * Double($1.records) }, m.overall.accuracy * 3000, rtol: 1e-12)
        // --test-last 1000 = batches 4 and 5 exactly.
        XCTAssertEqual(m.test.records, 1000)
        assertClose(perBatch[4...].reduce(0) { $0 + $1.loss * 500 }, m.test.loss * 1000, rtol: 1e-12)
        assertClose(perBatch[4...].reduce(0) { $0 + $1.accuracy * 500 }, m.test.accuracy * 1000, rtol: 1e-12)

        // The test part does not change training; its size is what was asked (default: the last 25%).
        for (testLast, expected) in [(700, 700), (nil, 750), (3000, 3000), (1, 1)] as [(Int?, Int)] {
            let other = try trainer(path) { $0.testLast = testLast }
            try other.run()
            XCTAssertEqual(other.metrics.test.records, expected, "--test-last \(testLast.map(String.init) ?? "default")")
            XCTAssertEqual(other.metrics.overall, m.overall, "same training whatever the test part")
            let correct = other.metrics.test.accuracy * Double(expected)
            XCTAssertEqual(correct, correct.rounded(), accuracy: 1e-9, "a whole number of correct records")
        }
    }

    func testByFrequencyCountsTheRecordsOfEachFrequency() throws {
        let path = try streamPath()
        let t = try trainer(path)
        try t.run()
        let stream = try StreamFile(path: path)
        for (side, column) in [(EmbeddingSide.user, stream.userFrequencies), (.item, stream.itemFrequencies)] {
            var counts = [Int](repeating: 0, count: Metrics.frequencies + 1)
            for f in column where f <= UInt32(Metrics.frequencies) { counts[Int(f)] += 1 }
            XCTAssertGreaterThan(column.max()!, 100, "the stream has IDs beyond frequency 100")
            var records = 0, lossSum = 0.0
            for f in 1...Metrics.frequencies {
                let (metric, width) = t.metrics.byFrequency(side: side, frequency: f)
                XCTAssertEqual(metric.records, counts[f], "side \(side) frequency \(f)")
                XCTAssertEqual(width, metric.records > 0 ? 128 : 0, "FIXED rows are 128 wide")
                records += metric.records
                lossSum += metric.loss * Double(metric.records)
            }
            XCTAssertEqual(records, column.filter { $0 <= 100 }.count)
            XCTAssertLessThanOrEqual(lossSum, t.metrics.overall.loss * 3000 + 1e-9)
        }
        // Frequency 1 counts each ID's first record: one per ID.
        XCTAssertEqual(t.metrics.byFrequency(side: .user, frequency: 1).metric.records, stream.header.users)
        XCTAssertEqual(t.metrics.byFrequency(side: .item, frequency: 1).metric.records, stream.header.items)
    }

    /// There is signal in the synthetic ratings: the loss falls along the stream.
    func testTheModelLearnsTheSignal() throws {
        let path = try streamPath()
        for task in Task.allCases {
            let t = try trainer(path) { $0.task = task }
            try t.run()
            let first = t.metrics.batch(0), last = [t.metrics.batch(4), t.metrics.batch(5)]
            let lastLoss = (last[0].loss + last[1].loss) / 2, lastAccuracy = (last[0].accuracy + last[1].accuracy) / 2
            print("\(task): batch loss \(first.loss) → \(lastLoss); accuracy \(first.accuracy) → \(lastAccuracy)")
            XCTAssertLessThan(lastLoss, 0.95 * first.loss, "\(task): the loss falls over the stream")
            XCTAssertGreaterThan(lastAccuracy, first.accuracy + 0.05, "\(task): the accuracy rises over the stream")
        }
    }

    func testEveryIDGetsA128WideRowAndTheMemoryIsExact() throws {
        let path = try streamPath()
        let t = try trainer(path)
        try t.run()
        let stream = try StreamFile(path: path)
        let users = t.gatherSizes(side: .user), items = t.gatherSizes(side: .item)
        XCTAssertEqual(users.count, stream.header.users)
        XCTAssertEqual(items.count, stream.header.items)
        XCTAssert(users.allSatisfy { $0 == 0 } && items.allSatisfy { $0 == 0 }, "every ID holds a row of FIXED's one width")
        let memory = t.gatherMemory()
        XCTAssertEqual(memory.count, 1)
        let ids = stream.header.users + stream.header.items
        XCTAssertEqual(memory[0].rows_by_size, ["128": ids])
        XCTAssertEqual(memory[0].value_floats, 128 * ids)
        // Reserved: one mapping each for the rows (values + two moments), the slots' owners, the
        // index and the entries, page-rounded. Resident: every ID's slot (12 bytes a float + its
        // 4-byte owner), its 28-byte entry and its 4-byte index.
        func pages(_ bytes: Int) -> Int { (bytes + 4095) / 4096 * 4096 }
        var reserved = 0, resident = 0
        for n in [stream.header.users, stream.header.items] {
            reserved += pages(n * 128 * 12) + pages(n * 4) + pages(n * 4) + pages(n * 28)
            resident += n * (128 * 12 + 4) + n * 28 + n * 4
        }
        XCTAssertEqual(memory[0].reserved_bytes, reserved)
        XCTAssertEqual(memory[0].resident_bytes, resident)
    }
}
