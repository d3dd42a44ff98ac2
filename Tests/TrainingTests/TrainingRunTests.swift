// The training run as a library (Training/Run/TrainingRun.swift), with no CLI:
// train → stop → resume gives the uninterrupted run; and a batch whose
// gradients are not finite stops every rank before anything is stepped.
import Comm
import Data
import Embeddings
import Foundation
import Kernels
import TestSupport
import Training
import XCTest

final class TrainingRunTests: XCTestCase {
    func testTrainStopAndResumeThroughTheRunTypeGiveTheUninterruptedRun() throws {
        let dir = try TestPaths.temporaryDirectory(self)
        let stream = dir.appendingPathComponent("s.stream").path
        try SyntheticStream.write(to: stream)
        var config = TrainConfig()
        config.model = .esapn
        config.batchSize = 100  // 30 batches
        var plain = RunOptions(data: stream, output: dir.appendingPathComponent("full").path)
        plain.progress = .off
        let full = try TrainingRun(config: config, options: plain, comm: LocalCommunicator()).run()

        var stopping = plain
        stopping.output = dir.appendingPathComponent("stopped").path
        stopping.checkpointDirectory = dir.appendingPathComponent("checkpoints").path
        stopping.checkpointEvery = 1000
        stopping.stopRequested = { $0 >= 12 }  // agreed at the next exchange: after batch 16
        XCTAssertThrowsError(try TrainingRun(config: config, options: stopping, comm: LocalCommunicator()).run()) { error in
            let failure = error as? RunFailure
            XCTAssertEqual(failure?.status, StopSignal.exitCode, "\(error)")
            XCTAssertTrue("\(error)".contains("stopped by a signal after batch 16 of 30"), "\(error)")
            XCTAssertEqual(failure?.speaks, true)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: stopping.output + "/results.json"), "a stopped run writes no results")

        var resumed = plain
        resumed.output = dir.appendingPathComponent("resumed").path
        resumed.resume = stopping.checkpointDirectory
        let run = try TrainingRun(config: config, options: resumed, comm: LocalCommunicator())
        XCTAssertEqual(run.trainer.step, 16, "resumed after the checkpoint the stop wrote")
        let second = try run.run()
        XCTAssertEqual(second.results.test, full.results.test)
        XCTAssertEqual(second.results.overall, full.results.overall)
        XCTAssertEqual(second.results.sizes, full.results.sizes)
        for file in ["batches.csv", "by_frequency.csv"] {
            let a = try Data(contentsOf: URL(fileURLWithPath: plain.output + "/" + file))
            let b = try Data(contentsOf: URL(fileURLWithPath: resumed.output + "/" + file))
            XCTAssertEqual(a, b, "\(file) of the resumed run is the uninterrupted run's")
        }
    }

    /// Every row a rank owns: local ID → (width index, last step, values, m, v).
    typealias Rows = [Int: (size: Int, last: Int, values: [Float], m: [Float], v: [Float])]
    static func rows(_ store: RowStore) -> Rows {
        var rows = Rows()
        store.forEachRow { local, size, values, m, v, last in
            let w = store.widths[size]
            rows[local] = (size, last, Array(UnsafeBufferPointer(start: values, count: w)),
                           Array(UnsafeBufferPointer(start: m, count: w)), Array(UnsafeBufferPointer(start: v, count: w)))
        }
        return rows
    }

    /// A NaN planted in a row that rank 1 receives in batch 5: both ranks stop
    /// there with a NumericalFault, and every owner's rows and moments, and the
    /// dense weights, are bit for bit what they were after batch 4 (lazy Adam,
    /// so that reading a row does not catch it up). Stepping the rows before
    /// the check, as the trainer once did, fails it.
    func testANonFiniteBatchStepsNothingOnAnyOwner() throws {
        let path = try TestPaths.temporaryDirectory(self).appendingPathComponent("s.stream").path
        try SyntheticStream.write(to: path)
        var config = TrainConfig()
        config.model = .fixed
        config.batchSize = 100
        config.rowOptimizer = .lazyAdam
        let fixed = config
        let checked = Locked([Int: String]())
        ThreadedWorld(size: 2).run { comm in
            do {
                let trainer = try StreamTrainer(config: fixed, stream: StreamFile(path: path), comm: comm)
                trainer.exchange.plant(.nanAtBatch5)
                var before: [Rows] = [], weights: [Float] = []
                do {
                    try trainer.run { done in
                        if done == 5 {
                            before = trainer.tables.map { Self.rows($0.store) }
                            weights = Array(trainer.arena.values)
                        }
                    }
                    checked.update { $0[comm.rank] = "no fault" }
                    return
                } catch let fault as NumericalFault {
                    XCTAssertEqual(fault.batch, 5)
                    XCTAssertTrue(fault.description.contains("user ") && fault.description.contains("'s row"), fault.description)
                }
                XCTAssertEqual(trainer.step, 5, "rank \(comm.rank): batch 5 did not complete")
                var differ = 0, compared = 0
                for (s, table) in trainer.tables.enumerated() {
                    let after = Self.rows(table.store)
                    for (local, row) in before[s] {
                        compared += 1
                        guard let now = after[local] else { differ += 1; continue }
                        // (A row read in batch 5 has its last step brought to 5, the step it was read at: bookkeeping, not a step.)
                        if now.size != row.size || now.values != row.values || now.m != row.m || now.v != row.v {
                            differ += 1
                        }
                    }
                }
                let sameWeights = Array(trainer.arena.values) == weights
                checked.update { $0[comm.rank] = "compared \(compared > 0), rows differ \(differ), weights same \(sameWeights)" }
            } catch {
                checked.update { $0[comm.rank] = "error \(error)" }
            }
        }
        for r in 0..<2 {
            XCTAssertEqual(checked.value[r], "compared true, rows differ 0, weights same true", "rank \(r)")
        }
    }
}
