// `esapn plan`: how a profiled run would scale across machines (the α–β model
// of Analysis/ScalingModel.swift). The compute comes from a run made with
// `esapn train --profile` on this machine; the links from a preset network or
// from `esapn bench-comm --output FILE`; sgemm's rate on a slice of B/P rows
// is measured here, now. `--compare` sets measured runs beside the model.
import Analysis
import ArgumentParser
import Foundation
import Kernels
import Training

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Predict throughput on P ranks across machines from a profiled run (α–β model of the collectives).",
        discussion: """
        Make the profile first, e.g.  launch/local.sh 2 --data S --model esapn --profile --output RUN
        then:  esapn plan --run RUN --network 25GbE --ranks 1,2,4,8,16,32 --batch 500,2000
        Networks: \(LinkCost.presets.map(\.name).joined(separator: ", ")), all, or --calibration FILE from esapn bench-comm.
        Memory at scale instead (any finished run, no profile needed):
          esapn plan --run RUN --ids 100M,1B --ranks 8,64,512 --shard-budget 2048
        prints each shard's embedding memory at that many IDs from the run's bytes per ID, and the shards a budget needs.
        """)

    @Option(name: .customLong("run"), help: "A run folder (or its results.json) made with `esapn train --profile`.")
    var runFolder: String

    @Option(help: "A preset network, or 'all'.")
    var network = "all"

    @Option(help: "Links measured by `esapn bench-comm --output FILE` (replaces --network).")
    var calibration: String?

    @Option(help: "Rank counts to predict, comma-separated.")
    var ranks = "1,2,4,8,16,32,64"

    @Option(help: "Global batch sizes, comma-separated (default: the run's).")
    var batch: String?

    @Option(help: "All ranks share one machine of this many cores (to check the model on this machine); default: one machine per rank.")
    var sharedCores: Int?

    @Option(help: "A run folder measured on the links of --calibration, to set beside the prediction (repeatable).")
    var compare: [String] = []

    @Option(help: "Memory at scale: numbers of IDs, comma-separated (100M, 1B, or plain numbers); prints memory per shard instead of throughput.")
    var ids: String?

    @Option(help: "With --ids: a per-shard budget in MiB, to say how many shards hold every ID.")
    var shardBudget: Double?

    func run() throws {
        // The flags first, so that a wrong one is named whatever the run holds.
        let rankList = try parseList(ranks, "--ranks")
        let batchList = try batch.map { try parseList($0, "--batch") }
        if let c = sharedCores, c < 1 { throw PlanError("--shared-cores \(c): give 1 or more") }
        if let ids { return try memoryPlan(ids: ids, ranks: rankList) }
        if shardBudget != nil { throw PlanError("--shard-budget goes with --ids (the memory plan)") }

        let links: [LinkCost]
        if let calibration {
            links = [try loadCalibration(calibration).link]
        } else if network.lowercased() == "all" {
            links = LinkCost.presets
        } else if let link = LinkCost.preset(named: network) {
            links = [link]
        } else {
            throw PlanError("unknown --network '\(network)': give one of \(LinkCost.presets.map(\.name).joined(separator: ", ")), all, or --calibration FILE")
        }

        let loaded: LoadedRun
        do { loaded = try loadRun(runFolder) } catch {
            throw PlanError("\(error)")
        }
        let r = loaded.results
        let compared = try compare.map { path in
            do { return try loadRun(path).results } catch { throw PlanError("--compare \(error)") }
        }
        let batches = (r.records + r.batch_size - 1) / max(1, r.batch_size)
        guard let workload = Workload(results: r, batches: batches) else {
            throw PlanError("\(runFolder) has no profile: make the run again with `esapn train --profile` (it records each phase's time and the collectives' bytes)")
        }
        // sgemm's rate on every slice size the table needs (the head's fc1 shape), measured now.
        var rows = Set([max(1, workload.batch / workload.ranks)])
        for B in batchList ?? [workload.batch] { for P in rankList { rows.insert(max(1, B / P)) } }
        for c in compared { rows.insert(max(1, c.batch_size / c.ranks)) }
        // The head's first layer, (rows×256)·(256×512), about 4,000 rows' worth per round.
        let rates = Dictionary(uniqueKeysWithValues: rows.sorted().map {
            ($0, BenchCommand.sgemmRate(rows: $0, inFeatures: 256, outFeatures: 512, repetitions: max(3, 4_000 / $0)))
        })
        let rate: @Sendable (Int) -> Double = { m in rates[m] ?? rates.min { abs($0.key - m) < abs($1.key - m) }!.value }

        print("""
        plan: \(r.model) from \(runFolder) (\(r.ranks) rank\(r.ranks == 1 ? "" : "s"), batch \(workload.batch)); per batch there: \
        compute \(ms(workload.replicatedSeconds + workload.slicedSeconds)) ms (\(ms(workload.replicatedSeconds)) ms replicated), \
        \(fmt(workload.allReduceCalls)) all-reduce (\(kb(workload.allReduceBytes)) kB), \(fmt(workload.allToAllCalls)) all-to-all, \
        \(fmt(workload.allToAllVCalls)) all-to-all-v (\(kb(workload.allToAllVSliceBytes)) kB per rank)
        sgemm on this machine (\(BLASInfo.coreName)), fc1 shape: \
        \(rows.sorted().map { "\($0) rows \(String(format: "%.0f", rate($0) / 1e9))" }.joined(separator: ", ")) GFLOP/s
        model: one rank per machine\(sharedCores.map { ", except: all ranks share \($0) cores" } ?? ""); blocking collectives; \
        see BENCHMARKS.md "A model of scaling"
        """)
        for link in links {
            let model = ScalingModel(workload: workload, link: link, sharedCores: sharedCores, sgemmRate: rate)
            print("")
            print(String(format: "%@: all-reduce α %.1f µs β %.3f ns/B; all-to-all-v α %.1f µs β %.3f ns/B",
                         link.name, 1e6 * link.allReduce.alpha, 1e9 * link.allReduce.beta,
                         1e6 * link.allToAllV.alpha, 1e9 * link.allToAllV.beta))
            for B in batchList ?? [workload.batch] {
                print("  batch \(B)")
                print("    ranks  slice  compute ms  latency ms  bytes ms   batch ms   records/s  speed-up  comm")
                let one = model.predict(ranks: 1, batch: B)
                for P in rankList {
                    let q = model.predict(ranks: P, batch: B)
                    print(String(format: "    %5d  %5d  %10.2f  %10.2f  %8.2f  %9.2f  %10.0f  %7.2f×  %3.0f%%",
                                 P, B / P, 1e3 * q.computeSeconds, 1e3 * q.latencySeconds, 1e3 * q.bandwidthSeconds,
                                 1e3 * q.batchSeconds, q.recordsPerSecond, q.recordsPerSecond / one.recordsPerSecond,
                                 100 * q.communicationShare))
                }
                let dominate = model.collectivesDominate(from: rankList, batch: B)
                let best = model.bestRanks(from: rankList, batch: B)
                print("    collectives take half the batch from P = \(dominate.map(String.init) ?? "beyond \(rankList.last ?? 1)"); "
                      + "throughput peaks at P = \(best) (\(String(format: "%.0f", model.predict(ranks: best, batch: B).recordsPerSecond)) records/s)")
                for change in ScalingModel.Change.allCases where change != .none {
                    let b = model.bestRanks(from: rankList, batch: B, change: change)
                    let q = model.predict(ranks: b, batch: B, change: change)
                    print("    with \(change.rawValue): peaks at P = \(b), \(String(format: "%.0f", q.recordsPerSecond)) records/s")
                }
            }
            for (path, c) in zip(compare, compared) {
                let q = model.predict(ranks: c.ranks, batch: c.batch_size)
                let measured = c.throughput.records_per_second
                print(String(format: "  measured %@: %d ranks, %.0f records/s; model %.0f (%+.0f%%)",
                             path, c.ranks, measured, q.recordsPerSecond, 100 * (q.recordsPerSecond / measured - 1)))
            }
        }
    }

    /// `--ids`: the run's bytes per ID carried to that many IDs.
    func memoryPlan(ids text: String, ranks: [Int]) throws -> Void {
        let counts = try text.split(separator: ",").map { word -> Int in
            let w = word.trimmingCharacters(in: .whitespaces).uppercased()
            let scale = w.hasSuffix("B") ? 1e9 : w.hasSuffix("M") ? 1e6 : w.hasSuffix("K") ? 1e3 : 1
            guard let v = Double(scale == 1 ? w : String(w.dropLast())), v >= 1, v * scale < 1e15 else {
                throw PlanError("--ids '\(text)': give numbers of IDs separated by commas, e.g. 100M,1B or 5000000")
            }
            return Int(v * scale)
        }
        if let b = shardBudget, !(b > 0) { throw PlanError("--shard-budget \(b): give a positive number of MiB") }
        let loaded: LoadedRun
        do { loaded = try loadRun(runFolder) } catch { throw PlanError("\(error)") }
        guard let plan = MemoryPlan(results: loaded.results) else {
            throw PlanError("\(runFolder) holds no rows: plan from a run that trained on some records")
        }
        print(plan.table(ids: counts, ranks: ranks, budget: shardBudget.map { Int($0 * 1_048_576) }, model: loaded.results.model))
    }

    func ms(_ s: Double) -> String { String(format: "%.2f", 1e3 * s) }
    func kb(_ b: Double) -> String { String(format: "%.0f", b / 1e3) }
    func fmt(_ x: Double) -> String { String(format: "%.1f", x) }

    func parseList(_ text: String, _ flag: String) throws -> [Int] {
        let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) >= 1 }) else {
            throw PlanError("\(flag) '\(text)': give positive whole numbers separated by commas, e.g. 1,2,4,8")
        }
        return values.map { $0! }
    }

    func loadCalibration(_ path: String) throws -> CommCalibration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PlanError("--calibration \(path): no such file; make it with `mpirun -np P esapn bench-comm --output \(path)`")
        }
        do {
            let c = try JSONDecoder().decode(CommCalibration.self, from: data)
            guard c.ranks >= 2, c.points.count >= 2 else { throw PlanError("--calibration \(path) holds \(c.points.count) points on \(c.ranks) rank(s); measure again on 2 or more ranks") }
            return c
        } catch let e as PlanError { throw e } catch {
            throw PlanError("--calibration \(path) is not a bench-comm file (\(error)); make it with `mpirun -np P esapn bench-comm --output FILE`")
        }
    }
}

struct PlanError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = "plan: " + message }
}
